// One SSH session to one server for the deployer: connect with a pinned host key, run commands and
// upload files, every step bounded in time and in output size, every failure a MirrorfarmError
// naming the host and the step.
import { createHash } from "node:crypto";
import { Client, type ClientChannel, type SFTPWrapper } from "ssh2";
import { MirrorfarmError } from "../../../agent/errors";

export interface SshTarget {
  /** Address or name of the server. */
  host: string;
  port?: number;
  user: string;
  /** OpenSSH private key text. */
  privateKey: string | Buffer;
  /** Pinned host key fingerprint, "SHA256:<base64 without padding>" as `ssh-keygen -l` prints it. */
  hostKey: string;
}

export type DeployStep = "connect" | "auth" | "upload" | "install" | "start" | "stop" | "status" | "uninstall";

export interface Timeouts {
  /** TCP connect + SSH handshake + authentication. */
  connectMs: number;
  /** One remote command or one upload. */
  stepMs: number;
}

export const defaultTimeouts: Timeouts = { connectMs: 10_000, stepMs: 60_000 };

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

// Remote output is untrusted: keep at most this much of each stream.
const MAX_OUTPUT = 64 * 1024;

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

export function deployError(step: DeployStep, target: SshTarget, what: string): MirrorfarmError {
  return new MirrorfarmError(`MF_DEPLOY_${step.toUpperCase()}`, `${step} on host ${describe(target)} failed: ${what}`);
}

function describe(target: SshTarget): string {
  return `${target.host}:${target.port ?? 22}`;
}

/** Fingerprint of a raw SSH public key blob, in the format `ssh-keygen -l -E sha256` prints. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash("sha256").update(keyBlob).digest("base64").replace(/=+$/, "")}`;
}

/** Lists every problem of a target at once. */
export function validateTarget(target: SshTarget): void {
  const problems: string[] = [];
  if (!target.host) problems.push("host is empty; give the server's address");
  if (target.port !== undefined && !(Number.isInteger(target.port) && target.port > 0 && target.port < 65536))
    problems.push(`port is ${String(target.port)}; allowed: an integer 1..65535`);
  if (!target.user) problems.push("user is empty; give the login user (root or a sudo-less admin)");
  if (!target.privateKey || target.privateKey.length === 0) problems.push("privateKey is empty; give the OpenSSH private key text");
  if (!FINGERPRINT.test(target.hostKey ?? ""))
    problems.push(
      `hostKey is '${String(target.hostKey)}'; allowed: 'SHA256:' + 43 base64 characters, as printed by ` +
        "`ssh-keygen -l -E sha256 -f /etc/ssh/ssh_host_ed25519_key.pub` on the server",
    );
  if (problems.length > 0)
    throw new MirrorfarmError("MF_DEPLOY_TARGET", `invalid SSH target for host '${target.host}': ${problems.join("; ")}`);
}

export class SshSession {
  private constructor(
    private readonly client: Client,
    readonly target: SshTarget,
    private readonly timeouts: Timeouts,
  ) {}

  static async open(target: SshTarget, timeouts: Timeouts = defaultTimeouts): Promise<SshSession> {
    validateTarget(target);
    const client = new Client();
    let presented: string | undefined;
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (err: MirrorfarmError): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.end();
        reject(err);
      };
      // ssh2's readyTimeout covers only the handshake; this one covers connect + auth as well.
      const timer = setTimeout(
        () => fail(deployError("connect", target, `no SSH session within ${timeouts.connectMs} ms (is sshd running and reachable?)`)),
        timeouts.connectMs,
      );
      client.once("ready", () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve();
      });
      client.on("error", (err: Error & { level?: string; code?: string }) => {
        if (presented !== undefined && presented !== target.hostKey)
          fail(
            deployError(
              "connect",
              target,
              `the server presented host key ${presented} but ${target.hostKey} is pinned; refusing to continue. ` +
                "If the server was reinstalled, check its key on the console and update the pinned fingerprint",
            ),
          );
        else if (err.level === "client-authentication")
          fail(
            deployError(
              "auth",
              target,
              `user '${target.user}' was refused with the given private key (${err.message}); ` +
                "add the matching public key to the user's authorized_keys on the server",
            ),
          );
        else fail(deployError("connect", target, `${err.code ?? ""} ${err.message}`.trim()));
      });
      try {
        client.connect({
          host: target.host,
          port: target.port ?? 22,
          username: target.user,
          privateKey: target.privateKey,
          readyTimeout: timeouts.connectMs,
          keepaliveInterval: 5_000,
          hostVerifier: (key: Buffer): boolean => {
            presented = fingerprint(key);
            return presented === target.hostKey;
          },
        });
      } catch (err) {
        // ssh2 throws synchronously on an unparsable private key.
        fail(deployError("auth", target, `the private key cannot be used: ${(err as Error).message}`));
      }
    });
    return new SshSession(client, target, timeouts);
  }

  /** Runs a shell command; resolves with its exit code and (bounded) output, never throws on a non-zero exit. */
  exec(step: DeployStep, command: string, stdin?: string | Buffer): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      let channel: ClientChannel | undefined;
      const timer = setTimeout(() => {
        channel?.close();
        reject(deployError(step, this.target, `remote command did not finish within ${this.timeouts.stepMs} ms`));
      }, this.timeouts.stepMs);
      this.client.exec(command, (err, ch) => {
        if (err) {
          clearTimeout(timer);
          reject(deployError(step, this.target, `cannot run a remote command: ${err.message}`));
          return;
        }
        channel = ch;
        let stdout = "";
        let stderr = "";
        ch.on("data", (d: Buffer) => {
          if (stdout.length < MAX_OUTPUT) stdout += d.toString("utf8");
        });
        ch.stderr.on("data", (d: Buffer) => {
          if (stderr.length < MAX_OUTPUT) stderr += d.toString("utf8");
        });
        ch.on("exit", (code: number | null, signal?: string) => {
          // 'close' follows; the code is kept from here because 'close' may not carry it.
          ch.once("close", () => {
            clearTimeout(timer);
            resolve({ code: code ?? (signal ? 128 : 255), stdout: stdout.slice(0, MAX_OUTPUT), stderr: stderr.slice(0, MAX_OUTPUT) });
          });
        });
        if (stdin !== undefined) ch.end(stdin);
        else ch.end();
      });
    });
  }

  /** Runs a command that must succeed; a non-zero exit becomes an error carrying the remote stderr. */
  async run(step: DeployStep, command: string): Promise<string> {
    const r = await this.exec(step, command);
    if (r.code !== 0)
      throw deployError(step, this.target, `remote command exited with ${r.code}: ${(r.stderr || r.stdout).trim() || "(no output)"}`);
    return r.stdout;
  }

  /** Writes a file through SFTP. */
  async upload(remotePath: string, data: string | Buffer, mode: number): Promise<void> {
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
      const timer = setTimeout(() => reject(deployError("upload", this.target, `no SFTP session within ${this.timeouts.stepMs} ms`)), this.timeouts.stepMs);
      this.client.sftp((err, s) => {
        clearTimeout(timer);
        if (err) reject(deployError("upload", this.target, `SFTP unavailable: ${err.message}`));
        else resolve(s);
      });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(deployError("upload", this.target, `writing ${remotePath} did not finish within ${this.timeouts.stepMs} ms`)),
          this.timeouts.stepMs,
        );
        sftp.writeFile(remotePath, data, { mode }, (err) => {
          clearTimeout(timer);
          if (err) reject(deployError("upload", this.target, `writing ${remotePath}: ${err.message}`));
          else resolve();
        });
      });
    } finally {
      sftp.end();
    }
  }

  close(): void {
    this.client.end();
  }
}

/** Opens a session, runs fn, always closes. */
export async function withSession<T>(target: SshTarget, timeouts: Timeouts, fn: (s: SshSession) => Promise<T>): Promise<T> {
  const session = await SshSession.open(target, timeouts);
  try {
    return await fn(session);
  } finally {
    session.close();
  }
}
