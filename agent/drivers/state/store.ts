/**
 * Persisted node state (epoch, up-to-date flag, last role, ...). The runtime saves it before any
 * effect that depends on it, so a crash at any point leaves either the old or the new document,
 * complete: write a temp file, fsync it, rename over the old one, fsync the directory.
 * The store holds plain JSON; the caller validates what it loads.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MirrorfarmError } from "../../errors";
import { writeFileDurably } from "./durable-file";

export interface StateStore {
  /** The last saved document, or undefined on first start. */
  load(): unknown;
  /** Durable when it returns. */
  save(doc: unknown): void;
}

const FILE = "node-state.json";

export class FileStateStore implements StateStore {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  get path(): string {
    return join(this.dir, FILE);
  }

  load(): unknown {
    let text: string;
    try {
      text = readFileSync(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // rename is atomic, so a torn file means someone else wrote it: refuse rather than guess.
      throw new MirrorfarmError(
        "MF_STATE_CORRUPT",
        `persisted node state ${this.path} is not valid JSON; it is written atomically, so it was changed outside the agent. Restore it, or remove it to start as a fresh node (the node then counts as not up to date and waits for its peer, or needs primforce).`,
      );
    }
  }

  // Synchronous on purpose: the caller must not run the dependent effect before this returns,
  // and a few hundred bytes cost well under a millisecond plus the fsyncs.
  save(doc: unknown): void {
    writeFileDurably(this.path, Buffer.from(`${JSON.stringify(doc)}\n`));
  }
}

/** In-memory store; `saves` lets tests check what was persisted and in which order. */
export class MemoryStateStore implements StateStore {
  readonly saves: unknown[] = [];
  constructor(private doc?: unknown) {}
  load(): unknown {
    return this.doc === undefined ? undefined : structuredClone(this.doc);
  }
  save(doc: unknown): void {
    this.doc = structuredClone(doc);
    this.saves.push(structuredClone(doc));
  }
}
