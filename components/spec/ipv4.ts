/** Minimal IPv4 parsing for spec validation (addresses and CIDRs in dotted-quad form). */

export function parseIpv4(text: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map(Number);
  if (octets.some((o) => o > 255)) return undefined;
  return octets.reduce((acc, o) => acc * 256 + o, 0);
}

export interface Cidr {
  readonly base: number;
  readonly prefixLength: number;
}

export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, ...rest] = text.split("/");
  if (addr === undefined || len === undefined || rest.length > 0 || !/^\d{1,2}$/.test(len)) return undefined;
  const base = parseIpv4(addr);
  const prefixLength = Number(len);
  if (base === undefined || prefixLength > 32) return undefined;
  return { base, prefixLength };
}

function networkOf(address: number, prefixLength: number): number {
  const size = 2 ** (32 - prefixLength);
  return Math.floor(address / size) * size;
}

export function cidrContains(cidr: Cidr, address: number): boolean {
  return networkOf(cidr.base, cidr.prefixLength) === networkOf(address, cidr.prefixLength);
}
