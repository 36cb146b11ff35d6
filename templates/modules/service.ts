import { shellQuote } from "./shell";
import type { AppModule, ModuleDir } from "./types";

export interface ServiceParams {
  /** The module's name (mysql, apache, generic): its checker's name. */
  readonly name: string;
  /** The systemd unit the role scripts start and stop. */
  readonly unit: string;
  readonly ports: readonly number[];
  readonly replicatedDirs: readonly ModuleDir[];
  /** On a mirror the service may only run where its data is writable: boot must never start it. */
  readonly mirror: boolean;
}

/** An application that is a systemd unit of its own (mysql, apache, a generic service). */
export function serviceModule(p: ServiceParams): AppModule {
  const unit = shellQuote(p.unit);
  const first = p.ports[0];
  return {
    name: p.name,
    ports: p.ports,
    replicatedDirs: p.replicatedDirs,
    scripts: {
      ...(p.mirror ? { prestart: { timeoutMs: 60_000, text: `systemctl disable --now ${unit} || true` } } : {}),
      start_prim: { timeoutMs: 60_000, text: `systemctl start ${unit}` },
      stop_prim: { timeoutMs: 60_000, text: `systemctl stop ${unit}` },
    },
    checkers: first === undefined ? [] : [{ name: p.name, type: "tcp", port: first }],
    url: (host) => `tcp://${host}:${first ?? 0}`,
  };
}
