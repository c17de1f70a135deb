import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config/index.js";
import { ROOT } from "../helpers/promtool.js";

type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: Record<string, string> };
const K8S = path.join(ROOT, "deploy/k8s");

/** Every object of every manifest the kustomization lists. */
function manifests(): Obj[] {
  const kustomization = parseAllDocuments(fs.readFileSync(path.join(K8S, "kustomization.yaml"), "utf8"))[0]!.toJS() as { resources: string[] };
  return kustomization.resources.flatMap((file) => parseAllDocuments(fs.readFileSync(path.join(K8S, file), "utf8")).map((d) => d.toJS() as Obj));
}

/** The environment variable names the gateway reads, found by watching loadConfig read them. */
function configKeys(): Set<string> {
  const read = new Set<string>();
  loadConfig(new Proxy({}, { get: (_t, key) => (typeof key === "string" && read.add(key), undefined), has: () => false }));
  return read;
}

const byKind = (objs: Obj[], kind: string) => objs.find((o) => o.kind === kind)!;

describe("Kubernetes manifests (deploy/k8s)", () => {
  const objs = manifests();
  const deployment = byKind(objs, "Deployment");
  const pod = deployment.spec.template.spec;
  const container = pod.containers[0];

  it("has a Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget and ConfigMap, each valid against the Kubernetes object schema", () => {
    expect(objs.map((o) => o.kind).sort()).toEqual(["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]);
    // The models' validators are generated from the Kubernetes OpenAPI schemas (offline).
    const models = { Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget, ConfigMap } as const;
    for (const o of objs) {
      const Model = models[o.kind as keyof typeof models];
      expect(`${o.apiVersion} ${o.kind}`).toBe(`${Model.apiVersion} ${Model.kind}`);
      expect(() => new Model(o as never).validate(), `${o.kind} ${o.metadata.name}`).not.toThrow();
    }
    // The check can fail: a misspelt field and a wrong type are refused.
    expect(() => new Deployment({ ...(deployment as object), spec: { ...deployment.spec, replicas: "two" } }).validate()).toThrow();
    expect(() => new Service({ ...(byKind(objs, "Service") as object), spec: { ports: [{ port: "http" }] } as never }).validate()).toThrow();
  });

  // kubectl needs a cluster for `apply --dry-run`; `kustomize` works offline, so it runs where kubectl is installed.
  it.skipIf(spawnSync("kubectl", ["version", "--client"]).status !== 0)("kubectl kustomize builds the same objects", () => {
    const built = spawnSync("kubectl", ["kustomize", K8S], { encoding: "utf8" });
    expect(built.status, built.stderr).toBe(0);
    const kinds = parseAllDocuments(built.stdout)
      .map((d) => (d.toJS() as Obj).kind)
      .sort();
    expect(kinds).toEqual(objs.map((o) => o.kind).sort());
  });

  it("sets only environment variables the gateway reads, and takes the keys from a Secret", () => {
    const known = configKeys();
    expect(known.has("GATEWAY_MASTER_KEY") && known.has("SHUTDOWN_GRACE_MS")).toBe(true);
    const config = byKind(objs, "ConfigMap");
    const names = [...Object.keys(config.data!), ...container.env.map((e: { name: string }) => e.name)];
    for (const name of names) expect(known, `${name} is not a variable the gateway reads`).toContain(name);
    expect(container.envFrom).toEqual([{ configMapRef: { name: config.metadata.name } }]);
    const fromSecret = Object.fromEntries(container.env.filter((e: any) => e.valueFrom?.secretKeyRef).map((e: any) => [e.name, e.valueFrom.secretKeyRef.name]));
    expect(fromSecret).toMatchObject({ GATEWAY_MASTER_KEY: "gateway-secrets", GATEWAY_ADMIN_KEY: "gateway-secrets", DATABASE_URL: "gateway-secrets" });
    // No secret value sits in the manifests themselves.
    for (const name of Object.keys(config.data!)) expect(name).not.toMatch(/KEY|TOKEN|SECRET|PASSWORD|DATABASE_URL/);
    // The ConfigMap's values are valid configuration.
    expect(() => loadConfig({ ...config.data, GATEWAY_MASTER_KEY: Buffer.alloc(32, 7).toString("base64"), GATEWAY_ADMIN_KEY: "k".repeat(32) })).not.toThrow();
  });

  it("probes readiness on /ready and liveness on /health, and stops within the grace period", () => {
    expect(container.readinessProbe.httpGet).toMatchObject({ path: "/ready", port: "http" });
    expect(container.livenessProbe.httpGet).toMatchObject({ path: "/health", port: "http" });
    expect(container.ports.find((p: any) => p.name === "http").containerPort).toBe(Number(byKind(objs, "ConfigMap").data!.PORT));
    const preStopS = Number(container.lifecycle.preStop.exec.command[1]);
    const graceS = Number(byKind(objs, "ConfigMap").data!.SHUTDOWN_GRACE_MS) / 1000;
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStopS + graceS);
  });

  it("runs as non-root with a read-only root filesystem and no privilege", () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } });
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ["ALL"] } });
    // What the process writes lives on volumes: DATA_DIR and /tmp.
    const mounts = container.volumeMounts.map((m: { mountPath: string }) => m.mountPath);
    expect(mounts).toEqual(expect.arrayContaining([byKind(objs, "ConfigMap").data!.DATA_DIR, "/tmp"]));
  });

  it("Service, PodDisruptionBudget and autoscaler all point at the Deployment's pods", () => {
    const podLabels = deployment.spec.template.metadata.labels;
    expect(deployment.spec.selector.matchLabels).toEqual(podLabels);
    expect(byKind(objs, "Service").spec.selector).toEqual(podLabels);
    expect(byKind(objs, "PodDisruptionBudget").spec.selector.matchLabels).toEqual(podLabels);
    expect(byKind(objs, "HorizontalPodAutoscaler").spec.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: deployment.metadata.name });
    expect(byKind(objs, "PodDisruptionBudget").spec.minAvailable).toBeLessThan(byKind(objs, "HorizontalPodAutoscaler").spec.minReplicas);
  });
});
