// `mirrorfarm verify`: argument parsing (all problems at once, lab addressing) and how differences read.
import { describe, expect, it } from "vitest";
import { parseVerifyArgs, renderVerdicts } from "../../../agent/cli/verify";
import type { LabState } from "../../../agent/lab/state";

const TOKEN = "verify-test-token-0123456789abcdef";

describe("mirrorfarm verify: command line and output", () => {
  it("reports every argument problem at once, with the fix", () => {
    expect(() => parseVerifyArgs(["--node", "10.0.0.1:99999", "--node", "10.0.0.2", "--bogus"], {})).toThrow(
      /MF_CTL_USAGE[\s\S]*unknown argument '--bogus'[\s\S]*MIRRORFARM_TOKEN[\s\S]*port must be 1-65535/,
    );
    expect(() => parseVerifyArgs(["--node", "10.0.0.1"], { MIRRORFARM_TOKEN: TOKEN })).toThrow(/--node ADDR\[:PORT\] exactly twice \(given 1\), or --lab L/);
    expect(() => parseVerifyArgs(["--lab", "l1", "--node", "10.0.0.1"], {})).toThrow(/either --node ADDR\[:PORT\] twice or --lab L, not both/);
  });

  it("takes two nodes with the token from MIRRORFARM_TOKEN, default port", () => {
    expect(parseVerifyArgs(["--node", "10.0.0.1", "--node", "10.0.0.2:9000", "--json"], { MIRRORFARM_TOKEN: TOKEN })).toEqual({
      json: true,
      nodes: [
        { host: "10.0.0.1", port: 7412, token: TOKEN },
        { host: "10.0.0.2", port: 9000, token: TOKEN },
      ],
    });
  });

  it("--lab L: the lab mirror's two members (not its witness); a lab without a mirror is named", () => {
    const admin = (ip: string) => ({ url: `http://${ip}:7412`, token: TOKEN });
    const lab = (name: string) =>
      name === "l1" ? ({ mirror: { vip: "x", nodes: ["host1", "host2", "witness"], admin: { host1: admin("10.213.5.1"), host2: admin("10.213.5.2"), witness: admin("10.213.5.3") } } } as unknown as LabState) : name === "farmonly" ? ({} as LabState) : undefined;
    expect(parseVerifyArgs(["--lab", "l1"], {}, lab)).toMatchObject({ nodes: [{ host: "10.213.5.1", port: 7412, token: TOKEN }, { host: "10.213.5.2" }] });
    expect(() => parseVerifyArgs(["--lab", "farmonly"], {}, lab)).toThrow(/lab 'farmonly' has no mirror/);
    expect(() => parseVerifyArgs(["--lab", "nope"], {}, lab)).toThrow(/lab 'nope' has no mirror/);
  });

  it("lists each difference under its directory, naming the node", () => {
    const nodes = [
      { host: "10.0.0.1", port: 7412, token: TOKEN },
      { host: "10.0.0.2", port: 7412, token: TOKEN },
    ] as [never, never];
    const text = renderVerdicts(
      [
        {
          a: "/srv/data",
          b: "/srv/data",
          differences: [
            { path: "", what: "mode", a: "755", b: "700" },
            { path: "db/x", what: "content" },
            { path: "db/y", what: "only-in-b" },
            { path: "db/z", what: "owner", a: "0:0", b: "1000:1000" },
          ],
        },
        { a: "/srv/logs", b: "/srv/logs", differences: [] },
      ],
      nodes,
    );
    expect(text.split("\n")).toEqual([
      "/srv/data: 4 difference(s)",
      "  .: mode 755 on 10.0.0.1:7412, 700 on 10.0.0.2:7412",
      "  db/x: content differs",
      "  db/y: only on 10.0.0.2:7412",
      "  db/z: owner 0:0 on 10.0.0.1:7412, 1000:1000 on 10.0.0.2:7412",
      "/srv/logs: identical",
    ]);
  });
});
