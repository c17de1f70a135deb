import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { deployedExpressions, DEPLOY, promtool, promtoolAvailable, ROOT } from "../helpers/promtool.js";

interface ComposeService {
  build?: unknown;
  image?: string;
  ports?: string[];
  environment?: Record<string, string>;
  healthcheck?: { test: unknown };
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
}

describe("deployment files", () => {
  const compose = parseYaml(fs.readFileSync(path.join(ROOT, "docker-compose.yml"), "utf8"), { merge: true }) as {
    services: Record<string, ComposeService>;
    volumes: Record<string, unknown>;
  };

  it("docker-compose.yml: gateways, PostgreSQL, Redis, Prometheus and Grafana with ports, healthchecks and volumes", () => {
    expect(Object.keys(compose.services).sort()).toEqual(["gateway-1", "gateway-2", "grafana", "postgres", "prometheus", "redis"]);
    for (const [name, svc] of Object.entries(compose.services)) {
      expect(svc.healthcheck?.test, `${name} healthcheck`).toBeDefined();
      expect(svc.volumes?.length, `${name} volumes`).toBeGreaterThan(0);
    }
    for (const gw of ["gateway-1", "gateway-2"]) {
      const svc = compose.services[gw]!;
      expect(svc.build).toMatchObject({ dockerfile: "deploy/Dockerfile" });
      expect(svc.environment?.DATABASE_URL).toMatch(/^postgres:\/\/.+@postgres:5432\//);
      expect(svc.environment?.REDIS_URL).toBe("redis://redis:6379");
      expect(svc.depends_on).toMatchObject({ postgres: { condition: "service_healthy" }, redis: { condition: "service_healthy" } });
    }
    expect(compose.services["gateway-1"]!.ports).toEqual(["3000:3000"]);
    expect(compose.services.prometheus!.ports).toEqual(["9090:9090"]);
    expect(compose.services.prometheus!.volumes).toContain("./deploy/prometheus:/etc/prometheus:ro");
    expect(compose.services.grafana!.volumes).toEqual(
      expect.arrayContaining(["./deploy/grafana/provisioning:/etc/grafana/provisioning:ro", "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro"]),
    );
    for (const svc of Object.values(compose.services)) {
      for (const v of svc.volumes ?? []) {
        const source = v.split(":")[0]!;
        if (source.startsWith("./")) expect(fs.existsSync(path.join(ROOT, source)), v).toBe(true);
        else expect(compose.volumes, v).toHaveProperty(source);
      }
    }
  });

  it("Dockerfile: multi-stage, non-root, with a healthcheck", () => {
    const dockerfile = fs.readFileSync(path.join(DEPLOY, "Dockerfile"), "utf8");
    expect(dockerfile.match(/^FROM /gm)).toHaveLength(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK /m);
    expect(dockerfile).toContain("npm ci");
  });

  it("Grafana: four dashboards, each panel with a query, provisioning pointing at them", () => {
    const dir = path.join(DEPLOY, "grafana", "dashboards");
    const files = fs.readdirSync(dir).sort();
    expect(files).toEqual(["circuit-breakers.json", "error-analysis.json", "performance-overview.json", "security-events.json"]);
    for (const f of files) {
      const d = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")) as { uid: string; panels: { targets: { expr: string }[] }[] };
      expect(d.uid).toMatch(/^gw-/);
      for (const p of d.panels) expect(p.targets.length).toBeGreaterThan(0);
    }
    const provider = parseYaml(fs.readFileSync(path.join(DEPLOY, "grafana", "provisioning", "dashboards", "gateway.yml"), "utf8")) as {
      providers: { options: { path: string } }[];
    };
    expect(provider.providers[0]!.options.path).toBe("/var/lib/grafana/dashboards");
    expect(deployedExpressions().length).toBeGreaterThan(40);
  });
});

describe.skipIf(!promtoolAvailable())("promtool on the Prometheus files", () => {
  it("check config", () => {
    const r = promtool(["check", "config", path.join(DEPLOY, "prometheus", "prometheus.yml")]);
    expect(r.output).toContain("SUCCESS");
    expect(r.status, r.output).toBe(0);
  });

  it("check rules", () => {
    const r = promtool(["check", "rules", path.join(DEPLOY, "prometheus", "alerts.yml")]);
    expect(r.status, r.output).toBe(0);
  });

  it("test rules: every alert fires when it should and stays quiet when it should not", () => {
    const tests = fs.readFileSync(path.join(DEPLOY, "prometheus", "alerts.test.yml"), "utf8");
    const alerts = (
      parseYaml(fs.readFileSync(path.join(DEPLOY, "prometheus", "alerts.yml"), "utf8")) as { groups: { rules: { alert?: string }[] }[] }
    ).groups.flatMap((g) => g.rules.map((r) => r.alert).filter(Boolean));
    for (const alert of alerts) expect(tests, `no unit test for ${alert}`).toContain(`alertname: ${alert}`);
    const r = promtool(["test", "rules", path.join(DEPLOY, "prometheus", "alerts.test.yml")]);
    expect(r.status, r.output).toBe(0);
  });
});
