// npm run bench -- component-load [--runs N] [--json]: what a user program costs to load and declare
// one cluster (target: under 2 s), as the median over fresh processes. The baseline, measured in
// the same run, is a program that loads @pulumi/pulumi alone: the part no component can avoid.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";

type Marks = Record<string, { wallMs: number; cpuMs: number }>;

const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
if (!Number.isInteger(runs) || runs < 1 || runs > 50) {
  console.error(`--runs: got ${process.argv[runsArg + 1]}; allowed: a whole number from 1 to 50`);
  process.exit(2);
}

// Inside the package, so the bundled program resolves node_modules like a user program does.
const cache = join(__dirname, "..", "node_modules", ".cache");
mkdirSync(cache, { recursive: true });
const dir = mkdtempSync(join(cache, "mf-load-"));
try {
  // Bundled like a compiled user program (packages external), so TypeScript transpiling is not timed.
  const program = join(dir, "program.js");
  buildSync({ entryPoints: [join(__dirname, "load", "user-program.ts")], bundle: true, platform: "node", packages: "external", outfile: program, logLevel: "warning" });
  const baseline = join(dir, "baseline.js");
  writeFileSync(baseline, `require(${JSON.stringify(require.resolve("@pulumi/pulumi"))}); console.log(JSON.stringify({ loadedMs: Math.round(performance.now()) }));`);

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const lastLine = (out: string) => out.trim().split("\n").pop() ?? "{}";
  const totals: number[] = [];
  const cpu: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < runs; i++) {
    const marks = JSON.parse(lastLine(execFileSync("node", [program], { cwd: process.cwd(), encoding: "utf8", timeout: 60_000 }))) as Marks;
    totals.push(marks.configsPlanned?.wallMs ?? NaN);
    cpu.push(marks.configsPlanned?.cpuMs ?? NaN);
    base.push((JSON.parse(lastLine(execFileSync("node", [baseline], { encoding: "utf8", timeout: 60_000 }))) as { loadedMs: number }).loadedMs);
    console.error(`run ${i + 1}/${runs}: program ${totals[i]} ms, @pulumi/pulumi alone ${base[i]} ms`);
  }
  const result = { runs, programWallMsP50: median(totals), programCpuMsP50: median(cpu), pulumiAloneWallMsP50: median(base), ratio: +(median(totals) / median(base)).toFixed(2), targetMs: 2000 };
  console.log(JSON.stringify(result));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
