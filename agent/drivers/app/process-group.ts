/**
 * Runs a program in its own process group with a timeout: past it the whole group gets SIGTERM,
 * then SIGKILL after a grace period, so a hung script and whatever it forked are gone. Output is
 * handed over line by line (long lines cut) so it can go to the log.
 */
import { spawn } from "node:child_process";

export type RunSpec = { argv: string[]; timeoutMs: number; killGraceMs: number; env?: Record<string, string>; cwd?: string };
export type RunOutcome = {
  /** Exit code, or null when ended by a signal or not started. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** SIGKILL had to be sent (SIGTERM was not enough within the grace period). */
  forced: boolean;
  durationMs: number;
  /** Set when the program could not be started at all (ENOENT, EACCES...). */
  error?: string;
};
export type OutputLine = { stream: "stdout" | "stderr"; text: string };

const MAX_LINE = 4096;

function lineSplitter(emit: (text: string) => void): { push: (chunk: Buffer) => void; end: () => void } {
  let pending = "";
  return {
    push(chunk) {
      pending += chunk.toString("utf8");
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        emit(pending.slice(0, Math.min(nl, MAX_LINE)));
        pending = pending.slice(nl + 1);
      }
      if (pending.length > MAX_LINE) {
        emit(pending.slice(0, MAX_LINE));
        pending = "";
      }
    },
    end() {
      if (pending) emit(pending);
      pending = "";
    },
  };
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function runInGroup(spec: RunSpec, onLine: (l: OutputLine) => void = () => {}): Promise<RunOutcome> {
  const started = Date.now();
  const [file, ...args] = spec.argv;
  return new Promise((resolve) => {
    if (!file) {
      resolve({ code: null, signal: null, timedOut: false, forced: false, durationMs: 0, error: "empty argv" });
      return;
    }
    const child = spawn(file, args, { detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...spec.env }, cwd: spec.cwd });
    const out = lineSplitter((text) => onLine({ stream: "stdout", text }));
    const err = lineSplitter((text) => onLine({ stream: "stderr", text }));
    child.stdout.on("data", out.push);
    child.stderr.on("data", err.push);
    let timedOut = false;
    let forced = false;
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid === undefined) return;
      const pid = child.pid;
      killGroup(pid, "SIGTERM");
      killTimer = setTimeout(() => {
        forced = true;
        killGroup(pid, "SIGKILL");
      }, spec.killGraceMs);
    }, spec.timeoutMs);
    let done = false;
    const settle = (o: Omit<RunOutcome, "timedOut" | "forced" | "durationMs">) => {
      if (killTimer) clearTimeout(killTimer);
      out.end();
      err.end();
      resolve({ ...o, timedOut, forced, durationMs: Date.now() - started });
    };
    const finish = (o: Omit<RunOutcome, "timedOut" | "forced" | "durationMs">) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const pid = child.pid;
      if (!timedOut || pid === undefined || forced) return settle(o);
      // The leader ended on SIGTERM, but what it forked may still be shutting down: the group
      // keeps its grace period, then whatever is left gets SIGKILL (the kill timer still runs).
      const poll = setInterval(() => {
        if (groupAlive(pid) && !forced) return;
        clearInterval(poll);
        settle(o);
      }, 20);
    };
    child.once("error", (e) => finish({ code: null, signal: null, error: e.message }));
    // 'exit', not 'close': a script may leave a daemon behind holding its stdout open.
    child.once("exit", (code, signal) => finish({ code, signal }));
  });
}
