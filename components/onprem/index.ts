export { MirrorCluster } from "./mirror-cluster";
export { FarmCluster } from "./farm-cluster";
export { NodeDeployment, nodeDeploymentProvider } from "./node-deployment";
export type { OnpremClusterArgs, OnpremHost } from "./cluster";
export type { NodeDeploymentArgs, NodeDeploymentProps, NodeTarget } from "./node-deployment";
