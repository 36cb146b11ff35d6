/**
 * Peer links: one mutually authenticated TLS stream per peer, carrying length-prefixed frames.
 *
 * Both sides present a certificate signed by the cluster CA, and each checks that the other's
 * certificate names the member it expects (CN or a DNS subjectAltName equal to the member name).
 * To keep exactly one link per pair without a tie-break protocol, the member whose name sorts first
 * dials and the other accepts. The dialer retries with exponential backoff, rotating over the peer's
 * addresses on every network.
 */
import { connect as tlsConnect, createServer, type PeerCertificate, type Server, type TLSSocket } from "node:tls";
import { bindError } from "./bind-error";
import { encodeFrame, FrameDecoder } from "./framing";

export type Endpoint = { address: string; port: number };
export type PeerSpec = { name: string; endpoints: Endpoint[] };
export type PeerLinkStats = { framesIn: number; framesOut: number; rejected: number; oversize: number; connects: number };

export interface PeerLinks {
  start(): Promise<void>;
  /** Queues a frame; false when the link is down or the frame is above the limit. */
  send(peer: string, frame: Uint8Array): boolean;
  onFrame(handler: (peer: string, frame: Uint8Array) => void): void;
  onLinkChange(handler: (peer: string, up: boolean) => void): void;
  isUp(peer: string): boolean;
  stats(): PeerLinkStats;
  close(): Promise<void>;
}

export type TlsMaterial = { ca: string; cert: string; key: string };

export type PeerLinkOptions = {
  self: string;
  listen: Endpoint[];
  peers: PeerSpec[];
  tls: TlsMaterial;
  maxFrameBytes?: number;
  backoff?: { minMs: number; maxMs: number };
};

export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** The member names a certificate speaks for. */
export function certificateNames(cert: PeerCertificate): string[] {
  const names: string[] = [];
  const cn = cert.subject?.CN;
  if (typeof cn === "string") names.push(cn);
  for (const part of (cert.subjectaltname ?? "").split(",")) {
    const m = /^\s*DNS:(.+)$/.exec(part);
    if (m?.[1]) names.push(m[1].trim());
  }
  return names;
}

/** Shared bookkeeping between the TLS links and the in-memory fake. */
abstract class LinkTable implements PeerLinks {
  protected frameHandler: (peer: string, frame: Uint8Array) => void = () => {};
  protected linkHandler: (peer: string, up: boolean) => void = () => {};
  protected readonly counts: PeerLinkStats = { framesIn: 0, framesOut: 0, rejected: 0, oversize: 0, connects: 0 };
  protected readonly maxFrame: number;

  constructor(protected readonly opts: PeerLinkOptions) {
    this.maxFrame = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  abstract start(): Promise<void>;
  abstract send(peer: string, frame: Uint8Array): boolean;
  abstract isUp(peer: string): boolean;
  abstract close(): Promise<void>;

  onFrame(handler: (peer: string, frame: Uint8Array) => void): void {
    this.frameHandler = handler;
  }
  onLinkChange(handler: (peer: string, up: boolean) => void): void {
    this.linkHandler = handler;
  }
  stats(): PeerLinkStats {
    return { ...this.counts };
  }
  protected dials(peer: string): boolean {
    return this.opts.self < peer;
  }
}

export class TlsPeerLinks extends LinkTable {
  private readonly servers: Server[] = [];
  private readonly sockets = new Map<string, TLSSocket>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly attempts = new Map<string, number>();
  /** Every raw connection, adopted or not (handshaking, dialing), so close() never waits on one. */
  private readonly raw = new Set<{ destroy(): void }>();
  private closed = false;

  async start(): Promise<void> {
    const { ca, cert, key } = this.opts.tls;
    for (const ep of this.opts.listen) {
      const server = createServer({ ca, cert, key, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" }, (sock) => this.accepted(sock));
      // Failed handshakes (wrong CA, no cert, garbage) are counted, never fatal.
      server.on("tlsClientError", () => {
        this.counts.rejected++;
      });
      server.on("connection", (sock: { destroy(): void; once(e: "close", f: () => void): void }) => this.track(sock));
      await new Promise<void>((resolve, reject) => {
        server.once("error", (err) => reject(bindError("peer links", ep.address, ep.port, err)));
        server.listen({ host: ep.address, port: ep.port, exclusive: true }, () => resolve());
      });
      server.on("error", () => {
        this.counts.rejected++;
      });
      this.servers.push(server);
    }
    for (const p of this.opts.peers) if (this.dials(p.name)) this.dial(p);
  }

  /** Port actually bound by the i-th listener (tests bind port 0). */
  boundPort(i = 0): number | undefined {
    const a = this.servers[i]?.address();
    return a && typeof a === "object" ? a.port : undefined;
  }

  send(peer: string, frame: Uint8Array): boolean {
    const s = this.sockets.get(peer);
    if (!s || frame.length > this.maxFrame) return false;
    s.write(encodeFrame(frame));
    this.counts.framesOut++;
    return true;
  }

  isUp(peer: string): boolean {
    return this.sockets.has(peer);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets.values()) s.destroy();
    for (const s of this.raw) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }

  private accepted(sock: TLSSocket): void {
    const names = certificateNames(sock.getPeerCertificate());
    const peer = this.opts.peers.find((p) => !this.dials(p.name) && names.includes(p.name));
    if (!peer) {
      this.counts.rejected++;
      sock.destroy();
      return;
    }
    this.adopt(peer.name, sock);
  }

  private dial(p: PeerSpec): void {
    if (this.closed) return;
    const n = this.attempts.get(p.name) ?? 0;
    const ep = p.endpoints[n % p.endpoints.length];
    if (!ep) return;
    const { ca, cert, key } = this.opts.tls;
    const sock = tlsConnect({
      host: ep.address,
      port: ep.port,
      ca,
      cert,
      key,
      minVersion: "TLSv1.3",
      servername: undefined,
      checkServerIdentity: (_host, c) => (certificateNames(c).includes(p.name) ? undefined : new Error(`peer certificate does not name ${p.name}`)),
    });
    this.track(sock);
    let adopted = false;
    sock.once("secureConnect", () => {
      adopted = true;
      this.attempts.set(p.name, 0);
      this.adopt(p.name, sock, () => this.retry(p));
    });
    sock.once("error", () => {
      if (!adopted) this.counts.rejected += sock.authorizationError ? 1 : 0;
    });
    sock.once("close", () => {
      if (!adopted) this.retry(p);
    });
  }

  private track(sock: { destroy(): void; once(e: "close", f: () => void): void }): void {
    this.raw.add(sock);
    sock.once("close", () => this.raw.delete(sock));
  }

  private retry(p: PeerSpec): void {
    if (this.closed || this.timers.has(p.name)) return;
    const n = (this.attempts.get(p.name) ?? 0) + 1;
    this.attempts.set(p.name, n);
    const { minMs, maxMs } = this.opts.backoff ?? { minMs: 100, maxMs: 2000 };
    const delay = Math.min(maxMs, minMs * 2 ** Math.min(n - 1, 16));
    this.timers.set(
      p.name,
      setTimeout(() => {
        this.timers.delete(p.name);
        this.dial(p);
      }, delay),
    );
  }

  private adopt(peer: string, sock: TLSSocket, onLost?: () => void): void {
    const previous = this.sockets.get(peer);
    if (previous) {
      this.sockets.delete(peer);
      previous.destroy();
    }
    this.sockets.set(peer, sock);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 1000);
    this.counts.connects++;
    const decoder = new FrameDecoder(this.maxFrame);
    sock.on("data", (chunk: Buffer) => {
      const frames = decoder.push(chunk);
      if (frames === "oversize") {
        this.counts.oversize++;
        sock.destroy();
        return;
      }
      for (const f of frames) {
        this.counts.framesIn++;
        this.frameHandler(peer, f);
      }
    });
    sock.on("error", () => {});
    sock.once("close", () => {
      if (this.sockets.get(peer) !== sock) return;
      this.sockets.delete(peer);
      this.linkHandler(peer, false);
      onLost?.();
    });
    this.linkHandler(peer, true);
  }
}

/** In-memory links: nodes registered on the same hub are linked while neither is cut off. */
export class MemoryPeerHub {
  private readonly nodes = new Map<string, MemoryPeerLinks>();
  private readonly cut = new Set<string>();

  join(links: MemoryPeerLinks): void {
    this.nodes.set(links.name, links);
    this.refresh();
  }
  leave(name: string): void {
    this.nodes.delete(name);
    this.refresh();
  }
  isolate(name: string): void {
    this.cut.add(name);
    this.refresh();
  }
  heal(): void {
    this.cut.clear();
    this.refresh();
  }
  reachable(a: string, b: string): MemoryPeerLinks | undefined {
    if (this.cut.has(a) || this.cut.has(b)) return undefined;
    return this.nodes.get(b);
  }
  private refresh(): void {
    for (const n of this.nodes.values()) n.refresh();
  }
}

export class MemoryPeerLinks extends LinkTable {
  private readonly up = new Set<string>();
  private started = false;

  constructor(
    private readonly hub: MemoryPeerHub,
    opts: PeerLinkOptions,
  ) {
    super(opts);
  }

  get name(): string {
    return this.opts.self;
  }

  async start(): Promise<void> {
    this.started = true;
    this.hub.join(this);
  }

  /** Re-evaluates which peers are reachable and reports the changes, as a reconnect would. */
  refresh(): void {
    for (const p of this.opts.peers) {
      const other = this.started ? this.hub.reachable(this.name, p.name) : undefined;
      const linked = other !== undefined && other.knows(this.name);
      if (linked && !this.up.has(p.name)) {
        this.up.add(p.name);
        this.counts.connects++;
        setImmediate(() => this.linkHandler(p.name, true));
      } else if (!linked && this.up.has(p.name)) {
        this.up.delete(p.name);
        setImmediate(() => this.linkHandler(p.name, false));
      }
    }
  }

  knows(peer: string): boolean {
    return this.started && this.opts.peers.some((p) => p.name === peer);
  }

  send(peer: string, frame: Uint8Array): boolean {
    const other = this.up.has(peer) ? this.hub.reachable(this.name, peer) : undefined;
    if (!other || frame.length > this.maxFrame) return false;
    this.counts.framesOut++;
    const copy = Uint8Array.from(frame);
    setImmediate(() => other.receive(this.name, copy));
    return true;
  }

  receive(from: string, frame: Uint8Array): void {
    if (!this.up.has(from)) return;
    if (frame.length > this.maxFrame) {
      this.counts.oversize++;
      return;
    }
    this.counts.framesIn++;
    this.frameHandler(from, frame);
  }

  isUp(peer: string): boolean {
    return this.up.has(peer);
  }

  async close(): Promise<void> {
    this.started = false;
    this.hub.leave(this.name);
    this.refresh();
  }
}
