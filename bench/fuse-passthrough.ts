// Benchmark: our FUSE passthrough, and the same mount replicated over a loopback TCP replication
// link to a second directory, against the local disk they sit on, measured in the same run.
//   npx tsx bench/fuse-passthrough.ts [--seq-mib 256] [--fsyncs 500] [--creates 1000] [--rounds 3]
//                                     [--resync-data-mib 256] [--resync-modified-mib 16]
// Prints JSON (last line): sequential write MB/s (1 MiB blocks, fsync at end), 4 KiB write+fsync
// latency p50/p99 (us), small-file creates/s; for each target the median of the rounds, and
// ratios (passthrough vs local disk, replicated vs passthrough). The FUSE server runs in its own
// process, as in production; "replicated" shares one disk and one machine between both sides.
// Then failback: with a data file replicated, the link is cut, the primary goes alone, random
// 8 KiB pages are rewritten (as PostgreSQL does), and the resync's bytes sent are compared with
// the bytes modified.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startPassthroughServer } from "../agent/drivers/fuse/passthrough-process";

function opt(argv: readonly string[], name: string, dflt: number): number {
  const i = argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer, got ${argv[i + 1]}`);
  return v;
}

export interface FuseBenchParams {
  seqMiB: number;
  fsyncs: number;
  creates: number;
  rounds: number;
  resyncDataMiB: number;
  resyncModifiedMiB: number;
}

/** This benchmark's options from a command line (defaults for those absent). */
export function fuseBenchParams(argv: readonly string[]): FuseBenchParams {
  return {
    seqMiB: opt(argv, "seq-mib", 256),
    fsyncs: opt(argv, "fsyncs", 500),
    creates: opt(argv, "creates", 1000),
    rounds: opt(argv, "rounds", 3),
    resyncDataMiB: opt(argv, "resync-data-mib", 256),
    resyncModifiedMiB: opt(argv, "resync-modified-mib", 16),
  };
}

let SEQ_MIB = 0;
let FSYNCS = 0;
let CREATES = 0;
let ROUNDS = 0;
let RESYNC_DATA_MIB = 0;
let RESYNC_MODIFIED_MIB = 0;

const nowUs = () => Number(process.hrtime.bigint() / 1000n);

function seqWriteMBps(dir: string): number {
  const file = path.join(dir, "seq");
  const block = Buffer.alloc(1024 * 1024, 0x5a);
  const t0 = nowUs();
  const fd = fs.openSync(file, "w");
  for (let i = 0; i < SEQ_MIB; i++) fs.writeSync(fd, block, 0, block.length, i * block.length);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const us = nowUs() - t0;
  fs.unlinkSync(file);
  return SEQ_MIB / 1.048576 / (us / 1e6);
}

function fsyncLatencyUs(dir: string): { p50: number; p99: number } {
  const file = path.join(dir, "fsync");
  const block = Buffer.alloc(4096, 0x33);
  const fd = fs.openSync(file, "w");
  const lat: number[] = [];
  for (let i = 0; i < FSYNCS; i++) {
    const t0 = nowUs();
    fs.writeSync(fd, block, 0, block.length, i * block.length);
    fs.fsyncSync(fd);
    lat.push(nowUs() - t0);
  }
  fs.closeSync(fd);
  fs.unlinkSync(file);
  lat.sort((a, b) => a - b);
  return { p50: lat[Math.floor(lat.length * 0.5)] ?? 0, p99: lat[Math.floor(lat.length * 0.99)] ?? 0 };
}

function createsPerSec(dir: string): number {
  const sub = path.join(dir, "creates");
  fs.mkdirSync(sub);
  const t0 = nowUs();
  for (let i = 0; i < CREATES; i++) fs.writeFileSync(path.join(sub, `f${i}`), "small file content\n");
  const us = nowUs() - t0;
  fs.rmSync(sub, { recursive: true });
  return CREATES / (us / 1e6);
}

function measure(dir: string) {
  return { seqWriteMBps: seqWriteMBps(dir), fsync4k: fsyncLatencyUs(dir), createsPerSec: createsPerSec(dir) };
}

/** Rewrites random 8 KiB pages of `file` (seeded, repeatable); returns the distinct bytes modified. */
function rewritePages(file: string, fileBytes: number, bytes: number): number {
  const page = 8192;
  const pages = new Set<number>();
  let seed = 0x5eed;
  const fd = fs.openSync(file, "r+");
  const data = Buffer.alloc(page, 0xab);
  for (let i = 0; i < bytes / page; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const p = Math.floor((seed / 2 ** 31) * (fileBytes / page));
    pages.add(p);
    fs.writeSync(fd, data, 0, page, p * page);
  }
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  return pages.size * page;
}

async function measureResync(server: Awaited<ReturnType<typeof startPassthroughServer>>, mnt: string) {
  const file = path.join(mnt, "resync-data");
  const block = Buffer.alloc(1024 * 1024, 0x11);
  const fd = fs.openSync(file, "w");
  for (let i = 0; i < RESYNC_DATA_MIB; i++) fs.writeSync(fd, block, 0, block.length, i * block.length);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  await server.command("cut");
  await server.command("alone");
  const modified = rewritePages(file, RESYNC_DATA_MIB * 2 ** 20, RESYNC_MODIFIED_MIB * 2 ** 20);
  const t0 = nowUs();
  await server.command("resync");
  const seconds = (nowUs() - t0) / 1e6;
  const sent = (await server.stats()).replica?.resync?.bytesSent ?? 0;
  return { dataMiB: RESYNC_DATA_MIB, modifiedBytes: modified, bytesSent: sent, sentOverModified: Math.round((sent / modified) * 1000) / 1000, seconds: Math.round(seconds * 100) / 100 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const round1 = (x: number) => Math.round(x * 10) / 10;

/** Runs the whole benchmark (its servers stopped and its files removed before it returns) and returns its result. */
export async function runFusePassthroughBench(params: FuseBenchParams) {
  ({ seqMiB: SEQ_MIB, fsyncs: FSYNCS, creates: CREATES, rounds: ROUNDS, resyncDataMiB: RESYNC_DATA_MIB, resyncModifiedMiB: RESYNC_MODIFIED_MIB } = params);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "mf-bench-fuse-"));
  const dirs = ["local", "mnt", "backing", "rmnt", "primary", "secondary"].map((d) => path.join(root, d));
  const [local, mnt, backing, rmnt, primary, secondary] = dirs as [string, string, string, string, string, string];
  for (const d of dirs) fs.mkdirSync(d);
  const plain = await startPassthroughServer(mnt, backing);
  const replicated = await startPassthroughServer(rmnt, primary, { replica: { dir: secondary, zones: path.join(root, "zones") } });
  type M = ReturnType<typeof measure>;
  const rounds: { local: M; fuse: M; repl: M }[] = [];
  /** Resident memory of each server process after each round (the primary and, for "replicated", the in-process secondary too). */
  const rssMiB = { passthrough: 0, replicated: 0 };
  let failback: Awaited<ReturnType<typeof measureResync>> | null = null;
  try {
    for (let r = 0; r < ROUNDS; r++) {
      rounds.push({ local: measure(local), fuse: measure(mnt), repl: measure(rmnt) });
      rssMiB.passthrough = Math.max(rssMiB.passthrough, (await plain.stats()).rssBytes / 2 ** 20);
      rssMiB.replicated = Math.max(rssMiB.replicated, (await replicated.stats()).rssBytes / 2 ** 20);
    }
    failback = await measureResync(replicated, rmnt);
  } finally {
    await plain.stop();
    await replicated.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  const pick = (f: (m: M) => number) => ({
    local: round1(median(rounds.map((r) => f(r.local)))),
    passthrough: round1(median(rounds.map((r) => f(r.fuse)))),
    replicated: round1(median(rounds.map((r) => f(r.repl)))),
  });
  const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
  const withRatio = (x: { local: number; passthrough: number; replicated: number }, higherIsBetter: boolean) => ({
    ...x,
    passthroughVsLocal: higherIsBetter ? ratio(x.passthrough, x.local) : ratio(x.local, x.passthrough),
    replicatedVsPassthrough: higherIsBetter ? ratio(x.replicated, x.passthrough) : ratio(x.passthrough, x.replicated),
  });
  const result = {
    bench: "fuse-passthrough",
    params: { seqMiB: SEQ_MIB, fsyncs: FSYNCS, creates: CREATES, rounds: ROUNDS },
    seqWriteMBps: withRatio(pick((m) => m.seqWriteMBps), true),
    fsync4kP50Us: withRatio(pick((m) => m.fsync4k.p50), false),
    fsync4kP99Us: withRatio(pick((m) => m.fsync4k.p99), false),
    createsPerSec: withRatio(pick((m) => m.createsPerSec), true),
    serverRssMiB: { passthrough: Math.round(rssMiB.passthrough), replicated: Math.round(rssMiB.replicated) },
    failbackResync: failback,
    note: "ratios: 1 = as fast; for latencies the ratio is baseline/measured",
  };
  return result;
}

if (require.main === module) void runFusePassthroughBench(fuseBenchParams(process.argv)).then((result) => console.log(JSON.stringify(result)));
