// Farm core: bucket assignment, the node state machine over views (node.ts), the same over ticks
// and heartbeats (core.ts, what the runtime drives), and the farm heartbeat codec.
export { BUCKETS, assignBuckets, bucketTargets, bucketsOf, minimalMoves, movedBuckets, ownersDigest, type FarmMember } from "./buckets";
export { FARM_TRANSITIONS, IllegalFarmTransitionError, assertFarmTransition, type FarmState } from "./states";
export {
  bucketMap,
  farmAdvert,
  farmStep,
  initFarm,
  leaderOf,
  mapLabel,
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
export { decodeBucketMap, decodeBucketSet, encodeBucketMap, encodeBucketSet, type WireBucketMap } from "./wire";
export { farmCoreConfigFromAgentConfig, type FarmCoreConfig } from "./config";
export { decodeFarmMessage, encodeFarmMessage, type FarmDecodeResult, type FarmHeartbeat } from "./messages";
export { farmCoreStep, initFarmCore, type FarmCoreEffect, type FarmCoreEvent, type FarmCoreState, type FarmCoreStep } from "./core";
export { farmStatus, type FarmStatus } from "./status";
