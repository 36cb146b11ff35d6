import { MirrorfarmError } from "../../errors";

/** A listener that cannot bind: which one, on what address, why, and what to check. */
export function bindError(what: string, address: string, port: number, err: Error): MirrorfarmError {
  const code = (err as NodeJS.ErrnoException).code;
  const fix =
    code === "EADDRINUSE"
      ? `another process uses ${address}:${port} (another agent, or an old one still running): stop it or change the port in the config`
      : code === "EADDRNOTAVAIL"
        ? `${address} is not an address of this host: check this node's addresses in the config (members[].addresses, witness.address, admin.listen)`
        : code === "EACCES"
          ? `binding port ${port} needs privileges: use a port above 1023 or run the agent as root`
          : "check the address and port in the config";
  return new MirrorfarmError("MF_AGENT_BIND", `cannot listen for ${what} on ${address}:${port}: ${err.message}; fix: ${fix}`);
}
