// The lab's persisted state: one directory per lab under the lab root, written before the kernel
// objects it describes, so `lab down` can always clean up after a crash of the lab process.
import * as fs from "node:fs";
import * as path from "node:path";
import { MirrorfarmError } from "../errors";
import type { LabApp } from "./apps";
import { preferredSubnet } from "./names";

export function labRoot(): string {
  return process.env.MIRRORFARM_LAB_ROOT ?? "/run/mirrorfarm-lab";
}

export function labDir(lab: string): string {
  return path.join(labRoot(), lab);
}

/** Per-host directory; its subdirectories are bind-mounted over the host's private paths. */
export function hostDir(lab: string, host: string): string {
  return path.join(labDir(lab), "hosts", host);
}

/*
 * Host lifecycle (one machine for power and link):
 *
 *        isolate            kill
 *   isolated <---- up -----------> killed
 *        \  ---heal-->  <-restart-   |
 *         \ kill                     | isolate
 *          v                         v
 *      killed-isolated  <------  (killed + isolate)
 *            |  restart -> isolated; heal -> killed
 */
export type HostStatus = "up" | "isolated" | "killed" | "killed-isolated";
export type HostAction = "kill" | "isolate" | "heal" | "restart";

const transitions: Record<HostStatus, Partial<Record<HostAction, HostStatus>>> = {
  up: { kill: "killed", isolate: "isolated", heal: "up" },
  isolated: { kill: "killed-isolated", isolate: "isolated", heal: "up" },
  killed: { kill: "killed", isolate: "killed-isolated", heal: "killed", restart: "up" },
  "killed-isolated": { kill: "killed-isolated", isolate: "killed-isolated", heal: "killed", restart: "isolated" },
};

export function nextHostStatus(host: string, from: HostStatus, action: HostAction): HostStatus {
  const to = transitions[from][action];
  if (!to)
    throw new MirrorfarmError(
      "MF_LAB_TRANSITION",
      `cannot ${action} host ${host}: it is ${from}` + (action === "restart" ? `; only a killed host can be restarted (run lab kill ${host} first)` : ""),
    );
  return to;
}

export interface HostState {
  name: string;
  address: string;
  netns: string;
  port: string;
  status: HostStatus;
  /** The process holding the host's mount namespace (nsenter -t PID -m -n enters the host). */
  holderPid?: number;
  sshdPid?: number;
  /** Pinned sshd host key, "SHA256:..." (absent for the client, which runs no sshd). */
  hostKey?: string;
}

export interface ClusterState {
  vip: string;
  nodes: string[];
  app?: { url: string };
  /** node name -> admin base URL and bearer token, for `lab status`. */
  admin: Record<string, { url: string; token: string }>;
}

export interface LabState {
  version: 1;
  name: string;
  subnet: number;
  bridge: string;
  createdAt: string;
  /** The lab's deployment key (OpenSSH private key file) authorised on every host's sshd. */
  sshKey: string;
  hosts: Record<string, HostState>;
  clientAddresses: string[];
  app?: LabApp;
  /** Pairwise cuts (host pairs that cannot reach each other, both still up on the lab network). */
  cuts?: Array<[string, string]>;
  /** Random packet loss per host, in percent. */
  loss?: Record<string, number>;
  mirror?: ClusterState;
  farm?: ClusterState;
}

const stateFile = (lab: string): string => path.join(labDir(lab), "state.json");

export function readState(lab: string): LabState | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(lab), "utf8")) as LabState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new MirrorfarmError("MF_LAB_STATE", `lab state ${stateFile(lab)} is unreadable (${(err as Error).message}); run \`mirrorfarm lab down --name ${lab}\``);
  }
}

export function requireState(lab: string): LabState {
  const s = readState(lab);
  if (!s) throw new MirrorfarmError("MF_LAB_MISSING", `lab '${lab}' does not exist (no ${stateFile(lab)}); create it with \`mirrorfarm lab up --name ${lab}\``);
  return s;
}

/** Atomic replace: a crash leaves the old or the new state, never half of one. */
export function writeState(state: LabState): void {
  const file = stateFile(state.name);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function updateState(lab: string, fn: (s: LabState) => void): LabState {
  const s = requireState(lab);
  fn(s);
  writeState(s);
  return s;
}

/** Creates the lab directory; fails if the lab exists (the directory is the lab's lock). */
export function createLabDir(lab: string): void {
  fs.mkdirSync(labRoot(), { recursive: true, mode: 0o700 });
  try {
    fs.mkdirSync(labDir(lab), { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST")
      throw new MirrorfarmError("MF_LAB_EXISTS", `lab '${lab}' already exists (${labDir(lab)}); use it, or remove it with \`mirrorfarm lab down --name ${lab}\``);
    throw err;
  }
}

const claimsDir = (): string => path.join(labRoot(), ".subnets");

/**
 * Claims a free 10.213.N.0/24 (N in 1..99) for the lab: the name's preferred N, else the next free
 * one. A claim is a directory created atomically, so two labs starting at once never share N;
 * inUse lists subnets the kernel already uses (addresses found on this machine).
 */
export function claimSubnet(lab: string, inUse: Set<number>): number {
  fs.mkdirSync(claimsDir(), { recursive: true, mode: 0o700 });
  const first = preferredSubnet(lab);
  for (let i = 0; i < 99; i++) {
    const n = ((first - 1 + i) % 99) + 1;
    if (inUse.has(n)) continue;
    // Built aside then renamed: rename onto an existing (non-empty) claim fails, atomically.
    const tmp = path.join(claimsDir(), `.${lab}.${process.pid}`);
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp);
    fs.writeFileSync(path.join(tmp, "lab"), lab);
    try {
      fs.renameSync(tmp, path.join(claimsDir(), String(n)));
      return n;
    } catch (err) {
      fs.rmSync(tmp, { recursive: true, force: true });
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "EEXIST" && code !== "ENOTEMPTY") throw err;
    }
  }
  throw new MirrorfarmError("MF_LAB_SUBNET", "all 99 lab subnets 10.213.1-99.0/24 are in use; remove labs you no longer need with `mirrorfarm lab down --name L`");
}

/** Releases every subnet claimed by this lab. */
export function releaseSubnets(lab: string): void {
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(claimsDir());
  } catch {
    return;
  }
  for (const n of entries) {
    const dir = path.join(claimsDir(), n);
    let owner = "";
    try {
      owner = fs.readFileSync(path.join(dir, "lab"), "utf8");
    } catch {
      // not a claim
    }
    if (owner === lab) fs.rmSync(dir, { recursive: true, force: true });
  }
}
