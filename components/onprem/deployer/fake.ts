// In-memory deployer: the same contract as the SSH deployer (test/integration/deployer/contract.ts
// runs against both) over simulated servers, for tests of code that deploys (e.g. the on-prem
// component's provider) without root, namespaces or sshd.
import { desiredFiles, sha256, validateArtifact, type Deployer, type NodeArtifact, type ServiceStatus } from "./artifact";
import { layout, type ServiceMode } from "./layout";
import { deployError, validateTarget, type SshTarget } from "./ssh";

export interface FakeServer {
  /** The server's host key fingerprint ("SHA256:..."). */
  hostKey: string;
  /** Private keys (text) the server accepts for `user`. */
  authorizedKeys: string[];
  user: string;
  /** Whether systemd runs there (serviceMode "systemd" needs it). */
  systemd: boolean;
  /** Path -> sha256 of the content, for every file the deployer wrote. */
  files: Map<string, string>;
  /** Node -> running agent. */
  running: Map<string, { pid: number; restarts: number }>;
}

export interface FakeDeployer extends Deployer {
  servers: Map<string, FakeServer>;
  /** The agent process dies; the service manager restarts it (as systemd or the supervisor would). */
  crashAgent(host: string, node: string): void;
}

export function fakeDeployer(servers: Record<string, Omit<FakeServer, "files" | "running">>): FakeDeployer {
  const state = new Map<string, FakeServer>(Object.entries(servers).map(([h, s]) => [h, { ...s, files: new Map(), running: new Map() }]));
  let nextPid = 1000;

  function connect(target: SshTarget): FakeServer {
    validateTarget(target);
    const server = state.get(target.host);
    if (!server) throw deployError("connect", target, "ECONNREFUSED connect refused (no such server)");
    if (server.hostKey !== target.hostKey)
      throw deployError("connect", target, `the server presented host key ${server.hostKey} but ${target.hostKey} is pinned; refusing to continue`);
    if (target.user !== server.user || !server.authorizedKeys.includes(String(target.privateKey)))
      throw deployError("auth", target, `user '${target.user}' was refused with the given private key (All configured authentication methods failed)`);
    return server;
  }

  function installedMode(server: FakeServer, node: string): ServiceMode | undefined {
    const l = layout(node);
    if (server.files.has(l.supervisor)) return "supervised";
    if (server.files.has(l.unit)) return "systemd";
    return undefined;
  }

  const deployer: FakeDeployer = {
    servers: state,
    async install(target: SshTarget, artifact: NodeArtifact) {
      const l = layout(artifact.node);
      validateArtifact(target, artifact);
      const server = connect(target);
      if (artifact.serviceMode === "systemd" && !server.systemd)
        throw deployError("install", target, "remote command exited with 1: systemd is not running on this host (no /run/systemd/system); use serviceMode 'supervised'");
      const { files, obsolete } = desiredFiles(artifact, l);
      const changed: string[] = [];
      for (const f of files) {
        const h = sha256(f.data);
        if (server.files.get(f.path) !== h) {
          server.files.set(f.path, h);
          changed.push(f.path);
        }
      }
      for (const p of obsolete)
        if (server.files.delete(p)) {
          server.running.delete(artifact.node);
          changed.push(p);
        }
      return Promise.resolve({ changed });
    },
    async start(target: SshTarget, node: string) {
      const server = connect(target);
      if (!installedMode(server, node)) throw deployError("start", target, `node '${node}' is not installed (no service definition found); run install first`);
      if (!server.running.has(node)) server.running.set(node, { pid: nextPid++, restarts: 0 });
      return Promise.resolve();
    },
    async stop(target: SshTarget, node: string) {
      const server = connect(target);
      if (!installedMode(server, node)) throw deployError("stop", target, `node '${node}' is not installed (no service definition found); run install first`);
      server.running.delete(node);
      return Promise.resolve();
    },
    async restart(target: SshTarget, node: string) {
      await deployer.stop(target, node);
      await deployer.start(target, node);
    },
    async status(target: SshTarget, node: string): Promise<ServiceStatus> {
      layout(node);
      const server = connect(target);
      const mode = installedMode(server, node);
      if (!mode) return Promise.resolve({ node, installed: false, running: false, restarts: 0 });
      const r = server.running.get(node);
      return Promise.resolve({ node, installed: true, serviceMode: mode, running: r !== undefined, ...(r ? { pid: r.pid } : {}), restarts: r?.restarts ?? 0 });
    },
    async uninstall(target: SshTarget, node: string) {
      const l = layout(node);
      const server = connect(target);
      server.running.delete(node);
      const removed: string[] = [];
      if (server.files.has(l.bundle) || server.files.has(l.supervisor)) removed.push(l.dir);
      if (server.files.has(l.config)) removed.push(l.config);
      if (server.files.has(l.unit)) removed.push(l.unit);
      for (const p of [l.bundle, l.supervisor, l.config, l.unit]) server.files.delete(p);
      return Promise.resolve({ removed });
    },
    crashAgent(host: string, node: string) {
      const r = state.get(host)?.running.get(node);
      if (r) state.get(host)?.running.set(node, { pid: nextPid++, restarts: r.restarts + 1 });
    },
  };
  return deployer;
}
