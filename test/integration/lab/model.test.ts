// The lab's pure parts (names, addresses, subnet claims, host transitions) and the deployer's
// service definitions; no root needed.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { layout, supervisorScript, systemdUnit } from "../../../components/onprem/deployer/layout";
import { hostNames, labAddresses, labNames, MAX_HOSTS, preferredSubnet, validateLabName } from "../../../agent/lab/names";
import { claimSubnet, nextHostStatus, releaseSubnets, type HostStatus } from "../../../agent/lab/state";

describe("lab names and addresses", () => {
  it("accepts 1-8 lowercase letters and digits, rejects the rest naming the rule", () => {
    for (const ok of ["a", "default", "t1", "abcdefgh"]) expect(() => validateLabName(ok)).not.toThrow();
    for (const bad of ["", "1abc", "abcdefghi", "a-b", "A", "a_b"]) expect(() => validateLabName(bad)).toThrow(/MF_LAB_NAME: lab name '.*' is not allowed: use 1-8 lowercase/);
  });

  it("keeps every interface name within Linux's 15 characters, prefixed by the lab", () => {
    const n = labNames("abcdefgh");
    for (const h of hostNames(MAX_HOSTS)) {
      expect(n.port(h).length).toBeLessThanOrEqual(15);
      expect(n.port(h).startsWith("mf-abcdefgh-")).toBe(true);
      expect(n.netns(h)).toBe(`mf-abcdefgh-${h}`);
    }
    expect(n.bridge.length).toBeLessThanOrEqual(15);
    expect(new Set(hostNames(MAX_HOSTS).map(n.port)).size).toBe(MAX_HOSTS + 2);
  });

  it("gives hosts, witness, VIPs, client addresses and the root distinct addresses in the lab subnet", () => {
    const a = labAddresses(42);
    const all = [...hostNames(MAX_HOSTS).filter((h) => h !== "client").map(a.host), a.mirrorVip, a.farmVip, a.root, ...a.clientAddresses];
    expect(new Set(all).size).toBe(all.length);
    for (const ip of all) expect(ip).toMatch(/^10\.213\.42\.([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$/);
    expect(a.clientAddresses.length).toBeGreaterThanOrEqual(200);
    expect(a.clientAddresses[0]).toBe(a.host("client"));
  });

  it("derives the preferred subnet from the name, in 1..99", () => {
    for (const name of ["a", "default", "tlab", "zzzzzzzz"]) {
      const n = preferredSubnet(name);
      expect(n).toBeGreaterThanOrEqual(1);
      expect(n).toBeLessThanOrEqual(99);
      expect(preferredSubnet(name)).toBe(n);
    }
  });
});

describe("subnet claims", () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "mf-lab-root-"));
    process.env.MIRRORFARM_LAB_ROOT = root;
  });
  afterEach(() => {
    delete process.env.MIRRORFARM_LAB_ROOT;
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("never gives one subnet to two labs, skips subnets in use, and releases only the lab's own", () => {
    const first = claimSubnet("one", new Set());
    expect(first).toBe(preferredSubnet("one"));
    const inUse = new Set([preferredSubnet("two")]);
    const second = claimSubnet("two", inUse);
    expect(second).not.toBe(first);
    expect(inUse.has(second)).toBe(false);
    // A lab whose preferred subnet is taken moves on.
    const names = ["x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"];
    const got = names.map((n) => claimSubnet(n, new Set()));
    expect(new Set([first, second, ...got]).size).toBe(names.length + 2);
    releaseSubnets("one");
    expect(claimSubnet("three", new Set(Array.from({ length: 99 }, (_, i) => i + 1).filter((n) => n !== first)))).toBe(first);
  });

  it("says so when all 99 subnets are taken", () => {
    expect(() => claimSubnet("full", new Set(Array.from({ length: 99 }, (_, i) => i + 1)))).toThrow(/MF_LAB_SUBNET: all 99 lab subnets/);
  });
});

describe("host transitions", () => {
  it("follows the table: crash, isolation, heal, restart", () => {
    const path: Array<[string, HostStatus]> = [
      ["isolate", "isolated"],
      ["kill", "killed-isolated"],
      ["restart", "isolated"],
      ["heal", "up"],
      ["kill", "killed"],
      ["heal", "killed"],
      ["restart", "up"],
    ];
    let s: HostStatus = "up";
    for (const [action, want] of path) {
      s = nextHostStatus("host1", s, action as "kill" | "isolate" | "heal" | "restart");
      expect(s).toBe(want);
    }
  });

  it("refuses to restart a running host, naming the host and its state", () => {
    expect(() => nextHostStatus("host2", "up", "restart")).toThrow(/MF_LAB_TRANSITION: cannot restart host host2: it is up; only a killed host can be restarted/);
    expect(() => nextHostStatus("host2", "isolated", "restart")).toThrow(/it is isolated/);
  });
});

describe("deployer service definitions", () => {
  it("the supervisor script is valid POSIX shell running the node's bundle with its config", () => {
    const script = supervisorScript("node-a");
    execFileSync("sh", ["-n"], { input: script });
    const l = layout("node-a");
    expect(script).toContain(`node ${l.bundle} --config ${l.config}`);
    expect(script).toContain(`echo $$ > ${l.supervisorPid}`);
  });

  it("the systemd unit restarts the agent always and passes its config", () => {
    const unit = systemdUnit("node-a");
    expect(unit).toMatch(/^ExecStart=\/usr\/bin\/env node \/var\/lib\/mirrorfarm\/deploy\/node-a\/mirrorfarm-agent\.js --config \/etc\/mirrorfarm\/node-a\.json$/m);
    expect(unit).toMatch(/^Restart=always$/m);
    expect(unit).toMatch(/^WantedBy=multi-user\.target$/m);
  });

  it("refuses node names that are unsafe as file and unit names", () => {
    for (const bad of ["", "A", "a/b", "a b", "-a", "a;rm"]) expect(() => layout(bad)).toThrow(/MF_DEPLOY_NODE/);
  });
});
