// Applications the lab runs on its hosts: the modules of templates/modules with the lab's
// arguments (paths in a host's private directories, a password per deployment, the lab's subnet).
// Their scripts are installed on each host under APPS_DIR/<module>/ (to read and run by hand);
// the agent's config runs those files.
import { demoModule, nginxModule, postgresqlModule, type AppModule, type CheckerTiming } from "../../templates/modules";
import { labAddresses } from "./names";

export type LabApp = "demo" | "postgresql" | "nginx";
export const LAB_APPS: readonly LabApp[] = ["demo", "postgresql", "nginx"];

export const APPS_DIR = "/var/lib/mirrorfarm/apps";

export interface LabAppParams {
  /** The lab's subnet number: its clients may connect. */
  readonly subnet: number;
  /** The application's password (PostgreSQL), one per deployment. */
  readonly password: string;
}

/** Every 500 ms, 3 failures in a row restart the application: a primary sees it dead within 1.5 s. */
export const LAB_CHECKER_TIMING: CheckerTiming = { intervalMs: 500, timeoutMs: 400, failures: 3 };

// nginx answering the name of the host serving it ($hostname: the lab host's UTS name).
const NGINX_CONF = `# mirrorfarm lab: nginx serving the host's name on port 80.
worker_processes 1;
pid /run/mirrorfarm-nginx.pid;
error_log /var/log/mirrorfarm/nginx-error.log;
events { worker_connections 256; }
http {
  access_log off;
  server {
    listen 0.0.0.0:80;
    location / { default_type text/plain; return 200 "$hostname\\n"; }
  }
}
`;

export function labAppModule(app: LabApp, p: LabAppParams): AppModule {
  switch (app) {
    case "demo":
      return demoModule();
    case "nginx":
      return nginxModule({ conf: `${APPS_DIR}/nginx/nginx.conf`, pidFile: "/run/mirrorfarm-nginx.pid", confText: NGINX_CONF });
    case "postgresql":
      // /var/lib/postgresql is private to each host: the backing is beside the replicated directory, on the same filesystem.
      return postgresqlModule({
        dir: "/var/lib/postgresql/mirrorfarm",
        backing: "/var/lib/postgresql/.mirrorfarm-backing",
        user: "postgres",
        password: p.password,
        database: "postgres",
        clientCidrs: [`${labAddresses(p.subnet).prefix}.0/24`],
      });
  }
}
