export { MirrorCluster } from "./mirror-cluster";
export { FarmCluster } from "./farm-cluster";
export type { AzureClusterArgs, AzureImage } from "./cluster";
