// The pure core of the agent: step functions over ticks, no I/O, no clock.
//
//   const { state, effects } = mirror.init(config, persistedOrNull);
//   ({ state, effects } = mirror.step(state, { type: "tick" }));      // every config.tickMs
//   ({ state, effects } = mirror.step(state, { type: "message", network, message }));
//   ({ state, effects } = witness.step(wstate, event));
//
// The driver executes each step's effects in list order (the ordering contract is documented on
// MirrorEffect in mirror/types.ts), and feeds messages decoded with decodeMessage.
import { init, orderEffects, step } from "./mirror/node";
import { initWitness, witnessStep } from "./witness/node";

export const mirror = { init, step, orderEffects };
export const witness = { init: initWitness, step: witnessStep };

export {
  checkMirrorCoreConfig,
  checkWitnessCoreConfig,
  driftTicks,
  leaseMarginProblem,
  MAX_DRIFT_PPM,
  mirrorCoreConfigFromAgentConfig,
  witnessCoreConfigFromAgentConfig,
  type MirrorCoreConfig,
  type UnsafeRules,
  type WitnessCoreConfig,
} from "./config";
export {
  decodeMessage,
  encodeMessage,
  MAX_MESSAGE_BYTES,
  type DecodeResult,
  type Heartbeat,
  type LeaseRenew,
  type LeaseReply,
  type Message,
  type MessageKind,
  type Stamp,
  type SwapRequest,
  type VoteReply,
  type VoteRequest,
} from "./messages";
export { assertTransition, IllegalTransitionError, isWriterRole, MIRROR_TRANSITIONS, type MirrorRole } from "./mirror/roles";
export {
  ADMIN_COMMANDS,
  FRESH_PERSISTED,
  type AdminCommand,
  type MirrorEffect,
  type MirrorEvent,
  type MirrorPersisted,
  type MirrorState,
  type MirrorStep,
  type RoleScriptName,
  type TransitionLog,
} from "./mirror/types";
export { mirrorStatus, type MirrorStatus } from "./mirror/status";
export { aliveMembers, aliveNetworks, isAlive, lastHeard, newMembership, recordHeard, type Membership } from "./membership";
export { FRESH_WITNESS, type WitnessEffect, type WitnessEvent, type WitnessPersisted, type WitnessState, type WitnessStep } from "./witness/node";
