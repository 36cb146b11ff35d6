/**
 * Role scripts (prestart, start_prim, stop_prim, start_second, stop_second, start_both, stop_both).
 * A missing script is a no-op that succeeds. Every run's output goes to the log, and its outcome is
 * returned so the runtime can feed it to the core as an event.
 */
import type { OutputLine, RunOutcome } from "./process-group";
import { runInGroup } from "./process-group";

export type RoleScriptName = "prestart" | "start_prim" | "stop_prim" | "start_second" | "stop_second" | "start_both" | "stop_both";
export type ScriptDef = { path: string; args: string[]; timeoutMs: number; killGraceMs: number };
export type ScriptOutcome = RunOutcome & { script: RoleScriptName; ok: boolean; ran: boolean };

export interface ScriptRunner {
  run(script: RoleScriptName, env?: Record<string, string>): Promise<ScriptOutcome>;
}

export function outcomeOk(o: RunOutcome): boolean {
  return o.error === undefined && !o.timedOut && o.code === 0;
}

export class ProcessScriptRunner implements ScriptRunner {
  constructor(
    private readonly scripts: Partial<Record<RoleScriptName, ScriptDef>>,
    private readonly log: (script: RoleScriptName, line: OutputLine) => void,
  ) {}

  async run(script: RoleScriptName, env: Record<string, string> = {}): Promise<ScriptOutcome> {
    const def = this.scripts[script];
    if (!def) return { script, ok: true, ran: false, code: 0, signal: null, timedOut: false, forced: false, durationMs: 0 };
    const o = await runInGroup({ argv: [def.path, ...def.args], timeoutMs: def.timeoutMs, killGraceMs: def.killGraceMs, env }, (l) => this.log(script, l));
    return { ...o, script, ok: outcomeOk(o), ran: true };
  }
}

/** Fake: records every call; outcomes are ok unless a test set a failure for that script. */
export class FakeScriptRunner implements ScriptRunner {
  readonly calls: { script: RoleScriptName; env: Record<string, string> }[] = [];
  readonly failing = new Set<RoleScriptName>();
  async run(script: RoleScriptName, env: Record<string, string> = {}): Promise<ScriptOutcome> {
    this.calls.push({ script, env });
    const ok = !this.failing.has(script);
    return { script, ok, ran: true, code: ok ? 0 : 1, signal: null, timedOut: false, forced: false, durationMs: 0 };
  }
}
