import { createHash } from "node:crypto";

export function sha256Hex(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex");
}

/** One hash over every node's config, independent of map order. */
export function clusterConfigHash(configs: Readonly<Record<string, string>>): string {
  const lines = Object.keys(configs)
    .sort()
    .map((node) => `${node} ${sha256Hex(configs[node] ?? "")}\n`);
  return sha256Hex(lines.join(""));
}

/** 32-bit farm hash seed derived from the cluster name: equal on every node, stable across runs. */
export function farmSeed(clusterName: string): number {
  return createHash("sha256").update(`mirrorfarm farm seed ${clusterName}`).digest().readUInt32BE(0);
}
