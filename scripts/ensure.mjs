// Installs what `npm test` and `npm run demo` need and is missing: Debian packages (as root),
// node_modules (npm ci) and the build in dist/. Idempotent and quick when nothing is missing.
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error(`mirrorfarm: '${cmd} ${args.join(" ")}' failed (exit ${r.status})`);
}

function newerThan(a, b) {
  return existsSync(a) && existsSync(b) && statSync(a).mtimeMs >= statSync(b).mtimeMs;
}

export function ensure() {
  const isRoot = process.getuid?.() === 0;
  if (isRoot) run("bash", ["scripts/install-system.sh"]);
  else console.warn("mirrorfarm: not root: Debian packages not checked; root-only tests will be skipped.");
  if (!newerThan(join(root, "node_modules", ".package-lock.json"), join(root, "package-lock.json"))) {
    run("npm", ["ci", "--no-audit", "--no-fund"]);
  }
  // npm ci runs the build through `prepare`; a plain checkout with node_modules may still lack it.
  if (!existsSync(join(root, "dist", "mirrorfarm-agent.js"))) run("node", ["scripts/build.mjs"]);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) ensure();
