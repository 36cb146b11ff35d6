/**
 * The replication stream between the two members of a mirror: one mutually authenticated TLS
 * connection per replicated directory, on the config's `ports.peer` (the peer-link port, which no
 * other part of the agent binds for a mirror).
 *
 * The writer dials (it is the one that knows when to resynchronise); the secondary listens on its
 * own addresses and accepts a connection only from a certificate of the cluster CA that names the
 * peer member. The first bytes say which directory the stream is for (magic + index); the
 * secondary answers one byte, whether it needs a full copy ("F": its data was never in sync with
 * this cluster's writer) or only what changed ("Z"); everything after that is the replication
 * stream (op-codec frames and their acks).
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

export type DialedStream = { socket: TLSSocket; full: boolean };

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
      sock.once("data", (chunk: Buffer) => {
        clearTimeout(timer);
        sock.pause();
        sock.removeAllListeners("error");
        sock.removeAllListeners("close");
        sock.on("error", () => undefined);
        const answer = chunk[0];
        if (answer !== NEED_FULL && answer !== NEED_ZONES) {
          sock.destroy();
          reject(new Error(`unexpected answer ${String(answer)} to the stream header`));
          return;
        }
        if (chunk.length > 1) sock.unshift(chunk.subarray(1));
        resolve({ socket: tuned(sock), full: answer === NEED_FULL });
      });
    });
  });
}
