// Tests that need root (FUSE, nftables, network namespaces) run in CI, which is root. Anywhere
// else they are skipped with one loud line that says why, never silently.
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** True when the suite can run; otherwise prints one loud line naming the suite and returns false. */
export function needsRoot(suite: string): boolean {
  if (isRoot()) return true;
  console.warn(`\n*** SKIPPED ${suite}: needs root (network namespaces, FUSE, nftables). Run as root, as CI does. ***\n`);
  return false;
}
