// The replication stream's connection setup over real TLS on loopback: only the peer member's
// certificate (signed by the cluster CA) is accepted, the stream header and the secondary's answer
// are untrusted input (bad magic, garbage, oversize or malformed owed lists end the connection
// with a reason, never a crash), and a good answer hands over the socket with what is owed.
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exampleConfig } from "../../../agent/config/example";
import type { AgentConfig } from "../../../agent/config/schema";
import { type OwedByTarget, ReplicationListener, dialReplication, encodeAnswer } from "../../../agent/runtime/replicated-link";
import { makePki, type Pki } from "../../unit/runtime/fixtures/certs";
import { waitFor } from "../../unit/runtime/fixtures/wait";

const BASE = "127.0.24";
const PORT = 17910;
let pki: Pki;

function config(node: "a" | "b" | "c", port = PORT): AgentConfig {
  const member = pki.members[node]!;
  return exampleConfig({
    node: node === "c" ? "a" : node, // c pretends to be member a with its own (wrongly named) certificate
    members: [
      { name: "a", address: `${BASE}.2` },
      { name: "b", address: `${BASE}.3` },
    ],
    secrets: { ca: pki.ca, cert: member.cert, key: member.key },
    patch: (d) => {
      d.ports = { heartbeat: port - 1, peer: port, admin: port + 1, witness: port + 2 };
    },
  });
}

beforeAll(() => {
  pki = makePki(["a", "b", "c"]);
});

afterAll(() => pki.cleanup());

describe("replication stream setup (mutual TLS, untrusted header and answer)", () => {
  it("accepts the peer's stream with its directory index and refuses other certificates and bad headers", async () => {
    const streams: [string, number][] = [];
    const listener = new ReplicationListener(config("b"), (peer, index, sock) => {
      streams.push([peer, index]);
      sock.write(encodeAnswer({ full: true }));
    });
    await listener.start();
    try {
      const dialed = await dialReplication(config("a"), 3);
      expect(dialed.full).toBe(true);
      dialed.socket.destroy();
      expect(streams).toEqual([["a", 3]]);

      await expect(dialReplication(config("c"), 0)).rejects.toThrow(/replication stream to b failed/);
      const raw = tls.connect({ host: `${BASE}.3`, port: PORT, ca: pki.ca, cert: pki.members.a!.cert, key: pki.members.a!.key, checkServerIdentity: () => undefined });
      await new Promise<void>((resolve) => raw.once("secureConnect", () => resolve()));
      raw.write(Buffer.from("GARBAGE!"));
      await new Promise<void>((resolve) => raw.once("close", () => resolve()));
      await waitFor("both refusals counted", () => listener.rejected >= 2, 5000);
      expect(streams).toEqual([["a", 3]]);
    } finally {
      await listener.close();
    }
  });

  it("rejects a garbled, oversize or malformed answer; hands over the socket and the owed list otherwise", async () => {
    let answer: Buffer = Buffer.alloc(0);
    const listener = new ReplicationListener(config("b", PORT + 10), (_peer, _index, sock) => sock.write(answer));
    await listener.start();
    const dial = () => dialReplication(config("a", PORT + 10), 0);
    try {
      answer = Buffer.from("?");
      await expect(dial()).rejects.toThrow(/unexpected answer/);
      answer = Buffer.concat([Buffer.of(0x5a), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
      await expect(dial()).rejects.toThrow(/above/);
      answer = encodeAnswer({ full: false, owed: { files: { f: [[5, 1]] }, inDoubt: {}, entries: [], names: [], flushed: true } });
      await expect(dial()).rejects.toThrow(/ranges/);
      const owed: OwedByTarget = { files: { "d/f": [[0, 4096]] }, inDoubt: { g: [[0, 4194304]] }, entries: ["new"], names: ["d/f"], flushed: false };
      // The answer and the first bytes of the stream may arrive together: those stay on the socket.
      answer = Buffer.concat([encodeAnswer({ full: false, owed }), Buffer.from("next")]);
      const ok = await dial();
      expect(ok).toMatchObject({ full: false, owed });
      const next = await new Promise<Buffer>((resolve) => {
        ok.socket.once("data", (d: Buffer) => resolve(d));
        ok.socket.resume();
      });
      expect(next.toString()).toBe("next");
      ok.socket.destroy();
    } finally {
      await listener.close();
    }
  });
});
