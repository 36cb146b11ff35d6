export { MirrorCluster } from "./mirror-cluster";
export { FarmCluster } from "./farm-cluster";
export type { GcpClusterArgs } from "./cluster";
