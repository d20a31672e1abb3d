import { tracingConfig } from '../platform/config.js';
import { startTracing } from './tracing.js';

/**
 * Imported first by the CLI, so that when OTEL_EXPORTER_OTLP_ENDPOINT is set the tracing SDK is
 * running before `http` and `pg` are loaded (it instruments them as they load). A bad value is
 * left for the configuration check that follows, which names it.
 */
const config = tracingConfig();
if (config) startTracing(config);
