// npm run bench -- <name> [options]: runs bench/<name>.ts with tsx; each benchmark prints JSON
// on its last line, with ratios against a baseline measured in the same run.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const [name, ...args] = process.argv.slice(2);
const available = readdirSync(join(root, "bench"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.slice(0, -3));
if (!name || !existsSync(join(root, "bench", `${name}.ts`))) {
  console.error(`usage: npm run bench -- <name> [--json]\navailable: ${available.join(", ") || "(none yet)"}`);
  process.exit(2);
}
const tsx = join(root, "node_modules", ".bin", "tsx");
const r = spawnSync(tsx, [join(root, "bench", `${name}.ts`), ...args], { stdio: "inherit" });
process.exit(r.status ?? 1);
