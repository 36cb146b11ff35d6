// Waiting in tests: a poll with a deadline, never a sleep as synchronisation.
import { waitFor } from "../../agent/lab/sys";

/** Resolves with fn's first defined result, polling every intervalMs; throws after deadlineMs. */
export function poll<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, deadlineMs = 30_000, intervalMs = 100): Promise<T> {
  return waitFor(what, deadlineMs, fn, intervalMs);
}
