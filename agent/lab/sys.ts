// Running system commands (ip, nsenter, ssh-keygen, openssl) for the lab, bounded in time.
import { execFile, spawn } from "node:child_process";
import { MirrorfarmError } from "../errors";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; a non-zero exit throws MF_LAB_SYSTEM with its stderr unless allowFail. */
export function run(
  cmd: string,
  args: string[],
  opts: { timeoutMs?: number; input?: string; allowFail?: boolean } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
      if (err && !opts.allowFail) {
        const why = err.killed ? `timed out after ${opts.timeoutMs ?? 30_000} ms` : `exited with ${String(err.code ?? err.signal)}`;
        reject(new MirrorfarmError("MF_LAB_SYSTEM", `\`${[cmd, ...args].join(" ")}\` ${why}: ${String(stderr).trim() || err.message}`));
        return;
      }
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Starts a long-lived process in its own session, detached from ours, output appended to logFd. */
export function spawnDetached(cmd: string, args: string[], logFd: number): number {
  const child = spawn(cmd, args, { detached: true, stdio: ["ignore", logFd, logFd] });
  child.unref();
  if (child.pid === undefined) throw new MirrorfarmError("MF_LAB_SYSTEM", `cannot start \`${[cmd, ...args].join(" ")}\``);
  return child.pid;
}

/**
 * Like Promise.all, but settles every promise before rejecting with the first failure, so nothing
 * is still creating or probing lab objects when the caller cleans up.
 */
export async function allSettledOrThrow<T>(promises: Array<Promise<T>>): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Polls check() every intervalMs until it returns a value or the deadline passes (`what` describes it in the error). */
export async function waitFor<T>(what: string | (() => string), deadlineMs: number, check: () => Promise<T | undefined> | T | undefined, intervalMs = 25): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new MirrorfarmError("MF_LAB_TIMEOUT", `${typeof what === "string" ? what : what()}: not reached within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
