/**
 * The witness at run time: one authenticated UDP socket on the witness address, the pure vote
 * logic of agent/core/witness, and its persisted grant (epoch, holder) saved before any reply that
 * depends on it, so a restarted witness never grants one epoch twice.
 */
import type { WitnessCoreConfig } from "../../core/config";
import { decodeMessage, encodeMessage } from "../../core/messages";
import type { WitnessEffect, WitnessEvent, WitnessPersisted, WitnessState, WitnessStep } from "../../core/witness/node";
import { MirrorfarmError } from "../../errors";
import type { StateStore } from "../state/store";
import type { DatagramTransport, Received } from "../transport/datagram";

export type WitnessCore = {
  init(config: WitnessCoreConfig, persisted: WitnessPersisted | null): WitnessStep;
  step(state: WitnessState, event: WitnessEvent): WitnessStep;
};

export type WitnessDrivers = {
  datagrams: DatagramTransport;
  store: StateStore;
  /** Where a reply to a member goes (its configured addresses, never a datagram's source). */
  destinations(member: string): { network: string; address: string; port: number }[];
  ticks: { start(onTick: () => void): void; catchUp(): void; stop(): void };
  log: (entry: Record<string, unknown> & { event: string }) => void;
};

export function parseWitnessPersisted(doc: unknown, where: string): WitnessPersisted | null {
  if (doc === undefined) return null;
  const d = doc as Record<string, unknown>;
  if (typeof doc !== "object" || doc === null || !Number.isSafeInteger(d.epoch) || (d.epoch as number) < 0 || !(d.holder === null || typeof d.holder === "string"))
    throw new MirrorfarmError("MF_STATE_INVALID", `persisted witness state in ${where} does not have the expected fields (epoch, holder); restore it. Removing it lets the witness grant an epoch again that it may already have granted.`);
  return { epoch: d.epoch as number, holder: d.holder as string | null };
}

export class WitnessNode {
  private state: WitnessState | undefined;
  private decodeErrors = 0;
  private halted = false;
  private fatal: ((err: unknown) => void) | undefined;

  constructor(
    private readonly config: WitnessCoreConfig,
    private readonly core: WitnessCore,
    private readonly d: WitnessDrivers,
    private readonly stateDir: string,
  ) {}

  async start(onFatal: (err: unknown) => void): Promise<void> {
    this.fatal = onFatal;
    const persisted = parseWitnessPersisted(this.d.store.load(), this.stateDir);
    this.d.datagrams.onReceive((m) => this.receive(m));
    await this.d.datagrams.start();
    const first = this.core.init(this.config, persisted);
    this.state = first.state;
    this.run(first.effects);
    this.d.ticks.start(() => this.feed({ type: "tick" }));
  }

  async stop(): Promise<void> {
    this.d.ticks.stop();
    await this.d.datagrams.close();
  }

  persisted(): WitnessPersisted | undefined {
    return this.state?.persisted;
  }

  counters(): { decodeErrors: number } {
    return { decodeErrors: this.decodeErrors };
  }

  private receive(m: Received): void {
    const r = decodeMessage(m.payload);
    if (!r.ok || r.message.from !== m.sender) {
      this.decodeErrors++;
      return;
    }
    this.feed({ type: "message", network: m.network, message: r.message });
  }

  private feed(e: WitnessEvent): void {
    if (!this.state || this.halted) return;
    if (e.type !== "tick") this.d.ticks.catchUp();
    const next = this.core.step(this.state, e);
    this.state = next.state;
    this.run(next.effects);
  }

  // All witness effects are cheap and synchronous, so list order is execution order.
  private run(effects: WitnessEffect[]): void {
    for (const e of effects) {
      if (this.halted) return;
      switch (e.type) {
        case "persist":
          try {
            this.d.store.save(e.state);
          } catch (err) {
            this.halted = true;
            this.d.log({ event: "effect-failed", level: "error", effect: "persist", error: String(err) });
            this.fatal?.(err);
            return;
          }
          break;
        case "send": {
          const bytes = encodeMessage(e.message);
          for (const dst of this.d.destinations(e.to)) this.d.datagrams.send(dst.network, dst, bytes);
          break;
        }
        case "log":
          this.d.log({ event: "witness", level: e.level, message: e.message });
          break;
      }
    }
  }
}
