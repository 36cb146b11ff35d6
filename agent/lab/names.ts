// Names and addresses of one lab. Every kernel object a lab creates carries the lab's name, so
// several labs coexist and cleanup touches exactly what this lab made (by exact name).
import { MirrorfarmError } from "../errors";

export const DEFAULT_LAB = "default";
export const MAX_HOSTS = 20;
/** Client source addresses: .50 (primary) to .250. */
export const CLIENT_FIRST = 50;
export const CLIENT_LAST = 250;

const LAB_NAME = /^[a-z][a-z0-9]{0,7}$/;

export function validateLabName(name: string): void {
  if (!LAB_NAME.test(name))
    throw new MirrorfarmError(
      "MF_LAB_NAME",
      `lab name '${name}' is not allowed: use 1-8 lowercase letters and digits, starting with a letter ` +
        "(it is part of Linux interface names, which are limited to 15 characters)",
    );
}

export type HostKind = "server" | "witness" | "client";

export function hostKind(host: string): HostKind {
  if (host === "witness") return "witness";
  if (host === "client") return "client";
  return "server";
}

/** host1..hostN, witness, client. */
export function hostNames(servers: number): string[] {
  return [...Array.from({ length: servers }, (_, i) => `host${i + 1}`), "witness", "client"];
}

/** Short code used in interface names: h1..h20, w, c. */
function hostCode(host: string): string {
  if (host === "witness") return "w";
  if (host === "client") return "c";
  const m = /^host([1-9][0-9]?)$/.exec(host);
  if (!m) throw new MirrorfarmError("MF_LAB_HOST", `unknown host '${host}'; hosts are host1..host${MAX_HOSTS}, witness and client`);
  return `h${m[1]}`;
}

export interface LabNames {
  bridge: string;
  /** nftables table (bridge family, root namespace) holding the lab's pairwise cuts and packet loss. */
  cutTable: string;
  netns: (host: string) => string;
  /** The veth end left in the root namespace and enslaved to the bridge (the host's "switch port"). */
  port: (host: string) => string;
}

export function labNames(lab: string): LabNames {
  validateLabName(lab);
  return {
    bridge: `mfbr-${lab}`,
    cutTable: `mf-${lab}`,
    netns: (host) => `mf-${lab}-${host}`,
    port: (host) => `mf-${lab}-${hostCode(host)}`,
  };
}

/** Addresses inside the lab's 10.213.N.0/24. */
export interface LabAddresses {
  subnet: number;
  prefix: string;
  host: (host: string) => string;
  root: string;
  mirrorVip: string;
  farmVip: string;
  clientAddresses: string[];
}

export function labAddresses(subnet: number): LabAddresses {
  const prefix = `10.213.${subnet}`;
  return {
    subnet,
    prefix,
    host: (host) => {
      if (host === "witness") return `${prefix}.40`;
      if (host === "client") return `${prefix}.${CLIENT_FIRST}`;
      return `${prefix}.${hostCode(host).slice(1)}`;
    },
    root: `${prefix}.254`,
    mirrorVip: `${prefix}.31`,
    farmVip: `${prefix}.32`,
    clientAddresses: Array.from({ length: CLIENT_LAST - CLIENT_FIRST + 1 }, (_, i) => `${prefix}.${CLIENT_FIRST + i}`),
  };
}

/** The lab's preferred subnet number 1..99, from its name (FNV-1a); collisions are probed by the caller. */
export function preferredSubnet(lab: string): number {
  let h = 0x811c9dc5;
  for (const ch of lab) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % 99) + 1;
}
