// The mirrorfarm command: one file per subcommand, dispatched here.
import { MirrorfarmError } from "../errors";

type Command = { summary: string; run: (argv: string[]) => Promise<number> };

const commands: Record<string, () => Promise<Command>> = {
  sim: async () => (await import("./sim")).command,
};

function usage(): string {
  return [
    "usage: mirrorfarm <command> [options]",
    "",
    "commands:",
    ...Object.keys(commands).map((c) => `  ${c}`),
    "",
    "Run `mirrorfarm <command> --help` for a command's options.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    console.error(`mirrorfarm: unknown command '${name}'.\n${usage()}`);
    return 2;
  }
  return (await load()).run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof MirrorfarmError) console.error(err.message);
    else console.error(err);
    process.exitCode = 1;
  },
);
