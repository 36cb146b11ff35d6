/** Client of the agent's HTTP API, used by the CLI and the tests. */
import { MirrorfarmError } from "../../errors";
import type { ManifestEntry } from "../replication/manifest";

export type AgentAddress = { host: string; port: number; token: string };

export class AdminClient {
  constructor(
    private readonly at: AgentAddress,
    private readonly timeoutMs = 5000,
  ) {}

  private async call(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; text: string }> {
    const url = `http://${this.at.host}:${this.at.port}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.at.token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new MirrorfarmError("MF_CTL_UNREACHABLE", `cannot reach the agent at ${this.at.host}:${this.at.port} (${cause}). Check --node ADDR[:PORT] (the admin address and port, default port 7412) and that the agent runs there.`);
    }
    const text = await res.text();
    if (res.status === 401) throw new MirrorfarmError("MF_CTL_AUTH", `the agent at ${this.at.host}:${this.at.port} refused the admin token. Pass the cluster's admin token with --token T or the MIRRORFARM_TOKEN environment variable.`);
    return { status: res.status, text };
  }

  async status(): Promise<Record<string, unknown>> {
    const r = await this.call("GET", "/status");
    return JSON.parse(r.text) as Record<string, unknown>;
  }

  async metrics(): Promise<string> {
    return (await this.call("GET", "/metrics")).text;
  }

  async logs(lines: number): Promise<string> {
    return (await this.call("GET", `/logs?lines=${lines}`)).text;
  }

  /** The manifest of replicated directory `dir`'s backing copy on this agent. */
  async manifest(dir: string): Promise<ManifestEntry[]> {
    const r = await this.call("GET", `/replication/manifest?dir=${encodeURIComponent(dir)}`);
    let body: unknown;
    try {
      body = JSON.parse(r.text);
    } catch {
      body = undefined;
    }
    const entries = (body as { entries?: unknown } | undefined)?.entries;
    if (r.status !== 200 || !Array.isArray(entries)) {
      const why = (body as { error?: unknown } | undefined)?.error;
      throw new MirrorfarmError("MF_CTL_MANIFEST", `the agent at ${this.at.host}:${this.at.port} gave no manifest of '${dir}' (HTTP ${r.status}: ${typeof why === "string" ? why : r.text.slice(0, 200)}).`);
    }
    return entries as ManifestEntry[];
  }

  async ready(): Promise<boolean> {
    const res = await fetch(`http://${this.at.host}:${this.at.port}/ready`, { signal: AbortSignal.timeout(this.timeoutMs) });
    await res.text();
    return res.status === 200;
  }

  /** Runs an admin command; the answer carries ok and a message from the agent. */
  async command(name: string, args: Record<string, unknown> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
    const r = await this.call("POST", `/admin/${name}`, args);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(r.text) as Record<string, unknown>;
    } catch {
      body = { error: r.text };
    }
    return { status: r.status, body };
  }
}
