// mirrorfarm-agent entry: `mirrorfarm-agent --config FILE` loads and validates the node's config
// (exit 2 on a bad command line or config, listing every problem), then runs the daemon until
// SIGTERM/SIGINT, when it stops gracefully (VIP released, application stopped) and exits 0.
//
// The config is validated in a short-lived child process (`--check-config FILE`, which prints the
// config with its defaults applied): the schema library costs ~11 MB of resident memory once
// loaded, a sixth of the agent's whole budget, for a check that runs once. The daemon process
// never loads it (the schema module is required lazily, only in the child).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { MirrorfarmError } from "../errors";
import type { AgentConfig } from "../config/schema";
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

/** Child mode: validate, print the config with defaults applied as JSON, exit 0 (or 2). */
function checkConfig(file: string): never {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { parseAgentConfig } = require("../config/schema") as typeof import("../config/schema");
    process.stdout.write(JSON.stringify(parseAgentConfig(load(file))));
    process.exit(0);
  } catch (e) {
    fail(e, 2);
  }
}

function validatedConfig(file: string): AgentConfig {
  const child = spawnSync(process.execPath, [...process.execArgv, process.argv[1] ?? "", "--check-config", file], { encoding: "utf8", maxBuffer: 16 * 1024 * 1024 });
  if (child.status !== 0) {
    process.stderr.write(child.stderr || `${child.error?.message ?? "config check failed"}\n`);
    process.exit(child.status ?? 2);
  }
  return JSON.parse(child.stdout) as AgentConfig;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === "--check-config" && argv[1] !== undefined) checkConfig(argv[1]);
  let config: AgentConfig;
  try {
    config = validatedConfig(configPath(argv));
  } catch (e) {
    fail(e, 2);
  }
  // Exit 1 on anything that makes going on unsafe (e.g. state that cannot be persisted): the
  // supervisor restarts the agent, which reloads its persisted state.
  const daemon = await startDaemon(config, (err) => fail(err, 1)).catch((e: unknown) => fail(e, 1));
  // A bug (say, an illegal transition thrown by the core) ends the process: crash-only, the
  // supervisor restarts it from its persisted state. The reason goes to the JSON log first.
  for (const ev of ["uncaughtException", "unhandledRejection"] as const)
    process.on(ev, (err: unknown) => {
      daemon.log.write({ event: "crash", level: "error", error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      fail(err, 1);
    });
  for (const sig of ["SIGTERM", "SIGINT"] as const)
    process.once(sig, () => {
      daemon.stop(`signal ${sig}`).then(
        () => process.exit(0),
        (e: unknown) => fail(e, 1),
      );
    });
}

void main();
