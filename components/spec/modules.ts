import { DEMO_DEFAULTS, NGINX_DEFAULTS, POSTGRESQL_DEFAULTS } from "../../templates/modules";
import type { ApplicationModule } from "./types";

/** What each application module brings when the spec does not say otherwise. */
export interface ModuleDefaults {
  readonly appPorts: readonly number[];
  readonly serviceName: string | undefined;
  readonly replicatedDirs: readonly string[];
}

// The modules of templates/modules bring their own; mysql and apache are plain systemd services
// (the service module), whose usual port, unit and data directory are known here only.
export const moduleDefaults: Readonly<Record<ApplicationModule, ModuleDefaults>> = {
  postgresql: { appPorts: [POSTGRESQL_DEFAULTS.port], serviceName: POSTGRESQL_DEFAULTS.distroUnit, replicatedDirs: [POSTGRESQL_DEFAULTS.dir] },
  mysql: { appPorts: [3306], serviceName: "mysql", replicatedDirs: ["/var/lib/mysql"] },
  nginx: { appPorts: [NGINX_DEFAULTS.port], serviceName: NGINX_DEFAULTS.distroUnit, replicatedDirs: [] },
  apache: { appPorts: [80], serviceName: "apache2", replicatedDirs: [] },
  docker: { appPorts: [], serviceName: undefined, replicatedDirs: [] },
  generic: { appPorts: [], serviceName: undefined, replicatedDirs: [] },
  demo: { appPorts: [DEMO_DEFAULTS.port], serviceName: undefined, replicatedDirs: [DEMO_DEFAULTS.dir] },
};

export const applicationModules = Object.keys(moduleDefaults) as ApplicationModule[];
