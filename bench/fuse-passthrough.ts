// Benchmark: our FUSE passthrough, and the same mount replicated over a loopback TCP replication
// link to a second directory, against the local disk they sit on, measured in the same run.
//   npx tsx bench/fuse-passthrough.ts [--seq-mib 256] [--fsyncs 500] [--creates 1000] [--rounds 3]
// Prints JSON (last line): sequential write MB/s (1 MiB blocks, fsync at end), 4 KiB write+fsync
// latency p50/p99 (us), small-file creates/s; for each target the median of the rounds, and
// ratios (passthrough vs local disk, replicated vs passthrough). The FUSE server runs in its own
// process, as in production; "replicated" shares one disk and one machine between both sides.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startPassthroughServer } from "../agent/drivers/fuse/passthrough-process";

function opt(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer, got ${process.argv[i + 1]}`);
  return v;
}

const SEQ_MIB = opt("seq-mib", 256);
const FSYNCS = opt("fsyncs", 500);
const CREATES = opt("creates", 1000);
const ROUNDS = opt("rounds", 3);

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

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const round1 = (x: number) => Math.round(x * 10) / 10;

async function main(): Promise<void> {
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
  try {
    for (let r = 0; r < ROUNDS; r++) {
      rounds.push({ local: measure(local), fuse: measure(mnt), repl: measure(rmnt) });
      rssMiB.passthrough = Math.max(rssMiB.passthrough, (await plain.stats()).rssBytes / 2 ** 20);
      rssMiB.replicated = Math.max(rssMiB.replicated, (await replicated.stats()).rssBytes / 2 ** 20);
    }
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
    note: "ratios: 1 = as fast; for latencies the ratio is baseline/measured",
  };
  console.log(JSON.stringify(result));
}

void main();
