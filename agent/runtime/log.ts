/**
 * JSON logs: one object per line, to stdout and to <stateDir>/agent.log (rotated once at 10 MiB),
 * plus the last lines in memory for `mirrorfarm logs`. Secrets never go through here: callers log
 * names, states and reasons, not config documents.
 */
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";

export type LogEntry = Record<string, unknown> & { event: string };
export type Logger = (entry: LogEntry) => void;

const MAX_FILE_BYTES = 10 * 1024 * 1024;
const RING = 2000;

export class JsonLog {
  private fd: number | undefined;
  private size = 0;
  private readonly ring: string[] = [];

  constructor(
    private readonly base: Record<string, unknown>,
    private readonly dir?: string,
    private readonly stdout: (line: string) => void = (l) => process.stdout.write(l),
  ) {
    if (dir) this.open();
  }

  private get file(): string {
    return join(this.dir ?? ".", "agent.log");
  }

  private open(): void {
    mkdirSync(this.dir ?? ".", { recursive: true, mode: 0o700 });
    this.fd = openSync(this.file, "a", 0o600);
    this.size = fstatSync(this.fd).size;
  }

  readonly write: Logger = (entry) => {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...this.base, ...entry })}\n`;
    this.stdout(line);
    this.ring.push(line.trimEnd());
    if (this.ring.length > RING) this.ring.shift();
    if (this.fd === undefined) return;
    try {
      if (this.size + line.length > MAX_FILE_BYTES) {
        closeSync(this.fd);
        renameSync(this.file, `${this.file}.1`);
        this.open();
      }
      this.size += writeSync(this.fd, line);
    } catch {
      // A full disk must not stop the agent; stdout still has the line.
    }
  };

  tail(n: number): string[] {
    return this.ring.slice(-n);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
