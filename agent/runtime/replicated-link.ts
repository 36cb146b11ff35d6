/**
 * The replication stream between the two members of a mirror: one mutually authenticated TLS
 * connection per replicated directory, on the config's `ports.peer` (the peer-link port, which no
 * other part of the agent binds for a mirror).
 *
 * The writer dials (it is the one that knows when to resynchronise); the secondary listens on its
 * own addresses and accepts a connection only from a certificate of the cluster CA that names the
 * peer member. The first bytes say which directory the stream is for (magic + index); the
 * secondary answers whether it needs a full copy ("F": its data was never in sync with this
 * cluster's writer) or only what changed ("Z", then a u32 length and a JSON list of what the
 * secondary itself recorded as changed: ranges it wrote as a writer that the peer may lack, which
 * must be overwritten too); everything after that is the replication stream (op-codec frames and
 * their acks).
 */
import { connect as tlsConnect, createServer, type Server, type TLSSocket } from "node:tls";
import type { AgentConfig } from "../config/schema";
import { bindError } from "../drivers/transport/bind-error";
import { certificateNames } from "../drivers/transport/peer-links";

const MAGIC = Buffer.from("MFR1", "latin1");
const HEADER_BYTES = 8;
const HANDSHAKE_TIMEOUT_MS = 5_000;

export type StreamHandler = (peer: string, dirIndex: number, socket: TLSSocket) => void;

/** The secondary's answer to a new stream. */
export const NEED_FULL = 0x46; // "F"
export const NEED_ZONES = 0x5a; // "Z"

/**
 * What the secondary recorded as changed on its side (it must get the writer's version of it):
 * ranges written, extents in doubt, `entries` created, removed or renamed (the writer sends its
 * own entry for each, content compared by block checksums), and `names` whose metadata or size
 * only changed; `flushed`: it made all it had applied durable when its last stream ended (so it
 * lost nothing of it), false after a crash.
 */
export type OwedByTarget = { files: Record<string, [number, number][]>; inDoubt: Record<string, [number, number][]>; entries: string[]; names: string[]; flushed: boolean };
export type DialedStream = { socket: TLSSocket; full: true } | { socket: TLSSocket; full: false; owed: OwedByTarget };

/** Bounds on the secondary's answer: untrusted input. */
const MAX_OWED_BYTES = 16 * 1024 * 1024;

export function encodeAnswer(answer: { full: true } | { full: false; owed: OwedByTarget }): Buffer {
  if (answer.full) return Buffer.of(NEED_FULL);
  const json = Buffer.from(JSON.stringify(answer.owed), "latin1");
  const head = Buffer.alloc(5);
  head[0] = NEED_ZONES;
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}

/** Checks the owed list's shape; paths are checked again by the resync that reads them. */
function parseOwed(json: Buffer): OwedByTarget | string {
  let v: unknown;
  try {
    v = JSON.parse(json.toString("latin1"));
  } catch {
    return "owed list is not JSON";
  }
  const o = v as OwedByTarget;
  if (typeof o !== "object" || o === null || typeof o.files !== "object" || o.files === null || typeof o.inDoubt !== "object" || o.inDoubt === null || !Array.isArray(o.entries) || !Array.isArray(o.names) || typeof o.flushed !== "boolean") {
    return "owed list has no files/inDoubt/entries/names/flushed";
  }
  if (![...o.entries, ...o.names].every((n) => typeof n === "string")) return "owed entries or names are not strings";
  const okRange = (r: unknown) => Array.isArray(r) && r.length === 2 && r.every((x) => Number.isSafeInteger(x) && (x as number) >= 0) && (r[0] as number) < (r[1] as number);
  for (const ranges of [...Object.values(o.files), ...Object.values(o.inDoubt)]) if (!Array.isArray(ranges) || !ranges.every(okRange)) return "owed ranges are not [start, end) pairs";
  return o;
}

function header(dirIndex: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(b, 0);
  b.writeUInt32BE(dirIndex, 4);
  return b;
}

function tuned(sock: TLSSocket): TLSSocket {
  sock.setNoDelay(true);
  sock.setKeepAlive(true, 1000);
  return sock;
}

/** The peer member's name (a 2-member mirror has exactly one). */
export function peerName(cfg: AgentConfig): string {
  const peer = cfg.members.find((m) => m.name !== cfg.node);
  if (!peer) throw new Error(`mirror ${cfg.node}: the config has no peer member`);
  return peer.name;
}

/** The secondary's side: accepts the writer's streams and hands them over with their directory. */
export class ReplicationListener {
  private readonly servers: Server[] = [];
  private readonly open = new Set<TLSSocket>();
  rejected = 0;

  constructor(
    private readonly cfg: AgentConfig,
    private readonly onStream: StreamHandler,
  ) {}

  async start(): Promise<void> {
    const { ca, cert, key } = this.cfg.secrets;
    const me = this.cfg.members.find((m) => m.name === this.cfg.node);
    for (const address of new Set(Object.values(me?.addresses ?? {}))) {
      const server = createServer({ ca, cert, key, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" }, (sock) => this.accepted(sock));
      server.on("tlsClientError", () => this.rejected++);
      await new Promise<void>((resolve, reject) => {
        server.once("error", (err) => reject(bindError("replication", address, this.cfg.ports.peer, err)));
        server.listen({ host: address, port: this.cfg.ports.peer, exclusive: true }, () => resolve());
      });
      server.on("error", () => this.rejected++);
      this.servers.push(server);
    }
  }

  private accepted(sock: TLSSocket): void {
    const peer = peerName(this.cfg);
    if (!certificateNames(sock.getPeerCertificate()).includes(peer)) {
      this.rejected++;
      sock.destroy();
      return;
    }
    this.open.add(sock);
    sock.once("close", () => this.open.delete(sock));
    sock.on("error", () => undefined);
    // Untrusted until the header is right: bounded in time and size.
    const timer = setTimeout(() => sock.destroy(), HANDSHAKE_TIMEOUT_MS);
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length < HEADER_BYTES) return;
      clearTimeout(timer);
      sock.off("data", onData);
      sock.pause();
      const all = Buffer.concat(chunks);
      if (!all.subarray(0, 4).equals(MAGIC)) {
        this.rejected++;
        sock.destroy();
        return;
      }
      if (all.length > HEADER_BYTES) sock.unshift(all.subarray(HEADER_BYTES));
      this.onStream(peer, all.readUInt32BE(4), tuned(sock));
    };
    sock.on("data", onData);
  }

  async close(): Promise<void> {
    for (const s of this.open) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.servers.length = 0;
  }
}

/**
 * The writer's side: a stream to the peer for directory `dirIndex`, trying each of the peer's
 * addresses in turn; rejects when none answers with a certificate naming the peer.
 */
export async function dialReplication(cfg: AgentConfig, dirIndex: number): Promise<DialedStream> {
  const peer = peerName(cfg);
  const addresses = Object.values(cfg.members.find((m) => m.name === peer)?.addresses ?? {});
  const errors: string[] = [];
  for (const host of addresses) {
    try {
      return await dialOne(cfg, peer, host, dirIndex);
    } catch (err) {
      errors.push(`${host}:${cfg.ports.peer}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(`replication stream to ${peer} failed (${errors.join("; ")})`);
}

function dialOne(cfg: AgentConfig, peer: string, host: string, dirIndex: number): Promise<DialedStream> {
  const { ca, cert, key } = cfg.secrets;
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({
      host,
      port: cfg.ports.peer,
      ca,
      cert,
      key,
      minVersion: "TLSv1.3",
      checkServerIdentity: (_host, c) => (certificateNames(c).includes(peer) ? undefined : new Error(`certificate does not name ${peer}`)),
    });
    const timer = setTimeout(() => sock.destroy(new Error(`no TLS handshake and answer within ${HANDSHAKE_TIMEOUT_MS} ms`)), HANDSHAKE_TIMEOUT_MS);
    sock.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.once("close", () => reject(new Error("closed by the peer (not following this node?)")));
    sock.once("secureConnect", () => {
      sock.write(header(dirIndex));
      let got = Buffer.alloc(0);
      const settle = (result: DialedStream | Error, rest: Buffer) => {
        clearTimeout(timer);
        sock.off("data", onData);
        sock.pause();
        sock.removeAllListeners("error");
        sock.removeAllListeners("close");
        sock.on("error", () => undefined);
        if (result instanceof Error) {
          sock.destroy();
          reject(result);
          return;
        }
        if (rest.length > 0) sock.unshift(rest);
        resolve(result);
      };
      const onData = (chunk: Buffer) => {
        got = Buffer.concat([got, chunk]);
        const kind = got[0];
        if (kind === NEED_FULL) return settle({ socket: tuned(sock), full: true }, got.subarray(1));
        if (kind !== NEED_ZONES) return settle(new Error(`unexpected answer ${String(kind)} to the stream header`), got);
        if (got.length < 5) return;
        const length = got.readUInt32BE(1);
        if (length > MAX_OWED_BYTES) return settle(new Error(`owed list of ${length} bytes is above ${MAX_OWED_BYTES}`), got);
        if (got.length < 5 + length) return;
        const owed = parseOwed(got.subarray(5, 5 + length));
        if (typeof owed === "string") return settle(new Error(owed), got);
        settle({ socket: tuned(sock), full: false, owed }, got.subarray(5 + length));
      };
      sock.on("data", onData);
    });
  });
}
