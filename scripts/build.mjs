// Builds dist/: the CLI (uses node_modules) and the single-file agent bundle that is shipped to
// servers and must run on a plain Node 20 with nothing beside it.
import { build } from "esbuild";

const common = { bundle: true, platform: "node", target: "node20", format: "cjs", sourcemap: false, logLevel: "warning" };

await Promise.all([
  build({ ...common, entryPoints: ["agent/cli/main.ts"], outfile: "dist/cli.js", packages: "external" }),
  build({ ...common, entryPoints: ["agent/runtime/main.ts"], outfile: "dist/mirrorfarm-agent.js", minifyWhitespace: true }),
]);
