// A module as the agent config takes it: role scripts as inline `/bin/sh -c` argv (nothing but the
// agent and its config has to reach a node) and checkers that restart the application.
import type { AgentConfigInput } from "../../agent/config/schema";
import type { AppModule, ModuleScript } from "./types";

type Scripts = NonNullable<AgentConfigInput["scripts"]>;
type Checkers = NonNullable<AgentConfigInput["checkers"]>;

/** How often checkers run and how many failures in a row restart the application; the agent's defaults otherwise. */
export interface CheckerTiming {
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly failures?: number;
}

const sh = (s: ModuleScript) => ({ path: "/bin/sh", args: ["-c", s.text], timeoutMs: s.timeoutMs });

export function agentScripts(mod: AppModule): Scripts {
  const { prestart, start_prim, stop_prim } = mod.scripts;
  return { ...(prestart ? { prestart: sh(prestart) } : {}), start_prim: sh(start_prim), stop_prim: sh(stop_prim) };
}

export function agentCheckers(mod: AppModule, timing: CheckerTiming = {}): Checkers {
  return mod.checkers.map((c) => ({ ...timing, name: c.name, type: c.type, host: "127.0.0.1", port: c.port, action: "restart" as const }));
}
