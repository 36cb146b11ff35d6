// The kernel's bucket for a client, computed here exactly as nft does (`jhash KEY mod 256 seed S`:
// Bob Jenkins' lookup3 `jhash()` over the key's register bytes, then reciprocal_scale to 0..255),
// so the agent can tell which node serves a given client and tests can check every answer against
// the owner of its bucket.
import { isIPv4 } from "node:net";
import { MirrorfarmError } from "../../errors";
import { BUCKETS } from "./filter";

const rol = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

// linux/jhash.h: __jhash_final(a, b, c); returns c.
function finalMix(a: number, b: number, c: number): number {
  c = ((c ^ b) - rol(b, 14)) >>> 0;
  a = ((a ^ c) - rol(c, 11)) >>> 0;
  b = ((b ^ a) - rol(a, 25)) >>> 0;
  c = ((c ^ b) - rol(b, 16)) >>> 0;
  a = ((a ^ c) - rol(c, 4)) >>> 0;
  b = ((b ^ a) - rol(a, 14)) >>> 0;
  c = ((c ^ b) - rol(b, 24)) >>> 0;
  return c;
}

/** linux/jhash.h jhash() for keys of 1..12 bytes (ours are 4 or 8). */
export function jhash(key: Uint8Array, seed: number): number {
  if (key.length < 1 || key.length > 12) throw new Error(`jhash: key of ${key.length} bytes, expected 1..12`);
  const init = (0xdeadbeef + key.length + seed) >>> 0;
  const w = [init, init, init];
  // Byte i is added to word floor(i/4) (a, b, c), shifted by 8*(i%4): the tail switch of jhash().
  key.forEach((byte, i) => {
    const j = Math.floor(i / 4);
    w[j] = ((w[j] as number) + (byte << (8 * (i % 4)))) >>> 0;
  });
  return finalMix(w[0] as number, w[1] as number, w[2] as number);
}

/** reciprocal_scale(h, 256): the top 8 bits. */
const toBucket = (h: number): number => Math.floor((h / 2 ** 32) * BUCKETS);

function addressBytes(ip: string): number[] {
  if (!isIPv4(ip)) throw new MirrorfarmError("MF_FARM_RULES_INVALID", `client address "${ip}" is not an IPv4 address`);
  return ip.split(".").map(Number);
}

/** Bucket of a client under `srcip` affinity (`jhash ip saddr mod 256 seed S`). */
export function bucketOfSource(ip: string, seed: number): number {
  return toBucket(jhash(Uint8Array.from(addressBytes(ip)), seed));
}

/** Bucket of a flow under `srcip+srcport` (`jhash ip saddr . tcp sport`): the port sits in its own
 *  32-bit register word, network order, zero padded, so the key is 8 bytes. */
export function bucketOfFlow(ip: string, port: number, seed: number): number {
  return toBucket(jhash(Uint8Array.from([...addressBytes(ip), port >> 8, port & 0xff, 0, 0]), seed));
}
