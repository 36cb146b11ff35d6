// Public entry of the mirrorfarm package for Pulumi programs:
//   import { aws, gcp, azure, onprem } from "mirrorfarm";
export * as aws from "./components/aws";
export * as gcp from "./components/gcp";
export * as azure from "./components/azure";
export * as onprem from "./components/onprem";
export * from "./components/spec/types";
export { resolveSpec, listSpecProblems } from "./components/spec/validate";
export type { ClusterDescription } from "./components/common/args";
export type { ClusterNode } from "./components/common/outputs";
