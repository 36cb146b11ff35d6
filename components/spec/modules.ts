import type { ApplicationModule } from "./types";

/** What each application module brings when the spec does not say otherwise. */
export interface ModuleDefaults {
  readonly appPorts: readonly number[];
  readonly serviceName: string | undefined;
  readonly replicatedDirs: readonly string[];
}

export const moduleDefaults: Readonly<Record<ApplicationModule, ModuleDefaults>> = {
  postgresql: { appPorts: [5432], serviceName: "postgresql", replicatedDirs: ["/var/lib/postgresql"] },
  mysql: { appPorts: [3306], serviceName: "mysql", replicatedDirs: ["/var/lib/mysql"] },
  nginx: { appPorts: [80], serviceName: "nginx", replicatedDirs: [] },
  apache: { appPorts: [80], serviceName: "apache2", replicatedDirs: [] },
  docker: { appPorts: [], serviceName: undefined, replicatedDirs: [] },
  generic: { appPorts: [], serviceName: undefined, replicatedDirs: [] },
  demo: { appPorts: [8080], serviceName: undefined, replicatedDirs: ["/var/lib/mirrorfarm-demo"] },
};

export const applicationModules = Object.keys(moduleDefaults) as ApplicationModule[];
