// Resource use of one process, from /proc: resident memory and CPU time.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux but asked, not assumed). */
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/** VmRSS of the process, in MiB. */
export function rssMb(pid: number): number {
  const m = /^VmRSS:\s+([0-9]+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m?.[1]) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** utime + stime of the process, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces and parentheses): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export interface IdleSample {
  pid: number;
  rssMb: number;
  /** Percent of one core over the window. */
  cpuPct: number;
  windowMs: number;
}

/** CPU over a window of windowMs (utime+stime delta / wall time) and the RSS at its end. */
export async function idleSample(pid: number, windowMs: number): Promise<IdleSample> {
  const c0 = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, windowMs));
  const c1 = cpuSeconds(pid);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  return { pid, rssMb: rssMb(pid), cpuPct: ((c1 - c0) / wall) * 100, windowMs: Math.round(wall * 1000) };
}
