import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether Debian's cloud-init is installed (scripts/install-system.sh installs it). */
export const hasCloudInit = spawnSync("sh", ["-c", "command -v cloud-init"]).status === 0;

/** Runs `cloud-init schema --config-file` on user data; returns its output, throws if invalid. */
export function cloudInitSchema(userData: string): string {
  const dir = mkdtempSync(join(tmpdir(), "mf-userdata-"));
  try {
    const file = join(dir, "user-data.yaml");
    writeFileSync(file, userData);
    return execFileSync("cloud-init", ["schema", "--config-file", file], { encoding: "utf8" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
