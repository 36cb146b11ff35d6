// Farm core: bucket assignment, the node state machine, and the bucket map's wire form.
export { BUCKETS, assignBuckets, bucketTargets, bucketsOf, minimalMoves, movedBuckets, type FarmMember } from "./buckets";
export { FARM_TRANSITIONS, IllegalFarmTransitionError, assertFarmTransition, type FarmState } from "./states";
export {
  farmAdvert,
  farmStep,
  initFarm,
  leaderOf,
  upMembers,
  type BucketMap,
  type FarmAdvert,
  type FarmEffect,
  type FarmEvent,
  type FarmNode,
  type FarmPeer,
  type FarmScript,
  type FarmStep,
} from "./node";
export { decodeBucketMap, encodeBucketMap, type WireBucketMap } from "./wire";
