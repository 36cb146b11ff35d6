export * from "./types";
export { resolveSpec, listSpecProblems, formatProblems, specDefaults } from "./validate";
export type { SpecProblem } from "./validate";
export { moduleDefaults, applicationModules } from "./modules";
export { parseIpv4, parseCidr, cidrContains } from "./ipv4";
