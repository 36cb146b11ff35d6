// npm test: installs what is missing, builds, then runs vitest with the given arguments.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensure } from "./ensure.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
ensure();
// The agent bundle is what the lab deploys: rebuild so tests run the code in this tree.
if (spawnSync("node", ["scripts/build.mjs"], { cwd: root, stdio: "inherit" }).status !== 0) process.exit(1);
const r = spawnSync(join(root, "node_modules", ".bin", "vitest"), ["run", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
});
process.exit(r.status ?? 1);
