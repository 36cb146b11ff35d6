// The application modules: each declares its replicated directories, role scripts, checkers,
// ports and client URL from its arguments (lab or real server). See types.ts for the contract.
export type { AppModule, ModuleChecker, ModuleDir, ModuleScript } from "./types";
export { agentCheckers, agentScripts, scriptFiles, SCRIPT_FILES, type CheckerTiming } from "./agent";
export { DEMO_DEFAULTS, demoModule, type DemoParams } from "./demo";
export { dockerModule, type DockerParams } from "./docker";
export { NGINX_DEFAULTS, nginxModule, type NginxParams } from "./nginx";
export { pgdataOf, POSTGRESQL_DEFAULTS, postgresqlModule, scramVerifier, type PostgresqlParams } from "./postgresql";
export { serviceModule, type ServiceParams } from "./service";
export { shellQuote } from "./shell";
