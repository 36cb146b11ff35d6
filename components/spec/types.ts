/**
 * The cluster description shared by every platform. Switching cloud changes the platform
 * arguments of a component, never this object. Props are flat, carry their unit in their name,
 * and every optional prop documents what happens when it is left out.
 */

/** mirror: two nodes, replicated directories, one primary. farm: N nodes, all serving. */
export type ClusterKind = "mirror" | "farm";

/** Application modules bundle role scripts and checkers for a known service. */
export type ApplicationModule = "postgresql" | "mysql" | "nginx" | "apache" | "docker" | "generic" | "demo";

export type CheckerType = "tcp" | "http" | "process" | "command" | "interface";
export type FailoverAction = "restart" | "stopstart" | "swap" | "stop";
export type FarmAffinity = "srcip" | "srcip+srcport";

export interface NodeSpec {
  /** Host name of the node inside the cluster; lower-case letters, digits and '-', 1..40 chars. */
  readonly name: string;
  /**
   * Farm only: relative share of the 256 load-balancing buckets this node owns.
   * @default 1 (every node gets an equal share)
   */
  readonly power?: number;
}

export interface ReplicatedDirSpec {
  /** Absolute path the application uses; served through the agent's replicating mount. */
  readonly path: string;
  /**
   * Where the real data lives on the node's disk.
   * @default "/var/lib/mirrorfarm/backing" + path (e.g. /var/lib/mirrorfarm/backing/var/lib/postgresql)
   */
  readonly backingPath?: string;
}

export interface FarmRuleSpec {
  /** @default "tcp" */
  readonly protocol?: "tcp" | "udp";
  /** Ports of the load-balanced service, 1..65535. */
  readonly ports: readonly number[];
  /**
   * srcip keeps every connection of one client on one node (sessions); srcip+srcport spreads
   * the connections of one client over the nodes (stateless services).
   * @default "srcip"
   */
  readonly affinity?: FarmAffinity;
}

export interface CheckerSpec {
  readonly name: string;
  readonly type: CheckerType;
  /** tcp/http: "port" (on 127.0.0.1) or "a.b.c.d:port"; process: process name (as in /proc/PID/comm);
   * command: shell command (exit 0 = healthy); interface: interface name. */
  readonly target: string;
  /** http only: path to GET; healthy on 2xx. @default "/" */
  readonly httpPath?: string;
  /** @default 1000 */
  readonly intervalMs?: number;
  /** Below intervalMs so checks never overlap. @default 800 (or 80% of intervalMs if smaller) */
  readonly timeoutMs?: number;
  /** Consecutive failures before the action runs. @default 3 */
  readonly failuresBeforeAction?: number;
  /** @default "restart" for a farm, "swap" for a mirror */
  readonly action?: FailoverAction;
}

export interface ClusterSpec {
  /** Name of the cluster: lower-case letters, digits and '-', 1..40 chars, starts with a letter. */
  readonly clusterName: string;
  readonly kind: ClusterKind;
  /** mirror: exactly 2 nodes. farm: 2..32 nodes. */
  readonly nodes: readonly NodeSpec[];

  /** The application module whose scripts and checkers the agent runs. */
  readonly application: ApplicationModule;
  /**
   * TCP ports clients use to reach the application through the VIP / load balancer.
   * @default the module's port: postgresql 5432, mysql 3306, nginx/apache 80, demo 8080;
   * docker and generic have none and need this prop.
   */
  readonly appPorts?: readonly number[];
  /**
   * generic/mysql/apache: the systemd unit the role scripts start and stop; postgresql/nginx: the
   * distro unit kept from running the application (masked at agent start; the agent runs it itself).
   * @default the module's unit
   */
  readonly serviceName?: string;
  /** docker: image the role scripts run (e.g. "nginx:1.27"). Required for docker. */
  readonly dockerImage?: string;

  /**
   * Mirror only: directories replicated synchronously from the primary to the secondary.
   * @default the module's data directory: postgresql /var/lib/postgresql, mysql /var/lib/mysql,
   * demo /var/lib/mirrorfarm-demo; other modules have none and a mirror of them needs this prop.
   */
  readonly replicatedDirs?: readonly ReplicatedDirSpec[];

  /**
   * Farm only: load-balancing rules.
   * @default one tcp rule over appPorts with srcip affinity
   */
  readonly farmRules?: readonly FarmRuleSpec[];

  /** Extra checkers; each module already checks its own service. @default none */
  readonly checkers?: readonly CheckerSpec[];

  /**
   * Address clients connect to. On-prem: the virtual IP moved (mirror) or shared (farm) by the
   * agents, required there. GCP/Azure: the load balancer's private frontend address.
   * @default on clouds, a free address of the subnet picked by the provider
   */
  readonly vipAddress?: string;

  /** CIDRs allowed to reach appPorts. @default RFC 1918 (10/8, 172.16/12, 192.168/16) */
  readonly clientCidrs?: readonly string[];

  /** UDP heartbeats between nodes. @default 7410 */
  readonly heartbeatPort?: number;
  /** TCP+TLS peer link between nodes: replication, resynchronisation, commands. @default 7411 */
  readonly peerPort?: number;
  /** Agent HTTP API (TCP): /ready for probes, /status, /metrics, admin commands behind a token. @default 7412 */
  readonly adminPort?: number;
  /** UDP port of the witness (vote requests). @default 7413 */
  readonly witnessPort?: number;

  /** Period of the agent's state machine; timers round up to whole ticks. @default 50 */
  readonly tickMs?: number;
  /** Period of heartbeats between nodes. @default 250 */
  readonly heartbeatIntervalMs?: number;
  /**
   * A peer silent for this long is lost: detection time. At least 3 intervals + 200 ms of jitter
   * margin so jitter never causes a failover. @default 1500
   */
  readonly heartbeatTimeoutMs?: number;

  /**
   * Run a witness that votes for 2-node mirrors so the surviving node can take over after its
   * peer (or the link) fails, and an isolated primary stops writing.
   * @default true for a mirror, false for a farm
   */
  readonly witness?: boolean;
}

/** A spec with every default applied: what the plan consumes. */
export interface ResolvedSpec {
  readonly clusterName: string;
  readonly kind: ClusterKind;
  readonly nodes: readonly { readonly name: string; readonly power: number }[];
  readonly application: ApplicationModule;
  readonly appPorts: readonly number[];
  readonly serviceName: string | undefined;
  readonly dockerImage: string | undefined;
  readonly replicatedDirs: readonly { readonly path: string; readonly backingPath: string }[];
  readonly farmRules: readonly { readonly protocol: "tcp" | "udp"; readonly ports: readonly number[]; readonly affinity: FarmAffinity }[];
  readonly checkers: readonly Required<CheckerSpec>[];
  readonly vipAddress: string | undefined;
  readonly clientCidrs: readonly string[];
  readonly heartbeatPort: number;
  readonly peerPort: number;
  readonly adminPort: number;
  readonly witnessPort: number;
  readonly tickMs: number;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly witness: boolean;
}

/**
 * What a platform knows before creating anything, so placement problems are reported together
 * with the spec's own problems.
 */
export interface PlatformFacts {
  readonly platform: "aws" | "gcp" | "azure" | "onprem";
  /** Zone of each node, in node order (clouds). */
  readonly nodeZones?: readonly string[];
  /** Zone of the witness host, when the platform places one. */
  readonly witnessZone?: string;
  /** Whether the platform was given a place for the witness. */
  readonly witnessPlaced: boolean;
  /** CIDRs a VIP must fall in (the nodes' subnet). */
  readonly vipSubnetCidrs?: readonly string[];
  /** Node addresses known up front (on-prem). */
  readonly nodeAddresses?: readonly string[];
  /** Whether the platform can honour spec.vipAddress (AWS NLB cannot: one address per zone). */
  readonly supportsVipAddress: boolean;
  /** Argument path prefix used in messages for platform args (e.g. "args.subnets"). */
  readonly placementArg: string;
  readonly witnessArg: string;
}
