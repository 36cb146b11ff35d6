import { MirrorfarmError } from "../errors";

/**
 * Parses a command line and runs the command: `--help` prints the usage (exit 0), a bad command
 * line prints every problem (MF_CTL_USAGE) and exits 2, like every usage error.
 */
export async function parseThenRun<O>(argv: string[], parse: (argv: string[]) => O | "help", usage: () => string, run: (o: O) => Promise<number>): Promise<number> {
  let o: O | "help";
  try {
    o = parse(argv);
  } catch (e) {
    if (e instanceof MirrorfarmError && e.code === "MF_CTL_USAGE") {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  if (o === "help") {
    console.log(usage());
    return 0;
  }
  return run(o);
}
