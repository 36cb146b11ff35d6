import { describe, expect, it } from "vitest";
import { describeFailure, runCommand, startBackground, withNetns } from "../../../agent/drivers/vip/command";

describe("bounded commands for the network drivers", () => {
  it("returns exit code, stdout and stderr, and feeds stdin", async () => {
    const r = await runCommand(["sh", "-c", "cat; echo oops >&2; exit 3"], { timeoutMs: 5000, input: "table ip t {}\n" });
    expect(r).toEqual({ code: 3, stdout: "table ip t {}\n", stderr: "oops\n", timedOut: false });
  });

  it("kills a command that outlives its bound and says so", async () => {
    const r = await runCommand(["sleep", "30"], { timeoutMs: 100 });
    expect(r.timedOut).toBe(true);
    expect(r.code).toBeNull();
    expect(describeFailure(["sleep", "30"], r)).toBe("`sleep 30` failed (timed out): killed after 100 ms");
  });

  it("reports a program that cannot start instead of throwing", async () => {
    const r = await runCommand(["mfn-no-such-program"], { timeoutMs: 1000 });
    expect(r.code).toBeNull();
    expect(describeFailure(["mfn-no-such-program"], r)).toMatch(/could not run.*cannot run mfn-no-such-program: spawn mfn-no-such-program ENOENT/);
  });

  it("runs a background command that can be stopped, and bounds it", async () => {
    const stopped = startBackground(["sleep", "30"], { timeoutMs: 10_000 });
    stopped.stop();
    expect((await stopped.exited).code).toBeNull();
    const bounded = await startBackground(["sleep", "30"], { timeoutMs: 100 }).exited;
    expect(bounded.timedOut).toBe(true);
    const failed = await startBackground(["sh", "-c", "echo no route >&2; exit 2"], { timeoutMs: 5000 }).exited;
    expect(failed).toMatchObject({ code: 2, stderr: "no route\n" });
  });

  it("prefixes ip netns exec only when a namespace is given", () => {
    expect(withNetns(["nft", "-f", "-"], undefined)).toEqual(["nft", "-f", "-"]);
    expect(withNetns(["nft", "-f", "-"], "mfn-1-a")).toEqual(["ip", "netns", "exec", "mfn-1-a", "nft", "-f", "-"]);
  });
});
