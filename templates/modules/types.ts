/**
 * The contract of an application module: what a cluster needs to run one application. The same
 * modules serve real servers (components/plan renders them into the agent config) and the lab
 * (agent/lab): what differs between the two (paths, credentials, the distro unit to keep away)
 * is an argument of the module, never a second copy of it.
 */

/** A directory a mirror replicates; `backing` holds its data, on the same filesystem. */
export interface ModuleDir {
  readonly path: string;
  readonly backing: string;
}

/** A /bin/sh script text the agent runs as a role script, and how long it may take. */
export interface ModuleScript {
  readonly text: string;
  readonly timeoutMs: number;
}

/** A liveness check of the application, run where it serves: a TCP connect to its port on the node. */
export interface ModuleChecker {
  readonly name: string;
  readonly type: "tcp";
  readonly port: number;
}

export interface AppModule {
  readonly name: string;
  /** TCP ports clients use (through the VIP or the farm's rules). */
  readonly ports: readonly number[];
  /** Directories a mirror of this application replicates (none: no data of its own). */
  readonly replicatedDirs: readonly ModuleDir[];
  readonly scripts: {
    /** At every agent start on each node, before any role: keeps others from starting the application. */
    readonly prestart?: ModuleScript;
    /** Starts the application where it serves; returns once it accepts clients. */
    readonly start_prim: ModuleScript;
    /** Stops it; succeeds when it already is stopped. */
    readonly stop_prim: ModuleScript;
  };
  readonly checkers: readonly ModuleChecker[];
  /** What a client connects to, given the address it reaches the cluster at (the VIP). */
  url(host: string): string;
}
