// Runs the system commands the network drivers need (ip, arping, nft) with a bounded time and
// bounded output. Shared by agent/drivers/vip and agent/drivers/farm-filter.
import { spawn } from "node:child_process";

export interface CommandOptions {
  /** The command is killed (SIGKILL) after this long; the result then says timedOut. */
  timeoutMs: number;
  /** Written to the command's stdin, which is then closed (nft -f -). */
  input?: string;
  /** Run inside this network namespace (`ip netns exec NS ...`); used by tests and the lab. */
  netns?: string;
}

export interface CommandResult {
  /** Exit code; null when killed by a signal (timeout) or when the program could not start. */
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

// Diagnostics only: a runaway command must not grow the agent's memory.
const MAX_OUTPUT = 1 << 20;

export function withNetns(argv: readonly string[], netns: string | undefined): string[] {
  return netns === undefined ? [...argv] : ["ip", "netns", "exec", netns, ...argv];
}

/** Resolves with the outcome whatever it is; it never rejects (callers decide what is an error). */
export function runCommand(argv: readonly string[], opts: CommandOptions): Promise<CommandResult> {
  const full = withNetns(argv, opts.netns);
  return new Promise((resolve) => {
    const [program, ...args] = full;
    if (program === undefined) throw new Error("runCommand: empty argv");
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    let settled = false;
    const finish = (code: number | null, extra = ""): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ code, stdout, stderr: stderr + extra, timedOut });
    };
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, opts.timeoutMs);
    child.stdout.on("data", (b: Buffer) => {
      if (stdout.length < MAX_OUTPUT) stdout += b.toString("utf8");
    });
    child.stderr.on("data", (b: Buffer) => {
      if (stderr.length < MAX_OUTPUT) stderr += b.toString("utf8");
    });
    child.on("error", (err) => finish(null, `cannot run ${program}: ${err.message}`));
    child.on("close", (code) => finish(code, timedOut ? `killed after ${opts.timeoutMs} ms` : ""));
    child.stdin.on("error", () => undefined); // the program may exit without reading its input
    child.stdin.end(opts.input ?? "");
  });
}

export interface BackgroundCommand {
  readonly pid: number | undefined;
  /** Resolves when the command has exited (by itself, by timeout or by stop()). */
  readonly exited: Promise<CommandResult>;
  stop(): void;
}

/** Starts a command nobody waits for (arping), killed after timeoutMs at the latest. */
export function startBackground(argv: readonly string[], opts: Omit<CommandOptions, "input">): BackgroundCommand {
  const [program, ...args] = withNetns(argv, opts.netns);
  if (program === undefined) throw new Error("startBackground: empty argv");
  const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  let timedOut = false;
  child.stderr.on("data", (b: Buffer) => {
    if (stderr.length < MAX_OUTPUT) stderr += b.toString("utf8");
  });
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, opts.timeoutMs);
  const exited = new Promise<CommandResult>((resolve) => {
    child.on("error", (err) => resolve({ code: null, stdout: "", stderr: `cannot run ${program}: ${err.message}`, timedOut }));
    child.on("close", (code) => resolve({ code, stdout: "", stderr, timedOut }));
  }).finally(() => clearTimeout(timer));
  return {
    pid: child.pid,
    exited,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** One line for an error message: the command, how it ended, and its stderr. */
export function describeFailure(argv: readonly string[], r: CommandResult): string {
  const how = r.timedOut ? "timed out" : r.code === null ? "could not run" : `exit ${r.code}`;
  const err = r.stderr.trim().replace(/\s+/g, " ").slice(0, 2000);
  return `\`${argv.join(" ")}\` failed (${how})${err ? `: ${err}` : ""}`;
}

// `ip addr add/del` outcomes that mean the goal is already met (old RTNETLINK wording and the
// newer extended-ack wording of iproute2 both occur). A missing device holds no address either.
export const ADDRESS_EXISTS = /File exists|Address already assigned/i;
export const ADDRESS_ABSENT = /Cannot assign requested address|Address not found|Cannot find device/i;
