// Helpers shared by the lab tests: the `mirrorfarm` command line, its JSON output, a plain GET.
import { execFile } from "node:child_process";
import * as http from "node:http";
import * as path from "node:path";
import { promisify } from "node:util";

const pexec = promisify(execFile);
const ROOT = path.resolve(__dirname, "../..");
const CLI = [path.join(ROOT, "node_modules/.bin/tsx"), path.join(ROOT, "agent/cli/main.ts")];

export type CliResult = { code: number; stdout: string; stderr: string };

/** `mirrorfarm ARGS...` from the source tree; a non-zero exit is returned, not thrown. */
export async function mirrorfarm(args: string[], timeoutMs = 120_000): Promise<CliResult> {
  try {
    const r = await pexec(CLI[0] ?? "", [...CLI.slice(1), ...args], { cwd: ROOT, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** `mirrorfarm lab ARGS... --name LAB`. */
export function labCli(lab: string, args: string[]): Promise<CliResult> {
  return mirrorfarm(["lab", ...args, "--name", lab]);
}

/** The JSON document on the last line of a command's output. */
export function lastJson<T>(stdout: string): T {
  return JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as T;
}

/** GET url: the trimmed body, or undefined when nothing answers within 500 ms. */
export function get(url: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 500 }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body.trim()));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(undefined));
  });
}
