// The AWS bootstrap reads S3 with `curl --aws-sigv4` and the instance role's temporary
// credentials. Without S3 at hand, this checks the part that decides whether S3 accepts the
// request: the signature curl computes, recomputed here by the SigV4 rules S3 applies (with the
// payload hash taken from x-amz-content-sha256, and the session token among the signed headers).
import { execFile } from "node:child_process";
import { createHash, createHmac } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const pexec = promisify(execFile);
const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();
const sha256 = (data: string) => createHash("sha256").update(data).digest("hex");

function expectedSignature(req: http.IncomingMessage, secret: string, signed: string[], scope: { date: string; region: string; service: string }): string {
  const url = new URL(req.url ?? "/", "http://x");
  const headers = signed.map((h) => `${h}:${String(req.headers[h]).trim()}\n`).join("");
  const canonical = [req.method, url.pathname, url.search.slice(1), headers, signed.join(";"), String(req.headers["x-amz-content-sha256"])].join("\n");
  const amzDate = String(req.headers["x-amz-date"]);
  const credentialScope = `${scope.date}/${scope.region}/${scope.service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, credentialScope, sha256(canonical)].join("\n");
  let key = hmac(`AWS4${secret}`, scope.date);
  for (const part of [scope.region, scope.service, "aws4_request"]) key = hmac(key, part);
  return createHmac("sha256", key).update(toSign).digest("hex");
}

describe("curl --aws-sigv4 as the AWS bootstrap uses it", () => {
  let server: http.Server;
  let port = 0;
  const seen: http.IncomingMessage[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push(req);
      res.end("object body");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  it("signs the session token and the unsigned-payload header, so S3 can verify the request", async () => {
    const { stdout } = await pexec("curl", [
      "-sf", "--aws-sigv4", "aws:amz:eu-west-1:s3", "--user", "AKIDEXAMPLE:wJalrXUtnFEMI/K7MDENG", "-H", "x-amz-security-token: SESSIONTOKEN",
      "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", `http://127.0.0.1:${port}/mirrorfarm/orders/a.json`,
    ]);
    expect(stdout).toBe("object body");
    const req = seen.at(-1)!;
    const auth = /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/(\d{8})\/eu-west-1\/s3\/aws4_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$/.exec(String(req.headers.authorization));
    expect(auth, String(req.headers.authorization)).not.toBeNull();
    const signed = auth![2]!.split(";");
    expect(signed).toEqual(expect.arrayContaining(["host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"]));
    expect(auth![3]).toBe(expectedSignature(req, "wJalrXUtnFEMI/K7MDENG", signed, { date: auth![1]!, region: "eu-west-1", service: "s3" }));
  });
});
