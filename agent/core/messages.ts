// Messages between mirror nodes and the witness, and their codec (typed message <-> bytes).
//
// The transport authenticates every datagram (HMAC) before decoding; decoding still treats the
// bytes as hostile: it never throws, bounds the size, and checks every field's type and range, so
// a bug or a replayed old version can at worst be dropped with a reason.
//
// Wire format: magic "MF", format version 1, then the message as UTF-8 JSON. JSON keeps the
// format readable in packet captures; at a few hundred bytes per heartbeat size is no concern.
import type { MirrorRole } from "./mirror/roles";

/** A point in a node's own time: its boot counter and its tick count in that boot. */
export type Stamp = { boot: number; tick: number };

/** What a mirror node tells its peer every heartbeat interval, on every network. */
export type Heartbeat = {
  kind: "hb";
  from: string;
  /** Sender's time when sent; the receiver echoes the latest one it heard. */
  sent: Stamp;
  /**
   * Per-boot sequence number: orders two heartbeats of the same tick (a periodic one and one sent
   * at once on a change), which the network may deliver in either order.
   */
  seq: number;
  /** The latest `sent` stamp of the receiver that the sender heard, or null: renews the receiver's lease. */
  echo: Stamp | null;
  role: MirrorRole;
  /** Highest epoch the sender knows or promised (a writer asking for its next one promised it). */
  epoch: number;
  /** The epoch whose data the sender fully holds; for a writer, the epoch it writes at. */
  dataEpoch: number;
  upToDate: boolean;
  /** The sender was the writer at dataEpoch (it is the last primary). */
  lastWriter: boolean;
  /** False while the sender hands over (swap, `second`): it ranks below its peer. */
  wantsPrimary: boolean;
  /** Set by a writer: the peer incarnation (boot) it has resynchronised and keeps in sync, if any. */
  peerInSync: number | null;
  /** Set by a writer while it resynchronises its peer: percent done. */
  resyncPercent: number | null;
  /** Set by a secondary: the writer it follows, and at which epoch. */
  following: { primary: string; epoch: number } | null;
};

/** A candidate asks the witness or its peer for the vote that makes `epoch` its own. */
export type VoteRequest = {
  kind: "vote-req";
  from: string;
  sent: Stamp;
  epoch: number;
  dataEpoch: number;
  upToDate: boolean;
  lastWriter: boolean;
  wantsPrimary: boolean;
  /** True when the candidate is already the writer (a primary going ALONE). */
  writer: boolean;
  /** primforce: the voter skips the data-freshness check (never the lease check). */
  force: boolean;
};

export type VoteReply = {
  kind: "vote-reply";
  from: string;
  epoch: number;
  granted: boolean;
  /** The request's `sent`: a grant is also a lease counted from it. */
  echo: Stamp;
  /** The voter's highest epoch (a refused candidate retries above it). */
  voterEpoch: number;
  /** Refused because the candidate's data is older than an epoch the voter knows of. */
  stale: boolean;
  reason: string;
};

/** A writer renews its lease at the witness every heartbeat interval. */
export type LeaseRenew = { kind: "renew"; from: string; sent: Stamp; epoch: number };

export type LeaseReply = {
  kind: "renew-reply";
  from: string;
  ok: boolean;
  echo: Stamp;
  /** The witness's epoch and its holder: a writer below it steps down. */
  epoch: number;
  holder: string | null;
  reason: string;
};

/** The secondary asks the primary to hand over (admin swap/prim typed on the secondary). */
export type SwapRequest = { kind: "swap-req"; from: string; epoch: number };

export type Message = Heartbeat | VoteRequest | VoteReply | LeaseRenew | LeaseReply | SwapRequest;
export type MessageKind = Message["kind"];

/** Largest encoded message accepted or produced; a heartbeat is about 400 bytes. */
export const MAX_MESSAGE_BYTES = 4096;
const MAGIC0 = 0x4d; // "M"
const MAGIC1 = 0x46; // "F"
const FORMAT_VERSION = 1;
const ROLES: ReadonlyArray<MirrorRole> = ["STOP", "WAIT", "PRIM", "SECOND", "ALONE"];
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_REASON = 512;

export type DecodeResult = { ok: true; message: Message } | { ok: false; error: string };

export function encodeMessage(m: Message): Buffer {
  const body = Buffer.from(JSON.stringify(m), "utf8");
  const out = Buffer.allocUnsafe(3 + body.length);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = FORMAT_VERSION;
  body.copy(out, 3);
  if (out.length > MAX_MESSAGE_BYTES) throw new RangeError(`message ${m.kind} encodes to ${out.length} bytes, above ${MAX_MESSAGE_BYTES}`);
  return out;
}

/** Never throws: garbage, oversize or ill-typed input gives { ok: false, error }. */
export function decodeMessage(bytes: Uint8Array): DecodeResult {
  if (bytes.length > MAX_MESSAGE_BYTES) return bad(`message of ${bytes.length} bytes is above the ${MAX_MESSAGE_BYTES}-byte limit`);
  if (bytes.length < 3 || bytes[0] !== MAGIC0 || bytes[1] !== MAGIC1) return bad("not a mirrorfarm message (bad magic)");
  if (bytes[2] !== FORMAT_VERSION) return bad(`unsupported message format version ${String(bytes[2])} (this agent speaks ${FORMAT_VERSION})`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 3, bytes.length - 3).toString("utf8"));
  } catch {
    return bad("message body is not valid JSON");
  }
  const errors: string[] = [];
  const message = parseMessage(raw, errors);
  if (!message || errors.length > 0) return bad(`invalid message: ${errors.join("; ") || "unknown kind"}`);
  return { ok: true, message };
}

function bad(error: string): DecodeResult {
  return { ok: false, error };
}

// Field readers: each records a problem instead of throwing and returns a typed placeholder.
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

function nat(o: Obj, k: string, errs: string[]): number {
  const v = o[k];
  if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return v;
  errs.push(`${k} must be a non-negative integer`);
  return 0;
}
function bool(o: Obj, k: string, errs: string[]): boolean {
  const v = o[k];
  if (typeof v === "boolean") return v;
  errs.push(`${k} must be a boolean`);
  return false;
}
function name(o: Obj, k: string, errs: string[]): string {
  const v = o[k];
  if (typeof v === "string" && NAME_RE.test(v)) return v;
  errs.push(`${k} must be a node name`);
  return "";
}
function text(o: Obj, k: string, errs: string[]): string {
  const v = o[k];
  if (typeof v === "string" && v.length <= MAX_REASON) return v;
  errs.push(`${k} must be a string of at most ${MAX_REASON} characters`);
  return "";
}
function stamp(v: unknown, k: string, errs: string[]): Stamp {
  if (!isObj(v)) {
    errs.push(`${k} must be a stamp {boot, tick}`);
    return { boot: 0, tick: 0 };
  }
  return { boot: nat(v, "boot", errs), tick: nat(v, "tick", errs) };
}
function nullable<T>(o: Obj, k: string, read: (v: unknown) => T): T | null {
  return o[k] === null ? null : read(o[k]);
}

function parseMessage(raw: unknown, e: string[]): Message | null {
  if (!isObj(raw)) {
    e.push("body must be a JSON object");
    return null;
  }
  const o = raw;
  switch (o.kind) {
    case "hb": {
      const role = o.role;
      if (!ROLES.includes(role as MirrorRole)) e.push(`role must be one of ${ROLES.join(", ")}`);
      const pct = nullable(o, "resyncPercent", (v) => (typeof v === "number" && v >= 0 && v <= 100 ? v : (e.push("resyncPercent must be 0-100 or null"), 0)));
      const following = nullable(o, "following", (v) =>
        isObj(v) ? { primary: name(v, "primary", e), epoch: nat(v, "epoch", e) } : (e.push("following must be {primary, epoch} or null"), { primary: "", epoch: 0 }),
      );
      return {
        kind: "hb",
        from: name(o, "from", e),
        sent: stamp(o.sent, "sent", e),
        seq: nat(o, "seq", e),
        echo: nullable(o, "echo", (v) => stamp(v, "echo", e)),
        role: role as MirrorRole,
        epoch: nat(o, "epoch", e),
        dataEpoch: nat(o, "dataEpoch", e),
        upToDate: bool(o, "upToDate", e),
        lastWriter: bool(o, "lastWriter", e),
        wantsPrimary: bool(o, "wantsPrimary", e),
        peerInSync: nullable(o, "peerInSync", (v) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : (e.push("peerInSync must be a boot number or null"), 0))),
        resyncPercent: pct,
        following,
      };
    }
    case "vote-req":
      return {
        kind: "vote-req",
        from: name(o, "from", e),
        sent: stamp(o.sent, "sent", e),
        epoch: nat(o, "epoch", e),
        dataEpoch: nat(o, "dataEpoch", e),
        upToDate: bool(o, "upToDate", e),
        lastWriter: bool(o, "lastWriter", e),
        wantsPrimary: bool(o, "wantsPrimary", e),
        writer: bool(o, "writer", e),
        force: bool(o, "force", e),
      };
    case "vote-reply":
      return {
        kind: "vote-reply",
        from: name(o, "from", e),
        epoch: nat(o, "epoch", e),
        granted: bool(o, "granted", e),
        echo: stamp(o.echo, "echo", e),
        voterEpoch: nat(o, "voterEpoch", e),
        stale: bool(o, "stale", e),
        reason: text(o, "reason", e),
      };
    case "renew":
      return { kind: "renew", from: name(o, "from", e), sent: stamp(o.sent, "sent", e), epoch: nat(o, "epoch", e) };
    case "renew-reply":
      return {
        kind: "renew-reply",
        from: name(o, "from", e),
        ok: bool(o, "ok", e),
        echo: stamp(o.echo, "echo", e),
        epoch: nat(o, "epoch", e),
        holder: nullable(o, "holder", (v) => (typeof v === "string" && NAME_RE.test(v) ? v : (e.push("holder must be a node name or null"), ""))),
        reason: text(o, "reason", e),
      };
    case "swap-req":
      return { kind: "swap-req", from: name(o, "from", e), epoch: nat(o, "epoch", e) };
    default:
      e.push(`kind must be one of hb, vote-req, vote-reply, renew, renew-reply, swap-req`);
      return null;
  }
}
