// Builds dist/: the CLI and the library entry for Pulumi programs (both use node_modules), the
// on-prem deployer that the dynamic provider loads at run time, and the single-file agent bundle
// that is shipped to servers and must run on a plain Node 20 with nothing beside it.
import { build } from "esbuild";

const common = { bundle: true, platform: "node", target: "node20", format: "cjs", sourcemap: false, logLevel: "warning" };

await Promise.all([
  build({ ...common, entryPoints: ["agent/cli/main.ts"], outfile: "dist/cli.js", packages: "external" }),
  build({ ...common, entryPoints: ["index.ts"], outfile: "dist/index.js", packages: "external" }),
  build({ ...common, entryPoints: ["components/onprem/deployer/index.ts"], outfile: "dist/deployer.js", packages: "external" }),
  build({ ...common, entryPoints: ["agent/runtime/main.ts"], outfile: "dist/mirrorfarm-agent.js", minifyWhitespace: true }),
]);
