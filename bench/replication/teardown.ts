// What a benchmark started, undone in reverse order exactly once: on return, on error, and on
// SIGINT/SIGTERM (then the process exits 130), so no server, mount or temp directory outlives it.
import { progress } from "../support/stats";

export class Teardown {
  private readonly steps: { what: string; undo: () => Promise<void> | void }[] = [];
  private running: Promise<void> | undefined;

  /** Registers how to undo something just started; undone before everything registered earlier. */
  add(what: string, undo: () => Promise<void> | void): void {
    this.steps.push({ what, undo });
  }

  /** Undoes every step (newest first); a failing step is reported and the others still run. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (let step = this.steps.pop(); step; step = this.steps.pop()) {
        try {
          await step.undo();
        } catch (err) {
          progress(`teardown: ${step.what} failed: ${String(err instanceof Error ? err.message : err)}`);
        }
      }
    })();
    return this.running;
  }

  /** Runs `fn`, then the teardown whatever happens, including an interrupt. */
  async around<T>(fn: () => Promise<T>): Promise<T> {
    // Listening on (not once): a runner such as tsx relays the same signal a second time, and a
    // signal without a listener would then end the process in the middle of the teardown.
    const onSignal = (signal: NodeJS.Signals): void => {
      progress(`${signal}: stopping what the benchmark started`);
      void this.run().finally(() => process.exit(130));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      return await fn();
    } finally {
      await this.run();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  }
}
