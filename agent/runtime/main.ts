// mirrorfarm-agent entry: `mirrorfarm-agent --config FILE` loads and validates the node's config
// (exit 2 on a bad command line or config, listing every problem), then runs the daemon until
// SIGTERM/SIGINT, when it stops gracefully (VIP released, application stopped) and exits 0.
import { readFileSync } from "node:fs";
import { MirrorfarmError } from "../errors";
import { parseAgentConfig, type AgentConfig } from "../config/schema";
import { startDaemon } from "./daemon";

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

function fail(e: unknown, code: number): never {
  console.error(e instanceof MirrorfarmError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(code);
}

async function main(): Promise<void> {
  let config: AgentConfig;
  try {
    config = parseAgentConfig(load(configPath(process.argv.slice(2))));
  } catch (e) {
    fail(e, 2);
  }
  // Exit 1 on anything that makes going on unsafe (e.g. state that cannot be persisted): the
  // supervisor restarts the agent, which reloads its persisted state.
  const daemon = await startDaemon(config, (err) => fail(err, 1)).catch((e: unknown) => fail(e, 1));
  for (const sig of ["SIGTERM", "SIGINT"] as const)
    process.once(sig, () => {
      daemon.stop(`signal ${sig}`).then(
        () => process.exit(0),
        (e: unknown) => fail(e, 1),
      );
    });
}

void main();
