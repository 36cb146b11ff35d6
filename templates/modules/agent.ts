// A module as the agent config takes it: role scripts run by /bin/sh, either inline (`sh -c`, so
// nothing but the agent and its config has to reach a node) or from files installed on the host
// (the lab: there to read and run by hand), and checkers that restart the application.
import type { AgentConfigInput } from "../../agent/config/schema";
import type { AppModule, ModuleScript } from "./types";

type Scripts = NonNullable<AgentConfigInput["scripts"]>;
type Checkers = NonNullable<AgentConfigInput["checkers"]>;
type ScriptName = keyof AppModule["scripts"];

/** How often checkers run and how many failures in a row restart the application; the agent's defaults otherwise. */
export interface CheckerTiming {
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly failures?: number;
}

/** The file each script is installed as, in a directory of its own. */
export const SCRIPT_FILES: Readonly<Record<ScriptName, string>> = { prestart: "prestart.sh", start_prim: "start.sh", stop_prim: "stop.sh" };

const entries = (mod: AppModule): Array<[ScriptName, ModuleScript]> =>
  (Object.entries(mod.scripts) as Array<[ScriptName, ModuleScript | undefined]>).filter((e): e is [ScriptName, ModuleScript] => e[1] !== undefined);

/** File name -> content of the module's scripts, for `agentScripts(mod, dir)`. */
export function scriptFiles(mod: AppModule): Record<string, string> {
  return Object.fromEntries(entries(mod).map(([name, s]) => [SCRIPT_FILES[name], `#!/bin/sh\n${s.text}`]));
}

/** The role scripts: inline, or the files scriptFiles() gave, installed in `installedIn`. */
export function agentScripts(mod: AppModule, installedIn?: string): Scripts {
  const out: Scripts = {};
  for (const [name, s] of entries(mod)) {
    out[name] = { path: "/bin/sh", args: installedIn ? [`${installedIn}/${SCRIPT_FILES[name]}`] : ["-c", s.text], timeoutMs: s.timeoutMs };
  }
  return out;
}

export function agentCheckers(mod: AppModule, timing: CheckerTiming = {}): Checkers {
  return mod.checkers.map((c) => ({ ...timing, name: c.name, type: c.type, host: "127.0.0.1", port: c.port, action: "restart" as const }));
}
