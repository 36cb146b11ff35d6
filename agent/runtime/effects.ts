/**
 * Runs the core's effects in the order the core emitted them, without letting slow ones stall the
 * heartbeat.
 *
 * - `now` (send, persist, log): runs at once if nothing is queued, otherwise keeps its place
 *   behind what is queued. Persist is synchronous and durable when it returns, so "persist before
 *   send" holds by order alone.
 * - `gate` (VIP acquire/release, block/allow writes, owned buckets): awaited; everything emitted
 *   after it, in the same step or a later one, waits for it. So a step-down's release of the VIP
 *   and blocking of writes completes before any later message can let the peer promote.
 * - `urgent` (blocking writes): starts at once, even ahead of queued gates (a VIP command that
 *   hangs must not delay the end of a lease), and everything emitted after it waits for it.
 * - `script` (role scripts, which may run for a minute): started after the effects emitted before
 *   them, serialised among themselves, but never holding back sends: a long start_prim must not
 *   silence the heartbeat and make the peer declare this node lost.
 */
export class OrderedEffects {
  private chain: Promise<void> = Promise.resolve();
  private queued = 0;
  private scripts: Promise<void> = Promise.resolve();
  private scriptsPending = 0;

  constructor(private readonly onError: (what: string, err: unknown) => void) {}

  now(what: string, fn: () => void): void {
    if (this.queued === 0) {
      this.guard(what, fn);
      return;
    }
    this.enqueue(what, async () => fn());
  }

  gate(what: string, fn: () => Promise<void>): void {
    this.enqueue(what, fn);
  }

  urgent(what: string, fn: () => Promise<void>): void {
    const started = fn().catch((e: unknown) => this.onError(what, e));
    this.queued++;
    this.chain = Promise.all([this.chain, started])
      .then(() => undefined)
      .finally(() => {
        this.queued--;
      });
  }

  script(what: string, fn: () => Promise<void>): void {
    const after = this.chain;
    this.scriptsPending++;
    this.scripts = Promise.all([this.scripts, after])
      .then(fn)
      .catch((e: unknown) => this.onError(what, e))
      .finally(() => {
        this.scriptsPending--;
      });
  }

  /** True while a script is queued or running (the application is being started or stopped). */
  scriptsBusy(): boolean {
    return this.scriptsPending > 0;
  }

  /** Resolves once everything queued so far (gates, nows and scripts) has run. */
  async idle(): Promise<void> {
    await this.chain;
    await this.scripts;
  }

  private enqueue(what: string, fn: () => Promise<void>): void {
    this.queued++;
    this.chain = this.chain
      .then(fn)
      .catch((e: unknown) => this.onError(what, e))
      .finally(() => {
        this.queued--;
      });
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.onError(what, e);
    }
  }
}
