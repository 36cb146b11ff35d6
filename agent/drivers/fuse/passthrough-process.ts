// Runs passthrough-main in a child process (tests and benchmarks: a hung server can never hang
// the caller, and a test can kill -9 it). Every wait has a deadline. Runs the .ts source with
// tsx when there is no compiled .js beside this file.
import { type ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import * as readline from "node:readline";
import * as fs from "node:fs";
import type { SessionStats } from "./session";
import type { MutationKind } from "./mutation";
import { unmountFuse } from "./mount";
import { settlesWithin } from "../deadline";
import type { ReceiverStats } from "../replication/receiver";
import type { ReplicatedMode } from "../replication/replicated-sink";
import type { ResyncProgress } from "../replication/resync";
import type { SenderStats } from "../replication/sender";
import type { ZoneTrackerStats } from "../replication/zone-tracker";

const COMPILED = path.join(__dirname, "passthrough-main.js");
const SCRIPT_ARGS = fs.existsSync(COMPILED) ? [COMPILED] : ["--import", "tsx", path.join(__dirname, "passthrough-main.ts")];
const WAIT_MS = 15_000;

export type ServerStats = SessionStats & {
  nodes: number;
  mutations: Partial<Record<MutationKind, number>>;
  rssBytes: number;
  replica: {
    mode: ReplicatedMode;
    resync: ResyncProgress | null;
    sender: SenderStats | null;
    receiver: ReceiverStats | null;
    tracker: ZoneTrackerStats;
    zones: { files: Record<string, [number, number][]>; inDoubt: Record<string, [number, number][]>; namespace: string[]; attrs: string[] };
  } | null;
};

export interface ServerOptions {
  /** Replicate into this directory over a loopback link; `zones` records what does not reach it. */
  replica?: { dir: string; zones: string };
  /** A replicated directory with no replica, started readonly (a secondary) as the agent mounts it. */
  unpaired?: { zones: string };
  /** Refuse every change with EROFS. */
  readOnly?: boolean;
}

export interface FuseServer {
  readonly pid: number;
  readonly mountpoint: string;
  readonly backing: string;
  stats(): Promise<ServerStats>;
  /** Sends a replicated-directory command (cut, alone, readonly, checkpoint, resync) and waits until it is done. */
  command(name: "cut" | "alone" | "readonly" | "checkpoint" | "resync"): Promise<void>;
  /** Clean unmount; falls back to SIGKILL + lazy unmount if the server does not finish in time. */
  stop(): Promise<void>;
  /** Sends SIGINT or SIGTERM; "exited" if the server then exits within the deadline. */
  signal(name: "SIGINT" | "SIGTERM"): Promise<"exited" | "alive">;
  /** A crash: SIGKILL, the mount is left behind, dead. */
  kill9(): Promise<void>;
  /** stderr so far (the server's JSON log), for failure messages. */
  log(): string;
}

export async function startPassthroughServer(mountpoint: string, backing: string, options: ServerOptions = {}): Promise<FuseServer> {
  const { replica, unpaired, readOnly } = options;
  const extra = [
    ...(replica ? ["--replica", replica.dir, "--zones", replica.zones] : []),
    ...(unpaired ? ["--zones", unpaired.zones] : []),
    ...(readOnly ? ["--read-only"] : []),
  ];
  const child = spawn(process.execPath, [...SCRIPT_ARGS, "--mountpoint", mountpoint, "--backing", backing, ...extra], {
    stdio: ["pipe", "pipe", "pipe"],
    // Set from the start: under tsx the loader has started the pool (4 threads) before
    // passthrough-main could size it, and the requests in flight would share those.
    env: { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? "16" },
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const waiters: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  readline.createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    for (const w of waiters.splice(0)) {
      if (w.match(event)) w.resolve(event);
      else waiters.push(w);
    }
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const waitFor = (name: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`FUSE server: no "${name}" within ${WAIT_MS} ms; log:\n${stderr}`)), WAIT_MS);
      waiters.push({
        match: (e) => e.event === name || e.event === "error",
        resolve: (e) => {
          clearTimeout(timer);
          if (e.event === "error") reject(new Error(`FUSE server failed: ${String(e.message)}\n${stderr}`));
          else resolve(e);
        },
      });
      void exited.then(() => reject(new Error(`FUSE server exited while waiting for "${name}"; log:\n${stderr}`)));
    });
  await waitFor("ready");
  return {
    pid: child.pid as number,
    mountpoint,
    backing,
    log: () => stderr,
    async stats() {
      const reply = waitFor("stats");
      child.stdin?.write("stats\n");
      return (await reply) as unknown as ServerStats;
    },
    async command(name) {
      const reply = waitFor("ok");
      child.stdin?.write(`${name}\n`);
      await reply;
    },
    async stop() {
      if (child.exitCode !== null) return;
      child.stdin?.write("unmount\n");
      if (!(await settlesWithin(exited, WAIT_MS))) await forceStop(child, mountpoint, exited);
    },
    async signal(name) {
      child.kill(name);
      return (await settlesWithin(exited, WAIT_MS)) ? "exited" : "alive";
    },
    async kill9() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}

async function forceStop(child: ChildProcess, mountpoint: string, exited: Promise<void>): Promise<void> {
  child.kill("SIGKILL");
  await exited;
  await unmountFuse(mountpoint, true).catch(() => undefined);
}
