/**
 * JSON schemas for the Kubernetes objects deploy/k8s renders, strict where we write them
 * (unknown fields refused, so a misspelt field fails instead of being dropped by the API
 * server): the parts of the upstream schemas (Kubernetes 1.29+ OpenAPI) that these manifests
 * use, plus the Prometheus Operator's ServiceMonitor (a CRD). Full upstream schemas would need an
 * npm package such as `kubernetes-models` (see docs/operations.md).
 */
type Schema = Record<string, unknown>;

const str = { type: 'string', minLength: 1 };
const int = { type: 'integer' };
const quantity = { anyOf: [{ type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G)?$' }, { type: 'integer', minimum: 0 }] };
const intOrName = { anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'string', pattern: '^[a-z]([-a-z0-9]{0,13}[a-z0-9])?$' }] };
const labels = { type: 'object', additionalProperties: { type: 'string' }, propertyNames: { pattern: '^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$' } };
const strict = (properties: Record<string, unknown>, required: string[] = []): Schema => ({ type: 'object', additionalProperties: false, properties, required });

const metadata = strict({ name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', maxLength: 63 }, namespace: str, labels, annotations: labels }, ['name']);
const selector = strict({ matchLabels: labels }, ['matchLabels']);
const probe = strict({
  httpGet: strict({ path: { type: 'string', pattern: '^/' }, port: intOrName }, ['path', 'port']),
  periodSeconds: int, timeoutSeconds: int, failureThreshold: int, initialDelaySeconds: int,
}, ['httpGet']);
const resources = strict({ requests: strict({ cpu: quantity, memory: quantity }, ['cpu', 'memory']), limits: strict({ cpu: quantity, memory: quantity }, ['cpu', 'memory']) }, ['requests', 'limits']);
const containerSecurity = strict({
  allowPrivilegeEscalation: { const: false },
  readOnlyRootFilesystem: { const: true },
  capabilities: strict({ drop: { type: 'array', items: { const: 'ALL' }, minItems: 1 } }, ['drop']),
}, ['allowPrivilegeEscalation', 'readOnlyRootFilesystem', 'capabilities']);
const envFrom = { type: 'array', items: strict({ configMapRef: strict({ name: str }, ['name']), secretRef: strict({ name: str }, ['name']) }) };
const container = strict({
  name: str, image: { type: 'string', pattern: '^[a-z0-9./_-]+(:[A-Za-z0-9._-]+)?(@sha256:[a-f0-9]{64})?$' },
  args: { type: 'array', items: { type: 'string' } }, command: { type: 'array', items: { type: 'string' } },
  ports: { type: 'array', items: strict({ name: str, containerPort: int, protocol: { enum: ['TCP', 'UDP'] } }, ['containerPort']) },
  envFrom, env: { type: 'array', items: strict({ name: str, value: { type: 'string' } }, ['name']) },
  startupProbe: probe, livenessProbe: probe, readinessProbe: probe,
  lifecycle: strict({ preStop: strict({ exec: strict({ command: { type: 'array', items: { type: 'string' } } }, ['command']) }) }),
  resources, securityContext: containerSecurity,
  volumeMounts: { type: 'array', items: strict({ name: str, mountPath: { type: 'string', pattern: '^/' }, readOnly: { type: 'boolean' } }, ['name', 'mountPath']) },
}, ['name', 'image', 'resources', 'securityContext']);
const podSecurity = strict({
  runAsNonRoot: { const: true }, runAsUser: { type: 'integer', minimum: 1 }, runAsGroup: int, fsGroup: int,
  seccompProfile: strict({ type: { enum: ['RuntimeDefault', 'Localhost'] } }, ['type']),
}, ['runAsNonRoot', 'seccompProfile']);
const topologySpread = strict({ maxSkew: int, topologyKey: str, whenUnsatisfiable: { enum: ['DoNotSchedule', 'ScheduleAnyway'] }, labelSelector: selector }, ['maxSkew', 'topologyKey', 'whenUnsatisfiable']);
const podSpec = strict({
  automountServiceAccountToken: { type: 'boolean' }, terminationGracePeriodSeconds: int,
  restartPolicy: { enum: ['Always', 'OnFailure', 'Never'] },
  securityContext: podSecurity,
  containers: { type: 'array', minItems: 1, items: container },
  volumes: { type: 'array', items: strict({ name: str, emptyDir: strict({ sizeLimit: quantity, medium: { type: 'string' } }) }, ['name']) },
  topologySpreadConstraints: { type: 'array', items: topologySpread },
}, ['containers', 'securityContext']);
const podTemplate = strict({ metadata: strict({ labels }, ['labels']), spec: podSpec }, ['metadata', 'spec']);
const objectOf = (apiVersion: string, kind: string, spec: Schema | null, extra: Record<string, unknown> = {}): Schema =>
  strict({ apiVersion: { const: apiVersion }, kind: { const: kind }, metadata, ...(spec ? { spec } : {}), ...extra }, ['apiVersion', 'kind', 'metadata', ...(spec ? ['spec'] : [])]);
const networkPeer = strict({ namespaceSelector: selector, podSelector: selector });
const networkPorts = { type: 'array', items: strict({ port: intOrName, protocol: { enum: ['TCP', 'UDP', 'SCTP'] } }, ['port']) };

export const K8S_SCHEMAS: Record<string, Schema> = {
  'v1/ConfigMap': objectOf('v1', 'ConfigMap', null, { data: { type: 'object', additionalProperties: { type: 'string' } } }),
  'v1/Secret': objectOf('v1', 'Secret', null, { type: { type: 'string' }, data: { type: 'object', additionalProperties: { type: 'string', contentEncoding: 'base64' } }, stringData: { type: 'object', additionalProperties: { type: 'string' } } }),
  'v1/Service': objectOf('v1', 'Service', strict({
    clusterIP: { type: 'string' }, type: { enum: ['ClusterIP', 'NodePort', 'LoadBalancer'] }, selector: labels,
    ports: { type: 'array', minItems: 1, items: strict({ name: str, port: int, targetPort: intOrName, protocol: { enum: ['TCP', 'UDP'] } }, ['port']) },
  }, ['selector', 'ports'])),
  'apps/v1/Deployment': objectOf('apps/v1', 'Deployment', strict({
    replicas: { type: 'integer', minimum: 0 }, revisionHistoryLimit: int, selector,
    strategy: strict({ type: { enum: ['RollingUpdate', 'Recreate'] }, rollingUpdate: strict({ maxSurge: intOrName, maxUnavailable: { anyOf: [int, { type: 'string' }] } }) }),
    template: podTemplate,
  }, ['selector', 'template'])),
  'batch/v1/Job': objectOf('batch/v1', 'Job', strict({ backoffLimit: int, activeDeadlineSeconds: int, ttlSecondsAfterFinished: int, template: podTemplate }, ['template'])),
  'autoscaling/v2/HorizontalPodAutoscaler': objectOf('autoscaling/v2', 'HorizontalPodAutoscaler', strict({
    scaleTargetRef: strict({ apiVersion: str, kind: str, name: str }, ['kind', 'name']),
    minReplicas: { type: 'integer', minimum: 1 }, maxReplicas: { type: 'integer', minimum: 1 },
    metrics: { type: 'array', items: strict({ type: { const: 'Resource' }, resource: strict({ name: { enum: ['cpu', 'memory'] }, target: strict({ type: { const: 'Utilization' }, averageUtilization: { type: 'integer', minimum: 1, maximum: 100 } }, ['type', 'averageUtilization']) }, ['name', 'target']) }, ['type', 'resource']) },
    behavior: strict({ scaleDown: strict({ stabilizationWindowSeconds: int }), scaleUp: strict({ stabilizationWindowSeconds: int }) }),
  }, ['scaleTargetRef', 'maxReplicas'])),
  'policy/v1/PodDisruptionBudget': objectOf('policy/v1', 'PodDisruptionBudget', {
    ...strict({ minAvailable: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] }, maxUnavailable: { anyOf: [{ type: 'integer', minimum: 0 }, { type: 'string' }] }, selector }, ['selector']),
    oneOf: [{ required: ['minAvailable'] }, { required: ['maxUnavailable'] }],
  }),
  'networking.k8s.io/v1/NetworkPolicy': objectOf('networking.k8s.io/v1', 'NetworkPolicy', strict({
    podSelector: selector, policyTypes: { type: 'array', items: { enum: ['Ingress', 'Egress'] } },
    ingress: { type: 'array', items: strict({ from: { type: 'array', items: networkPeer }, ports: networkPorts }) },
    egress: { type: 'array', items: strict({ to: { type: 'array', items: networkPeer }, ports: networkPorts }) },
  }, ['podSelector'])),
  // The Prometheus Operator's CRD (monitoring.coreos.com/v1), the fields used here.
  'monitoring.coreos.com/v1/ServiceMonitor': objectOf('monitoring.coreos.com/v1', 'ServiceMonitor', strict({
    selector, namespaceSelector: strict({ matchNames: { type: 'array', items: str }, any: { type: 'boolean' } }),
    endpoints: { type: 'array', minItems: 1, items: strict({
      port: str, path: { type: 'string', pattern: '^/' }, interval: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' }, scrapeTimeout: { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' },
      authorization: strict({ credentials: strict({ name: str, key: str }, ['name', 'key']) }),
    }, ['port']) },
  }, ['selector', 'endpoints'])),
};
