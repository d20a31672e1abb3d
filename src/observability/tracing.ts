import { createRequire } from 'node:module';
import { SpanStatusCode, context, trace, type Attributes } from '@opentelemetry/api';
import type { TracingConfig } from '../platform/config.js';

/**
 * OpenTelemetry traces, on only when OTEL_EXPORTER_OTLP_ENDPOINT is set: spans for HTTP requests
 * (named by route), PostgreSQL queries and each group-commit batch, exported over OTLP/HTTP.
 * Without it nothing of the SDK is loaded and the spans below are the API's no-ops.
 *
 * The SDK patches `http` and `pg` as they are loaded, so it must start before the rest of
 * Tollgate is imported: src/observability/start-tracing.ts, imported first by the CLI, does that,
 * synchronously (an ES module's top-level await would not hold back its siblings' evaluation).
 */

const TRACER_NAME = 'tollgate';

let provider: { shutdown(): Promise<void> } | null = null;

export function startTracing(config: TracingConfig): void {
  if (provider) return;
  // CommonJS packages, loaded synchronously and only when tracing is on.
  const require = createRequire(import.meta.url);
  const { node, tracing, resources } = require('@opentelemetry/sdk-node') as typeof import('@opentelemetry/sdk-node');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http');
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof import('@opentelemetry/instrumentation-http');
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof import('@opentelemetry/instrumentation-pg');
  const tracerProvider = new node.NodeTracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': config.serviceName }),
    spanProcessors: [new tracing.BatchSpanProcessor(new OTLPTraceExporter({ url: config.tracesUrl }))],
  });
  tracerProvider.register();
  const instrumentations = [
    // Probes and scrapes would be most of the spans and say nothing.
    new HttpInstrumentation({ ignoreIncomingRequestHook: (req) => /^\/(healthz|readyz|metrics)(\?|$)/.test(req.url ?? '') }),
    new PgInstrumentation({ requireParentSpan: true }),
  ];
  for (const instrumentation of instrumentations) instrumentation.setTracerProvider(tracerProvider);
  provider = tracerProvider;
}

/** Sends the spans still buffered (at exit). */
export async function stopTracing(): Promise<void> {
  const stopping = provider;
  provider = null;
  await stopping?.shutdown();
}

/**
 * Runs `fn` in a span (a no-op span when tracing is off); errors mark the span. A root by default:
 * a batch serves many requests, and would otherwise hang under whichever started its timer; work
 * done for one request (a Stripe call) passes `root: false` to sit under it.
 */
export function withSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>, options: { root?: boolean } = {}): Promise<T> {
  return trace.getTracer(TRACER_NAME).startActiveSpan(name, { attributes, root: options.root ?? true }, async (span) => {
    try {
      return await fn();
    } catch (error) {
      span.recordException(error as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The current trace and span ids, for log lines (nothing outside a span, or when tracing is off). */
export function traceLogFields(): Record<string, string> {
  const spanContext = trace.getSpan(context.active())?.spanContext();
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return {};
  return { trace_id: spanContext.traceId, span_id: spanContext.spanId };
}
