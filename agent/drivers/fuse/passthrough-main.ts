// Runs a passthrough FUSE server as its own process:
//   node passthrough-main.js --mountpoint DIR --backing DIR
// Prints one JSON line per event on stdout ({"event":"ready"} once mounted). Commands on stdin,
// one per line: "stats" (prints {"event":"stats",...}) and "unmount". SIGTERM, SIGINT and stdin
// closing (the parent died) unmount too, so a parent never leaves a mount served by nobody.
// Tests and benchmarks use it so that a hung server can never hang them, and to kill -9 it.
import * as readline from "node:readline";
import type { MutationKind, MutationOp, MutationSink } from "./mutation";
import { type PassthroughMount, mountPassthrough } from "./passthrough-mount";

// One thread blocks in read(/dev/fuse); the backing syscalls of many requests in flight use the rest.
process.env.UV_THREADPOOL_SIZE ??= "16";

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) {
    emit({ event: "error", message: `missing --${name} DIR (usage: --mountpoint DIR --backing DIR)` });
    process.exit(2);
  }
  return v;
}

/** Counts the mutations that pass the hook, so tests see each operation reach it. */
function countingSink(counts: Partial<Record<MutationKind, number>>): MutationSink {
  const resolved = Promise.resolve();
  return {
    admit: () => resolved,
    commit: (op: MutationOp) => {
      counts[op.kind] = (counts[op.kind] ?? 0) + 1;
      return resolved;
    },
  };
}

async function main(): Promise<void> {
  const mutations: Partial<Record<MutationKind, number>> = {};
  let mount: PassthroughMount;
  try {
    mount = await mountPassthrough({
      mountpoint: arg("mountpoint"),
      backing: arg("backing"),
      sink: countingSink(mutations),
      log: (e) => process.stderr.write(`${JSON.stringify(e)}\n`),
    });
  } catch (err) {
    emit({ event: "error", message: String(err instanceof Error ? err.message : err) });
    process.exit(1);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await mount.unmount();
    } catch {
      await mount.unmount(true);
    }
    emit({ event: "unmounted" });
    process.exit(0);
  };
  mount.done.then(({ reason }) => {
    if (!stopping) {
      emit({ event: "ended", reason });
      process.exit(0);
    }
  });
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  const rl = readline.createInterface({ input: process.stdin });
  rl.on("line", (line) => {
    if (line.trim() === "stats") emit({ event: "stats", ...mount.stats, nodes: mount.nodeCount(), mutations });
    else if (line.trim() === "unmount") void stop();
  });
  rl.on("close", () => void stop());
  emit({ event: "ready", pid: process.pid });
}

void main();
