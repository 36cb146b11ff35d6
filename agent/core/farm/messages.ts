// The farm heartbeat and its codec (typed message <-> bytes). Framing as the mirror's messages
// (magic "MF", format version, UTF-8 JSON; ../messages.ts); a farm node speaks only this kind.
// Decoding treats the bytes as hostile even after authentication: it never throws, bounds the
// size and checks every field.
import { MAX_MESSAGE_BYTES, type Stamp } from "../messages";
import type { FarmState } from "./states";
import { BUCKET_SET_RE, type WireBucketMap } from "./wire";

/** What a farm node tells every other member each heartbeat interval (and at once on a change). */
export type FarmHeartbeat = {
  kind: "farm-hb";
  from: string;
  /** Sender's boot and tick: a receiver keeps only the newest heartbeat of each sender. */
  sent: Stamp;
  state: FarmState;
  /** The sender's target map (followers compute theirs from the leader's). */
  map: WireBucketMap;
  /**
   * The buckets the sender's filter lets in right now (encodeBucketSet). A node takes a bucket from
   * a live peer only once that peer says here it no longer serves it (drop before gain).
   */
  owned: string;
};

const MAGIC = [0x4d, 0x46] as const;
const FORMAT_VERSION = 1;
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const STATES: ReadonlyArray<FarmState> = ["STOP", "WAIT", "UP"];

export function encodeFarmMessage(m: FarmHeartbeat): Buffer {
  const body = Buffer.from(JSON.stringify(m), "utf8");
  const out = Buffer.concat([Buffer.from([...MAGIC, FORMAT_VERSION]), body]);
  if (out.length > MAX_MESSAGE_BYTES) throw new RangeError(`farm heartbeat encodes to ${out.length} bytes, above ${MAX_MESSAGE_BYTES}`);
  return out;
}

export type FarmDecodeResult = { ok: true; message: FarmHeartbeat } | { ok: false; error: string };

const natural = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Never throws: garbage, oversize or ill-typed input gives { ok: false, error }. */
export function decodeFarmMessage(bytes: Uint8Array): FarmDecodeResult {
  const bad = (error: string): FarmDecodeResult => ({ ok: false, error });
  if (bytes.length > MAX_MESSAGE_BYTES) return bad(`message of ${bytes.length} bytes is above the ${MAX_MESSAGE_BYTES}-byte limit`);
  if (bytes.length < 3 || bytes[0] !== MAGIC[0] || bytes[1] !== MAGIC[1]) return bad("not a mirrorfarm message (bad magic)");
  if (bytes[2] !== FORMAT_VERSION) return bad(`unsupported message format version ${String(bytes[2])} (this agent speaks ${FORMAT_VERSION})`);
  let o: unknown;
  try {
    o = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 3, bytes.length - 3).toString("utf8"));
  } catch {
    return bad("message body is not valid JSON");
  }
  if (!isObj(o) || o.kind !== "farm-hb") return bad("not a farm heartbeat (kind must be farm-hb)");
  const errs: string[] = [];
  if (typeof o.from !== "string" || !NAME_RE.test(o.from)) errs.push("from must be a node name");
  const sent = o.sent;
  if (!isObj(sent) || !natural(sent.boot) || !natural(sent.tick)) errs.push("sent must be a stamp {boot, tick}");
  if (!STATES.includes(o.state as FarmState)) errs.push(`state must be one of ${STATES.join(", ")}`);
  const map = o.map;
  if (!isObj(map) || typeof map.leader !== "string" || map.leader.length > 63 || !natural(map.version) || typeof map.owners !== "string" || map.owners.length > 512)
    errs.push("map must be {leader, version, owners}");
  if (typeof o.owned !== "string" || !BUCKET_SET_RE.test(o.owned)) errs.push("owned must be 64 lowercase hex characters (a 256-bit bucket set)");
  if (errs.length > 0) return bad(`invalid farm heartbeat: ${errs.join("; ")}`);
  const s = sent as { boot: number; tick: number };
  const m = map as { leader: string; version: number; owners: string };
  return {
    ok: true,
    message: {
      kind: "farm-hb",
      from: o.from as string,
      sent: { boot: s.boot, tick: s.tick },
      state: o.state as FarmState,
      map: { leader: m.leader, version: m.version, owners: m.owners },
      owned: o.owned as string,
    },
  };
}
