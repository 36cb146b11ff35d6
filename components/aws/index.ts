export { MirrorCluster } from "./mirror-cluster";
export { FarmCluster } from "./farm-cluster";
export type { AwsClusterArgs, AwsSubnet } from "./cluster";
