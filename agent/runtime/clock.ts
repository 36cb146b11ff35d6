/**
 * The tick source. The core counts time only in ticks, so ticks must follow real (monotonic) time
 * even when the event loop stalls: after a pause (GC, SIGSTOP, an overloaded host) the owed ticks
 * are delivered at once, before anything else is processed. Otherwise a paused primary would
 * still count its lease as running while its peer, whose time went on, takes over.
 */
export interface TickSource {
  start(onTick: () => void): void;
  /** Delivers the ticks owed so far; callers run it before feeding any other event. */
  catchUp(): void;
  stop(): void;
}

/** A stall longer than this many ticks is delivered as this many (bounded work after a suspend). */
const MAX_CATCH_UP = 100_000;

export class MonotonicTicks implements TickSource {
  private timer: NodeJS.Timeout | undefined;
  private origin = 0;
  private delivered = 0;
  private onTick: () => void = () => {};

  constructor(
    private readonly tickMs: number,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  start(onTick: () => void): void {
    this.onTick = onTick;
    this.origin = this.nowMs();
    this.delivered = 0;
    this.timer = setInterval(() => this.catchUp(), this.tickMs);
  }

  catchUp(): void {
    if (!this.timer) return;
    const due = Math.floor((this.nowMs() - this.origin) / this.tickMs);
    let owed = due - this.delivered;
    if (owed > MAX_CATCH_UP) {
      this.delivered = due - MAX_CATCH_UP;
      owed = MAX_CATCH_UP;
    }
    for (let i = 0; i < owed; i++) {
      this.delivered++;
      this.onTick();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** Ticks only when a test says so. */
export class ManualTicks implements TickSource {
  private onTick: (() => void) | undefined;
  start(onTick: () => void): void {
    this.onTick = onTick;
  }
  catchUp(): void {}
  advance(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.onTick?.();
  }
  stop(): void {
    this.onTick = undefined;
  }
}
