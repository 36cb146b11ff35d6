// The Python side of the xattr helper on its own: whatever frames it gets, it answers or exits
// cleanly, never with a traceback that would lose the calls after a bad one.
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { describe, expect, it } from "vitest";
import { FrameDecoder, encodeFrame } from "../../../agent/drivers/transport/framing";
import { HELPER_SCRIPT, MAX_FRAME_BYTES, encodeHelperRequest } from "../../../agent/drivers/xattr/helper-xattrs";

const request = (id: number, op: number, fields: Buffer[]) => encodeHelperRequest(id, op, 0, fields);

/** Runs the helper over `input`, then ends its stdin; its replies as [id, errno] and its exit. */
function run(input: Buffer[]): Promise<{ replies: [number, number][]; code: number | null; stderr: string }> {
  const child = spawn("python3", ["-I", "-S", "-c", HELPER_SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
  const decoder = new FrameDecoder(MAX_FRAME_BYTES);
  const replies: [number, number][] = [];
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    const frames = decoder.push(d);
    if (frames !== "oversize") for (const f of frames) replies.push([f.readUInt32BE(0), f.readUInt32BE(4)]);
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdin.on("error", () => {}); // a helper that exited early is what some cases check
  for (const chunk of input) child.stdin.write(chunk);
  child.stdin.end();
  return new Promise((resolve) => child.on("close", (code) => resolve({ replies, code, stderr })));
}

describe("the xattr helper's own protocol handling", () => {
  it("answers EIO to an oversize frame, an unknown op and malformed fields, and goes on", async () => {
    // A well-formed set that would get another answer (ENOENT) if its size were not refused.
    const oversize = request(7, 3, [Buffer.from("/nonexistent-mirrorfarm"), Buffer.from("user.a"), Buffer.alloc(MAX_FRAME_BYTES)]);
    const malformed = encodeFrame(Buffer.from([0, 0, 0, 9, 1, 0, 0, 0, 0, 100, 0x2f]));
    const { replies, code, stderr } = await run([
      oversize,
      request(8, 99, []),
      malformed,
      request(10, 2, [Buffer.from("/")]),
      request(11, 1, [Buffer.from("/nonexistent-mirrorfarm"), Buffer.from("user.a")]),
    ]);
    const E = constants.errno;
    expect(replies).toEqual([
      [7, E.EIO],
      [8, E.EIO],
      [9, E.EIO],
      [10, 0],
      [11, E.ENOENT],
    ]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  });

  it("exits with a message when a frame is shorter than its own header", async () => {
    const { replies, code, stderr } = await run([Buffer.from([0, 0, 0, 2, 0, 0, 0, 1, 2, 0])]);
    expect(replies).toEqual([]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/out of sync/);
  });

  it("exits cleanly on EOF in the middle of a frame", async () => {
    const { code, stderr } = await run([request(1, 2, [Buffer.from("/")]).subarray(0, 12)]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
  });
});
