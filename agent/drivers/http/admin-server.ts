/**
 * The agent's HTTP API on the admin address.
 *
 *   GET  /ready          200 where traffic must go, 503 elsewhere; the body says nothing more.
 *   GET  /status         JSON status                         (bearer token)
 *   GET  /metrics        Prometheus text format              (bearer token)
 *   GET  /logs?lines=N   the last N JSON log lines           (bearer token)
 *   GET  /replication/manifest?dir=PATH
 *                        the manifest of a replicated directory's backing copy, for `verify`
 *                        (bearer token; only configured directories; one build at a time)
 *   POST /admin/<cmd>    an admin command, JSON answer       (bearer token)
 *
 * Only /ready is open: a cloud load balancer probes it and cannot send a token. /status and
 * /metrics also need the token even though admin.listen defaults to loopback: the same listener
 * serves /ready on a node address whenever a load balancer must reach it, so the address alone
 * cannot be what protects them, and status reveals the topology, epochs and checker details.
 * Prometheus sends a bearer token natively (`authorization: { credentials_file: ... }`).
 *
 * Bounded: request bodies (16 KiB), header and request timeouts, one JSON answer per request.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { bindError } from "../transport/bind-error";

export type CommandAnswer = { status: number; body: Record<string, unknown> };
export type AdminHandlers = {
  ready(): boolean;
  status(): unknown;
  metrics(): string;
  logs(lines: number): string[];
  command(name: string, args: Record<string, unknown>): Promise<CommandAnswer>;
  /** Mirror members with replicated directories only; absent elsewhere (404). */
  manifest?(dir: string): Promise<CommandAnswer>;
};
export type AdminServerOptions = { address: string; port: number; token: string; handlers: AdminHandlers; maxBodyBytes?: number };

const DEFAULT_MAX_BODY = 16 * 1024;
const MANIFEST_PATH = "/replication/manifest";
const COMMAND_RE = /^\/admin\/([a-z]{1,32})$/;

function digest(s: string): Buffer {
  return createHash("sha256").update(s, "utf8").digest();
}

/** Constant time whatever the lengths: both sides are hashed to 32 bytes first. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? "");
  const given = m?.[1] ?? "";
  return timingSafeEqual(digest(given), digest(token)) && given.length > 0;
}

function send(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, `${JSON.stringify(body)}\n`, "application/json");
}

function readBody(req: IncomingMessage, max: number): Promise<Buffer | "too-large"> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > max) return resolve("too-large");
    const chunks: Buffer[] = [];
    let n = 0;
    req.on("data", (c: Buffer) => {
      n += c.length;
      if (n > max) {
        req.removeAllListeners("data");
        req.pause();
        resolve("too-large");
        return;
      }
      chunks.push(c);
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

export class AdminServer {
  private server: Server | undefined;

  constructor(private readonly opts: AdminServerOptions) {}

  async start(): Promise<void> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error: "internal error" });
        else res.destroy();
      });
    });
    server.headersTimeout = 5_000;
    server.requestTimeout = 10_000;
    server.maxRequestsPerSocket = 100;
    // Operators, a scraper and a load balancer's probes: a few dozen connections are plenty.
    server.maxConnections = 64;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (e) => reject(bindError("the admin HTTP API", this.opts.address, this.opts.port, e)));
      server.listen({ host: this.opts.address, port: this.opts.port, exclusive: true }, () => resolve());
    });
    this.server = server;
  }

  port(): number | undefined {
    const a = this.server?.address();
    return a && typeof a === "object" ? a.port : undefined;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://agent");
    const h = this.opts.handlers;
    if (url.pathname === "/ready") {
      if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "");
      return h.ready() ? send(res, 200, "ready\n") : send(res, 503, "not ready\n");
    }
    const known = url.pathname === "/status" || url.pathname === "/metrics" || url.pathname === "/logs" || url.pathname === MANIFEST_PATH || COMMAND_RE.test(url.pathname);
    if (!known) return sendJson(res, 404, { error: "not found" });
    if (!tokenMatches(req.headers.authorization, this.opts.token)) {
      res.setHeader("www-authenticate", 'Bearer realm="mirrorfarm"');
      return sendJson(res, 401, { error: "a valid bearer token is required (Authorization: Bearer <admin token>)" });
    }
    const cmd = COMMAND_RE.exec(url.pathname)?.[1];
    if (cmd !== undefined) {
      if (req.method !== "POST") return sendJson(res, 405, { error: "admin commands need POST" });
      const body = await readBody(req, this.opts.maxBodyBytes ?? DEFAULT_MAX_BODY);
      if (body === "too-large") {
        // Answer, then drop the connection rather than read the rest of an unbounded body.
        res.setHeader("connection", "close");
        res.once("finish", () => req.socket.destroy());
        return sendJson(res, 413, { error: `request body above ${this.opts.maxBodyBytes ?? DEFAULT_MAX_BODY} bytes` });
      }
      let args: Record<string, unknown> = {};
      if (body.length > 0) {
        try {
          const parsed: unknown = JSON.parse(body.toString("utf8"));
          if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not an object");
          args = parsed as Record<string, unknown>;
        } catch {
          return sendJson(res, 400, { error: "the request body must be a JSON object (or empty)" });
        }
      }
      const a = await h.command(cmd, args);
      return sendJson(res, a.status, a.body);
    }
    if (req.method !== "GET") return sendJson(res, 405, { error: "use GET" });
    if (url.pathname === "/status") return sendJson(res, 200, h.status());
    if (url.pathname === MANIFEST_PATH) {
      const dir = url.searchParams.get("dir");
      if (!h.manifest) return sendJson(res, 404, { error: "this node has no replicated directories" });
      if (!dir || dir.length > 4096) return sendJson(res, 400, { error: "give the replicated directory as ?dir=PATH (as configured in mirror.replicatedDirs)" });
      const a = await h.manifest(dir);
      return sendJson(res, a.status, a.body);
    }
    if (url.pathname === "/metrics") return send(res, 200, h.metrics(), "text/plain; version=0.0.4; charset=utf-8");
    const lines = Math.max(1, Math.min(10_000, Number(url.searchParams.get("lines") ?? 200) || 200));
    return send(res, 200, h.logs(lines).map((l) => `${l}\n`).join(""), "application/x-ndjson");
  }
}
