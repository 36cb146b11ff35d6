import { keepUnitAway, shellQuote, SYSTEM_PATH } from "./shell";
import type { AppModule } from "./types";

export interface NginxParams {
  /** @default 80 */
  readonly port?: number;
  /** The configuration nginx runs with. */
  readonly conf: string;
  /** The pid file that configuration names (its `pid` directive). */
  readonly pidFile: string;
  /** When given, written to `conf` at each start (the lab's generated site); else `conf` is the server's own. */
  readonly confText?: string;
  /** The distro's unit, kept from starting nginx itself (real servers; none in the lab). */
  readonly distroUnit?: string;
}

/** A real server's nginx unless the cluster says otherwise: its port and the distro's unit. */
export const NGINX_DEFAULTS = { port: 80, distroUnit: "nginx" } as const;

/** nginx started and stopped by the agent (`nginx -c conf`), never by the distro's unit. */
export function nginxModule(p: NginxParams): AppModule {
  const port = p.port ?? NGINX_DEFAULTS.port;
  const conf = shellQuote(p.conf);
  const pid = shellQuote(p.pidFile);
  const write = p.confText === undefined ? "" : `mkdir -p "$(dirname ${conf})"\ncat > ${conf} <<'MIRRORFARM_NGINX_CONF'\n${p.confText}MIRRORFARM_NGINX_CONF\n`;
  return {
    name: "nginx",
    ports: [port],
    replicatedDirs: [],
    scripts: {
      ...(p.distroUnit ? { prestart: { timeoutMs: 60_000, text: keepUnitAway(p.distroUnit) } } : {}),
      start_prim: {
        timeoutMs: 30_000,
        // nginx binds its ports before it returns: nothing to wait for.
        text: `${SYSTEM_PATH}mkdir -p /var/log/mirrorfarm
if [ -f ${pid} ] && kill -0 "$(cat ${pid})" 2>/dev/null; then exit 0; fi
${write}exec nginx -c ${conf}
`,
      },
      stop_prim: {
        timeoutMs: 30_000,
        // A graceful quit, waited for (at most 20 s), so that a start right after finds no old master.
        text: `pid=$(cat ${pid} 2>/dev/null) || exit 0
kill -QUIT "$pid" 2>/dev/null || exit 0
i=0
while kill -0 "$pid" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM "$pid" 2>/dev/null
exit 0
`,
      },
    },
    checkers: [{ name: "nginx", type: "tcp", port }],
    url: (host) => (port === 80 ? `http://${host}/` : `http://${host}:${port}/`),
  };
}
