/**
 * Runs every checker on its own interval (never two runs of one checker at once) and reports each
 * result; the rules engine in the core counts consecutive failures and decides what to do.
 */
import type { Checker } from "../../config/schema";
import type { ProbeResult, Prober } from "./probes";

export type CheckerReport = ProbeResult & { name: string; at: number };

export class CheckerScheduler {
  private readonly timers: NodeJS.Timeout[] = [];
  private running = false;

  constructor(
    private readonly checkers: readonly Checker[],
    private readonly prober: Prober,
    private readonly report: (r: CheckerReport) => void,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const c of this.checkers) {
      let busy = false;
      const run = async () => {
        if (busy || !this.running) return;
        busy = true;
        try {
          const r = await this.prober.probe(c);
          if (!this.running) return;
          this.report({ ...r, name: c.name, at: Date.now() });
        } finally {
          busy = false;
        }
      };
      this.timers.push(setInterval(() => void run(), c.intervalMs));
    }
  }

  stop(): void {
    this.running = false;
    for (const t of this.timers.splice(0)) clearInterval(t);
  }
}
