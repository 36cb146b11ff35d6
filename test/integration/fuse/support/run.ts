// Runs a command (a shell line, or a small python3 program for what Node cannot do: mmap,
// renameat2, xattrs), optionally as another user through setpriv, always with a timeout.
import { execFile } from "node:child_process";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

const TIMEOUT_MS = 60_000;

export function run(argv: string[], opts: { uid?: number; cwd?: string } = {}): Promise<RunResult> {
  const full = opts.uid === undefined ? argv : ["setpriv", `--reuid=${opts.uid}`, `--regid=${opts.uid}`, "--clear-groups", ...argv];
  return new Promise((resolve) => {
    execFile(full[0] as string, full.slice(1), { cwd: opts.cwd, timeout: TIMEOUT_MS, killSignal: "SIGKILL", maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

export const sh = (line: string, opts: { uid?: number; cwd?: string } = {}) => run(["sh", "-c", line], opts);

/** Runs python3 code; the program prints its result (JSON is easiest). */
export const py = (code: string, opts: { uid?: number; cwd?: string } = {}) => run(["/usr/bin/python3", "-c", code], opts);
