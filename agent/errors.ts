/**
 * Every error a user can see carries a stable code (MF_xxx) so scripts and docs can refer to it.
 * The message says what was wrong, with which input, what is allowed and how to fix it.
 */
export class MirrorfarmError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = "MirrorfarmError";
  }
}
