// An append-only file of JSON lines where append() resolves only once the line is on disk
// (fdatasync). Group commit: lines appended while a flush runs go out together in the next one,
// so many writers in flight share one fdatasync.
import * as fs from "node:fs";
import { promisify } from "node:util";

const writeFd = promisify(fs.write);
const fdatasyncFd = promisify(fs.fdatasync);
const ftruncate = promisify(fs.ftruncate);

export class DurableLog {
  private queued: { line: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  private flushing = false;
  /** fdatasync calls made (a benchmark and test figure). */
  syncs = 0;

  private constructor(private readonly fd: number) {}

  static open(file: string): DurableLog {
    return new DurableLog(fs.openSync(file, "a"));
  }

  /** Every complete line of a log file; a torn last line (crash mid-append) is left out. */
  static read(file: string): unknown[] {
    let text: string;
    try {
      text = fs.readFileSync(file, "latin1");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: unknown[] = [];
    const lines = text.split("\n");
    lines.pop(); // after the last "\n": empty, or a torn line
    for (const line of lines) {
      try {
        out.push(JSON.parse(line));
      } catch {
        break; // nothing after a damaged line can be trusted to be in order
      }
    }
    return out;
  }

  append(record: unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queued.push({ line: `${JSON.stringify(record)}\n`, resolve, reject });
      void this.flush();
    });
  }

  /** Empties the file (after its content was folded into a checkpoint). */
  async truncate(): Promise<void> {
    await ftruncate(this.fd, 0);
    await fdatasyncFd(this.fd);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    while (this.queued.length > 0) {
      const batch = this.queued.splice(0);
      try {
        const data = Buffer.from(batch.map((b) => b.line).join(""), "latin1");
        for (let done = 0; done < data.length; ) done += (await writeFd(this.fd, data, done, data.length - done)).bytesWritten;
        await fdatasyncFd(this.fd);
        this.syncs++;
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err as Error);
      }
    }
    this.flushing = false;
  }
}
