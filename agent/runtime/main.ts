// mirrorfarm-agent entry (stub until the daemon lands): `mirrorfarm-agent --config FILE` loads and
// validates the config; exits 2 on a bad command line or config, otherwise logs one JSON line and
// runs until SIGTERM/SIGINT.
import { readFileSync } from "node:fs";
import { MirrorfarmError } from "../errors";
import { parseAgentConfig } from "../config/schema";

const USAGE = "usage: mirrorfarm-agent --config FILE";

function configPath(argv: string[]): string {
  const i = argv.indexOf("--config");
  const file = i >= 0 ? argv[i + 1] : undefined;
  if (file === undefined || file.startsWith("--"))
    throw new MirrorfarmError("MF_AGENT_USAGE", `missing --config FILE (got: ${JSON.stringify(argv)}); allowed: the path of the node's JSON config; fix: ${USAGE}`);
  return file;
}

function load(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new MirrorfarmError("MF_CONFIG_UNREADABLE", `cannot read --config ${file}: ${(e as Error).message}; fix: give the path of a readable JSON file`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new MirrorfarmError("MF_CONFIG_NOT_JSON", `--config ${file} is not JSON: ${(e as Error).message}; allowed: one JSON document; fix: correct the syntax`);
  }
}

function main(): void {
  try {
    const file = configPath(process.argv.slice(2));
    const config = parseAgentConfig(load(file));
    console.log(JSON.stringify({ t: new Date().toISOString(), event: "config-loaded", cluster: config.cluster, kind: config.kind, node: config.node, config: file }));
  } catch (e) {
    console.error(e instanceof MirrorfarmError ? e.message : String(e));
    process.exit(2);
  }
  const keepAlive = setInterval(() => undefined, 1 << 30);
  for (const sig of ["SIGTERM", "SIGINT"] as const)
    process.once(sig, () => {
      clearInterval(keepAlive);
      console.log(JSON.stringify({ t: new Date().toISOString(), event: "stopped", signal: sig }));
    });
}

main();
