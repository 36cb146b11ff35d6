// The mirrorfarm command: one file per subcommand, dispatched here.
import { MirrorfarmError } from "../errors";

type Command = { summary: string; run: (argv: string[]) => Promise<number> };

const commands: Record<string, () => Promise<Command>> = {
  sim: async () => (await import("./sim")).command,
  lab: async () => (await import("./lab")).command,
  status: async () => (await import("./ctl")).command,
  start: async () => (await import("./ctl")).command,
  stop: async () => (await import("./ctl")).command,
  prim: async () => (await import("./ctl")).command,
  second: async () => (await import("./ctl")).command,
  swap: async () => (await import("./ctl")).command,
  primforce: async () => (await import("./ctl")).command,
  restart: async () => (await import("./ctl")).command,
  fullsync: async () => (await import("./ctl")).command,
  logs: async () => (await import("./ctl")).command,
  verify: async () => (await import("./verify")).command,
};

const ctlCommands = new Set(["status", "start", "stop", "prim", "second", "swap", "primforce", "restart", "fullsync", "logs"]);
function isCtl(name: string): boolean {
  return ctlCommands.has(name);
}

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
  // ctl commands receive their own name first, the others only their arguments.
  return (await load()).run(isCtl(name) ? argv : rest);
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
