/**
 * Authenticated datagram transport (heartbeats, witness votes): one UDP socket per network,
 * each bound to this node's own address on that network, never the wildcard address.
 * Garbage, forged, replayed, oversized or unknown-sender datagrams are dropped and counted.
 */
import { createSocket, type Socket } from "node:dgram";
import { bindError } from "./bind-error";
import { CounterSource, DatagramOpener, seal, type DropReason } from "./datagram-codec";

export type Binding = { network: string; address: string; port: number };
export type Received = { network: string; sender: string; payload: Uint8Array; from: { address: string; port: number } };
export type DatagramStats = { sent: number; received: number; sendErrors: number; dropped: Record<DropReason, number> };

export interface DatagramTransport {
  start(): Promise<void>;
  /** Fire and forget: heartbeats are periodic, a lost one is replaced by the next. */
  send(network: string, to: { address: string; port: number }, payload: Uint8Array): void;
  onReceive(handler: (m: Received) => void): void;
  stats(): DatagramStats;
  close(): Promise<void>;
}

export type DatagramOptions = {
  self: string;
  key: Uint8Array;
  knownSenders: Iterable<string>;
  bindings: Binding[];
  nowMs?: () => number;
};

export function emptyStats(): DatagramStats {
  return { sent: 0, received: 0, sendErrors: 0, dropped: { size: 0, malformed: 0, auth: 0, "unknown-sender": 0, replay: 0 } };
}

/** What the real and the fake transport share: sealing, opening and counting. */
export abstract class SealedTransport implements DatagramTransport {
  protected readonly counters: CounterSource;
  protected readonly opener: DatagramOpener;
  protected readonly counts = emptyStats();
  private handler: (m: Received) => void = () => {};

  constructor(protected readonly opts: DatagramOptions) {
    this.counters = new CounterSource(opts.nowMs);
    this.opener = new DatagramOpener(opts.key, new Set(opts.knownSenders));
  }

  abstract start(): Promise<void>;
  abstract close(): Promise<void>;
  protected abstract transmit(network: string, to: { address: string; port: number }, bytes: Buffer): void;

  send(network: string, to: { address: string; port: number }, payload: Uint8Array): void {
    const bytes = seal(this.opts.key, this.opts.self, this.counters.next(), payload);
    this.transmit(network, to, bytes);
  }

  onReceive(handler: (m: Received) => void): void {
    this.handler = handler;
  }

  stats(): DatagramStats {
    return { ...this.counts, dropped: { ...this.counts.dropped } };
  }

  /** Entry point for every incoming datagram, whatever carried it. Never throws. */
  protected deliver(network: string, from: { address: string; port: number }, raw: Uint8Array): void {
    const r = this.opener.open(raw);
    if (!r.ok) {
      this.counts.dropped[r.reason]++;
      return;
    }
    this.counts.received++;
    this.handler({ network, sender: r.sender, payload: r.payload, from });
  }
}

export class UdpTransport extends SealedTransport {
  private readonly sockets = new Map<string, Socket>();

  async start(): Promise<void> {
    for (const b of this.opts.bindings) {
      const sock = createSocket({ type: b.address.includes(":") ? "udp6" : "udp4" });
      sock.on("message", (msg, rinfo) => this.deliver(b.network, { address: rinfo.address, port: rinfo.port }, msg));
      // A socket error after bind (e.g. ICMP unreachable on some kernels) must not kill the agent.
      sock.on("error", () => {
        this.counts.sendErrors++;
      });
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error) => reject(bindError(`heartbeats (network ${b.network})`, b.address, b.port, err));
        sock.once("error", onError);
        sock.bind({ address: b.address, port: b.port, exclusive: true }, () => {
          sock.off("error", onError);
          resolve();
        });
      });
      this.sockets.set(b.network, sock);
    }
  }

  protected transmit(network: string, to: { address: string; port: number }, bytes: Buffer): void {
    const sock = this.sockets.get(network);
    if (!sock) {
      this.counts.sendErrors++;
      return;
    }
    sock.send(bytes, to.port, to.address, (err) => {
      if (err) this.counts.sendErrors++;
      else this.counts.sent++;
    });
  }

  /** Port actually bound for a network (tests bind port 0). */
  boundPort(network: string): number | undefined {
    return this.sockets.get(network)?.address().port;
  }

  async close(): Promise<void> {
    await Promise.all([...this.sockets.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.sockets.clear();
  }
}

/** In-memory network of datagram endpoints keyed by "address:port"; delivery is asynchronous like UDP. */
export class MemoryDatagramNetwork {
  private readonly endpoints = new Map<string, (from: { address: string; port: number }, raw: Uint8Array) => void>();
  private readonly cut = new Set<string>();

  register(at: { address: string; port: number }, deliver: (from: { address: string; port: number }, raw: Uint8Array) => void): void {
    const k = `${at.address}:${at.port}`;
    if (this.endpoints.has(k)) throw new Error(`address in use: ${k}`);
    this.endpoints.set(k, deliver);
  }
  unregister(at: { address: string; port: number }): void {
    this.endpoints.delete(`${at.address}:${at.port}`);
  }
  /** Drop everything to or from this address until healed. */
  isolate(address: string): void {
    this.cut.add(address);
  }
  heal(): void {
    this.cut.clear();
  }
  /** Raw bytes from anyone, as an attacker on the segment could send. */
  inject(from: { address: string; port: number }, to: { address: string; port: number }, raw: Uint8Array): void {
    if (this.cut.has(from.address) || this.cut.has(to.address)) return;
    const target = this.endpoints.get(`${to.address}:${to.port}`);
    if (target) setImmediate(() => target(from, Uint8Array.from(raw)));
  }
}

export class MemoryTransport extends SealedTransport {
  constructor(
    private readonly net: MemoryDatagramNetwork,
    opts: DatagramOptions,
  ) {
    super(opts);
  }

  async start(): Promise<void> {
    for (const b of this.opts.bindings) this.net.register(b, (from, raw) => this.deliver(b.network, from, raw));
  }

  protected transmit(network: string, to: { address: string; port: number }, bytes: Buffer): void {
    const b = this.opts.bindings.find((x) => x.network === network);
    if (!b) {
      this.counts.sendErrors++;
      return;
    }
    this.counts.sent++;
    this.net.inject(b, to, bytes);
  }

  async close(): Promise<void> {
    for (const b of this.opts.bindings) this.net.unregister(b);
  }
}
