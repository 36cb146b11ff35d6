// The bucket map as it travels in farm heartbeats: 512 hex characters, two per bucket, each the
// owner's index among the farm's members sorted by name ("ff": unowned). 256 names in JSON would
// take ~2.5 KB and crowd the 4 KiB message limit; this takes 512 bytes.
import { BUCKETS, type FarmMember } from "./buckets";
import { bucketMap, type BucketMap } from "./node";

export type WireBucketMap = { leader: string; version: number; owners: string };

const UNOWNED = "ff";

function sortedNames(members: ReadonlyArray<FarmMember>): string[] {
  return members.map((m) => m.name).sort();
}

export function encodeBucketMap(map: BucketMap, members: ReadonlyArray<FarmMember>): WireBucketMap {
  const names = sortedNames(members);
  if (names.length > 255) throw new RangeError(`a farm of ${names.length} members does not fit the bucket map encoding (at most 255)`);
  let owners = "";
  for (let b = 0; b < BUCKETS; b++) {
    const i = names.indexOf(map.owners[b] ?? "");
    owners += i < 0 ? UNOWNED : i.toString(16).padStart(2, "0");
  }
  return { leader: map.leader, version: map.version, owners };
}

/** The value of a lowercase hex digit's character code (the caller checked the characters). */
function hexDigit(code: number): number {
  return code <= 0x39 ? code - 0x30 : code - 0x57;
}

/** Never throws: anything malformed (length, digits, index past the member list) gives an error string. */
export function decodeBucketMap(wire: WireBucketMap, members: ReadonlyArray<FarmMember>): { ok: true; map: BucketMap } | { ok: false; error: string } {
  const names = sortedNames(members);
  if (typeof wire.owners !== "string" || !/^[0-9a-f]*$/.test(wire.owners) || wire.owners.length !== 2 * BUCKETS)
    return { ok: false, error: `bucket map owners must be ${2 * BUCKETS} lowercase hex characters` };
  if (typeof wire.leader !== "string" || (wire.leader !== "" && !names.includes(wire.leader))) return { ok: false, error: "bucket map leader is not a member" };
  if (!Number.isSafeInteger(wire.version) || wire.version < 0) return { ok: false, error: "bucket map version must be a non-negative integer" };
  const owners: (string | null)[] = new Array<string | null>(BUCKETS);
  for (let b = 0; b < BUCKETS; b++) {
    const i = hexDigit(wire.owners.charCodeAt(2 * b)) * 16 + hexDigit(wire.owners.charCodeAt(2 * b + 1));
    if (i === 0xff) {
      owners[b] = null;
      continue;
    }
    const name = names[i];
    if (name === undefined) return { ok: false, error: `bucket ${b} names member index ${i}, past the ${names.length} members` };
    owners[b] = name;
  }
  return { ok: true, map: bucketMap(wire.leader, wire.version, owners) };
}

/** A set of buckets as it travels in farm heartbeats: a 256-bit bitmap, 64 hex characters. */
export function encodeBucketSet(buckets: ReadonlyArray<number>): string {
  const bytes = new Uint8Array(BUCKETS / 8);
  for (const b of buckets) bytes[b >> 3]! |= 1 << (b & 7);
  return Buffer.from(bytes).toString("hex");
}

export const BUCKET_SET_RE = /^[0-9a-f]{64}$/;

/** The buckets of a bitmap that BUCKET_SET_RE accepted, ascending. */
export function decodeBucketSet(hex: string): number[] {
  const bytes = Buffer.from(hex, "hex");
  const out: number[] = [];
  for (let b = 0; b < BUCKETS; b++) if ((bytes[b >> 3]! >> (b & 7)) & 1) out.push(b);
  return out;
}
