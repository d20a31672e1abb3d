import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { K8S_SCHEMAS } from './k8s-schemas.js';

// Renders every overlay with `kubectl kustomize` (as CI does) and validates what would be applied.
const OVERLAYS_DIR = 'deploy/k8s/overlays';
const overlays = readdirSync(OVERLAYS_DIR);

type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; [key: string]: any };

function render(overlay: string): K8sObject[] {
  const text = execFileSync('kubectl', ['kustomize', `${OVERLAYS_DIR}/${overlay}`], { encoding: 'utf8' });
  return parseAllDocuments(text).map((d) => d.toJSON() as K8sObject).filter(Boolean);
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validators = Object.fromEntries(Object.entries(K8S_SCHEMAS).map(([key, schema]) => [key, ajv.compile(schema)]));
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.each(overlays)('deploy/k8s/overlays/%s', (overlay) => {
  const objects = render(overlay);
  const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
  const workloads = [...ofKind('Deployment'), ...ofKind('Job')];

  it('renders the API and worker Deployments, their Services, HPA, PDBs, the migration Job, NetworkPolicies and a ServiceMonitor', () => {
    const names = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(names).toEqual(expect.arrayContaining([
      'Deployment/tollgate-api', 'Deployment/tollgate-worker', 'Service/tollgate-api', 'HorizontalPodAutoscaler/tollgate-api',
      'PodDisruptionBudget/tollgate-api', 'PodDisruptionBudget/tollgate-worker', 'Job/tollgate-migrate', 'NetworkPolicy/tollgate-api',
      'NetworkPolicy/tollgate-worker', 'ServiceMonitor/tollgate', 'ConfigMap/tollgate-config',
    ]));
  });

  it('validates every object against its schema', () => {
    for (const object of objects) {
      const validate = validators[`${object.apiVersion}/${object.kind}`];
      expect(validate, `no schema for ${object.apiVersion} ${object.kind}`).toBeDefined();
      expect(validate!(object) ? [] : validate!.errors, `${object.kind}/${object.metadata.name}`).toEqual([]);
    }
  });

  it('probes /healthz and /readyz on a declared port, and runs every container with limits as non-root', () => {
    for (const d of ofKind('Deployment')) {
      expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels), d.metadata.name).toBe(true);
      for (const c of d.spec.template.spec.containers) {
        expect(c.livenessProbe.httpGet.path).toBe('/healthz');
        expect(c.readinessProbe.httpGet.path).toBe('/readyz');
        expect(c.ports.map((p: any) => p.name)).toContain(c.readinessProbe.httpGet.port);
      }
    }
    expect(ofKind('Deployment').map((d) => d.spec.template.spec.containers[0].args)).toEqual(expect.arrayContaining([['serve'], ['worker']]));
    expect(ofKind('Job')[0]!.spec.template.spec.containers[0].args).toEqual(['migrate']);
  });

  it('references only ConfigMaps it renders, and Secrets it renders or the documented tollgate-secrets', () => {
    const rendered = new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
    for (const w of workloads) {
      for (const ref of w.spec.template.spec.containers.flatMap((c: any) => c.envFrom ?? [])) {
        if (ref.configMapRef) expect(rendered.has(`ConfigMap/${ref.configMapRef.name}`), ref.configMapRef.name).toBe(true);
        if (ref.secretRef) expect(rendered.has(`Secret/${ref.secretRef.name}`) || ref.secretRef.name === 'tollgate-secrets', ref.secretRef.name).toBe(true);
      }
    }
  });

  it('points Services, the HPA, PDBs, NetworkPolicies and the ServiceMonitor at what exists', () => {
    const podsOf = (selector: Record<string, string>) => workloads.filter((w) => matches(selector, w.spec.template.metadata.labels));
    for (const s of ofKind('Service')) {
      const [target] = podsOf(s.spec.selector);
      expect(target, `Service/${s.metadata.name} selects no pods`).toBeDefined();
      for (const port of s.spec.ports) expect(target!.spec.template.spec.containers[0].ports.map((p: any) => p.name)).toContain(port.targetPort);
    }
    for (const h of ofKind('HorizontalPodAutoscaler')) {
      expect(objects.some((o) => o.kind === h.spec.scaleTargetRef.kind && o.metadata.name === h.spec.scaleTargetRef.name)).toBe(true);
      expect(h.spec.minReplicas).toBeLessThanOrEqual(h.spec.maxReplicas);
    }
    for (const p of ofKind('PodDisruptionBudget')) expect(podsOf(p.spec.selector.matchLabels), p.metadata.name).toHaveLength(1);
    for (const n of ofKind('NetworkPolicy')) expect(podsOf(n.spec.podSelector.matchLabels), n.metadata.name).toHaveLength(1);
    for (const m of ofKind('ServiceMonitor')) {
      const services = ofKind('Service').filter((s) => matches(m.spec.selector.matchLabels, s.metadata.labels));
      expect(services.map((s) => s.metadata.name).sort()).toEqual(['tollgate-api', 'tollgate-worker']);
      for (const s of services) for (const e of m.spec.endpoints) expect(s.spec.ports.map((p: any) => p.name)).toContain(e.port);
    }
  });
});

it('finds the dev and prod overlays', () => {
  expect(overlays.sort()).toEqual(['dev', 'prod']);
});

/** The upstream Kubernetes (and Prometheus Operator) schemas, through the kubernetes-models packages. */
async function upstreamModel(apiVersion: string, kind: string): Promise<new (data: object) => { validate(): void }> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [null, apiVersion];
  const path = group === 'monitoring.coreos.com' ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}` : `kubernetes-models/${group ? `${group}/` : ''}${version}/${kind}`;
  return (await import(path))[kind];
}

describe.each(overlays)('deploy/k8s/overlays/%s against the upstream schemas', (overlay) => {
  it('every object validates against the Kubernetes and Prometheus Operator schemas (kubernetes-models)', async () => {
    for (const object of render(overlay)) {
      const Model = await upstreamModel(object.apiVersion, object.kind);
      expect(() => new Model(object).validate(), `${object.kind}/${object.metadata.name}`).not.toThrow();
    }
  });

  it('the upstream check is not a formality: a wrong type or a missing required field fails it', async () => {
    const deployment = render(overlay).find((o) => o.kind === 'Deployment')!;
    const Model = await upstreamModel(deployment.apiVersion, deployment.kind);
    expect(() => new Model({ ...deployment, spec: { ...deployment.spec, replicas: 'two' } }).validate()).toThrow();
    expect(() => new Model({ ...deployment, spec: { ...deployment.spec, selector: undefined } }).validate()).toThrow();
  });
});
