// What the deployer installs for one node and what it reports: shared by the SSH deployer and its
// in-memory fake, so both validate and name files identically.
import { createHash } from "node:crypto";
import { MirrorfarmError } from "../../../agent/errors";
import { supervisorScript, systemdUnit, type RemoteLayout, type ServiceMode } from "./layout";
import type { SshTarget, Timeouts } from "./ssh";

export interface NodeArtifact {
  node: string;
  /** The single-file agent bundle (dist/mirrorfarm-agent.js), as text. */
  bundle: string;
  /** The node's agent config, JSON text. */
  config: string;
  serviceMode: ServiceMode;
}

export interface DeployOptions {
  timeouts?: Partial<Timeouts>;
}

export interface ServiceStatus {
  node: string;
  installed: boolean;
  serviceMode?: ServiceMode;
  running: boolean;
  /** The agent process id when running. */
  pid?: number;
  /** Restarts since the service started (supervisor restarts, or systemd's NRestarts). */
  restarts: number;
}

/** The deployer's operations; implemented over SSH (index.ts) and in memory (fake.ts). */
export interface Deployer {
  install(target: SshTarget, artifact: NodeArtifact, options?: DeployOptions): Promise<{ changed: string[] }>;
  start(target: SshTarget, node: string, options?: DeployOptions): Promise<void>;
  stop(target: SshTarget, node: string, options?: DeployOptions): Promise<void>;
  restart(target: SshTarget, node: string, options?: DeployOptions): Promise<void>;
  status(target: SshTarget, node: string, options?: DeployOptions): Promise<ServiceStatus>;
  uninstall(target: SshTarget, node: string, options?: DeployOptions): Promise<{ removed: string[] }>;
}

export interface RemoteFile {
  path: string;
  data: string;
  mode: number;
}

const MAX_BUNDLE = 64 * 1024 * 1024;
const MAX_CONFIG = 4 * 1024 * 1024;

export function validateArtifact(target: SshTarget, artifact: NodeArtifact): void {
  const problems: string[] = [];
  if (artifact.serviceMode !== "systemd" && artifact.serviceMode !== "supervised")
    problems.push(`serviceMode is '${String(artifact.serviceMode)}'; allowed: 'systemd' (servers) or 'supervised' (hosts without systemd)`);
  if (!artifact.bundle) problems.push("bundle is empty; give the text of dist/mirrorfarm-agent.js (npm run build)");
  else if (artifact.bundle.length > MAX_BUNDLE) problems.push(`bundle is ${artifact.bundle.length} bytes; at most ${MAX_BUNDLE}`);
  if (artifact.config.length > MAX_CONFIG) problems.push(`config is ${artifact.config.length} bytes; at most ${MAX_CONFIG}`);
  try {
    JSON.parse(artifact.config);
  } catch (err) {
    problems.push(`config is not valid JSON (${(err as Error).message}); give the node's generated agent config`);
  }
  if (problems.length > 0)
    throw new MirrorfarmError("MF_DEPLOY_ARTIFACT", `invalid artifact for node '${artifact.node}' on host ${target.host}: ${problems.join("; ")}`);
}

export function sha256(data: string): string {
  return createHash("sha256").update(data, "utf8").digest("hex");
}

/** The files a node's artifact puts on the server, and the other service mode's file it replaces. */
export function desiredFiles(artifact: NodeArtifact, l: RemoteLayout): { files: RemoteFile[]; obsolete: string[] } {
  const files: RemoteFile[] = [
    { path: l.bundle, data: artifact.bundle, mode: 0o644 },
    // The config carries the cluster's secrets.
    { path: l.config, data: artifact.config, mode: 0o600 },
  ];
  if (artifact.serviceMode === "systemd") files.push({ path: l.unit, data: systemdUnit(artifact.node), mode: 0o644 });
  else files.push({ path: l.supervisor, data: supervisorScript(artifact.node), mode: 0o755 });
  // Switching service mode removes the other mode's definition.
  const obsolete = artifact.serviceMode === "systemd" ? [l.supervisor] : [l.unit];
  return { files, obsolete };
}

