/**
 * The spec's application module (templates/modules) with a real server's arguments: the spec's
 * ports, directories and unit, the distro's paths, and a password derived from the cluster's
 * secrets. Scripts become inline `/bin/sh -c` argv so nothing but the agent and its config has to
 * reach the node (the on-prem deployer ships exactly those two files).
 */
import * as crypto from "node:crypto";
import { MirrorfarmError } from "../../agent/errors";
import {
  agentCheckers,
  demoModule,
  dockerModule,
  nginxModule,
  NGINX_DEFAULTS,
  postgresqlModule,
  POSTGRESQL_DEFAULTS,
  serviceModule,
  type AppModule,
} from "../../templates/modules";
import { checkerAddress } from "../spec/validate";
import type { ResolvedSpec } from "../spec/types";
import type { AgentConfigInput } from "../../agent/config/schema";

export { shellQuote } from "../../templates/modules";

type Checkers = NonNullable<AgentConfigInput["checkers"]>;

/** The secret the application's password is derived from. */
export interface AppSecrets {
  readonly adminToken: string;
}

/**
 * The application's password (PostgreSQL's role): derived from the admin token, a secret the
 * stack already keeps, so it needs no resource of its own and is stable across runs.
 */
export function applicationPassword(secrets: AppSecrets): string {
  return crypto.createHmac("sha256", secrets.adminToken).update("mirrorfarm application password").digest("hex").slice(0, 32);
}

export function applicationModule(spec: ResolvedSpec, secrets: AppSecrets): AppModule {
  const dirs = spec.replicatedDirs.map((d) => ({ path: d.path, backing: d.backingPath }));
  const port = spec.appPorts[0];
  switch (spec.application) {
    case "postgresql": {
      const dir = dirs[0];
      return postgresqlModule({
        dir: dir?.path ?? POSTGRESQL_DEFAULTS.dir,
        ...(dir ? { backing: dir.backing } : {}),
        ...(port !== undefined ? { port } : {}),
        user: "postgres",
        password: applicationPassword(secrets),
        database: "postgres",
        clientCidrs: spec.clientCidrs,
        distroUnit: spec.serviceName ?? POSTGRESQL_DEFAULTS.distroUnit,
      });
    }
    case "nginx":
      return nginxModule({ ...(port !== undefined ? { port } : {}), conf: "/etc/nginx/nginx.conf", pidFile: "/run/nginx.pid", distroUnit: spec.serviceName ?? NGINX_DEFAULTS.distroUnit });
    case "demo":
      return demoModule({ ...(port !== undefined ? { port } : {}), ...(dirs[0] ? { dir: dirs[0] } : {}) });
    case "docker":
      return dockerModule({ container: `mirrorfarm-${spec.clusterName}`, image: spec.dockerImage ?? "", ports: spec.appPorts, replicatedDirs: dirs });
    default:
      return serviceModule({ name: spec.application, unit: spec.serviceName ?? "", ports: spec.appPorts, replicatedDirs: dirs, mirror: spec.kind === "mirror" });
  }
}

/** The URL a client uses to reach the application at `host` (the cluster's endpoint address). */
export function applicationUrl(spec: ResolvedSpec, secrets: AppSecrets, host: string): string {
  return applicationModule(spec, secrets).url(host);
}

/**
 * The module's own liveness checker (its first port over TCP) followed by the spec's checkers.
 * The agent counts checker results only where the application runs (mirror primary, farm UP).
 */
export function checkers(spec: ResolvedSpec, mod: AppModule): Checkers {
  const out: Checkers = agentCheckers(mod);
  for (const c of spec.checkers) {
    if (mod.checkers.some((m) => m.name === c.name)) {
      throw new MirrorfarmError("MF_SPEC_INVALID", `checkers: "${c.name}" is the name of the ${mod.name} module's own checker; give your checker another name, e.g. "${c.name}-extra"`);
    }
    const common = { name: c.name, intervalMs: c.intervalMs, timeoutMs: c.timeoutMs, failures: c.failuresBeforeAction, action: c.action };
    const addr = checkerAddress(c.target);
    switch (c.type) {
      case "tcp":
        if (addr) out.push({ ...common, type: "tcp", host: addr.host, port: addr.port });
        break;
      case "http":
        if (addr) out.push({ ...common, type: "http", url: `http://${addr.host}:${addr.port}${c.httpPath}` });
        break;
      case "process":
        out.push({ ...common, type: "process", process: c.target });
        break;
      case "command":
        out.push({ ...common, type: "command", command: ["/bin/sh", "-c", c.target] });
        break;
      case "interface":
        out.push({ ...common, type: "interface", interface: c.target });
        break;
    }
  }
  return out;
}
