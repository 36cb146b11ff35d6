import { shellQuote } from "./shell";
import type { AppModule, ModuleDir } from "./types";

export interface DockerParams {
  /** The container's name. */
  readonly container: string;
  readonly image: string;
  /** Published on the host as the same port. */
  readonly ports: readonly number[];
  /** Each mounted into the container at the same path. */
  readonly replicatedDirs: readonly ModuleDir[];
}

/** A container run by the agent with docker (removed when it stops). */
export function dockerModule(p: DockerParams): AppModule {
  const name = shellQuote(p.container);
  const ports = p.ports.map((port) => `-p ${port}:${port}`).join(" ");
  const volumes = p.replicatedDirs.map((d) => `-v ${shellQuote(`${d.path}:${d.path}`)}`).join(" ");
  const run = ["docker run -d --rm --name", name, ports, volumes, shellQuote(p.image)].filter((x) => x !== "").join(" ");
  const first = p.ports[0];
  return {
    name: "docker",
    ports: p.ports,
    replicatedDirs: p.replicatedDirs,
    scripts: {
      start_prim: { timeoutMs: 300_000, text: `docker rm -f ${name} >/dev/null 2>&1; ${run}` },
      stop_prim: { timeoutMs: 60_000, text: `docker stop -t 20 ${name} || true` },
    },
    checkers: first === undefined ? [] : [{ name: "docker", type: "tcp", port: first }],
    url: (host) => `tcp://${host}:${first ?? 0}`,
  };
}
