/** The election of the representative: the node the router maps the well-known port to. */
export type { DetectionMeans, ElectionConfig, ElectionConfigInit, ElectionRule, SetKnob } from './config.js';
export { defaultElectionConfig, electionConfig, electionFromSettings, electionSettings, KNOB_SETTING, validateElectionConfig } from './config.js';
export type { DepartureReason } from './detector.js';
export { DepartureDetector } from './detector.js';
export type { DirectoryEntry } from '../membership/directory.js';
export { Directory } from '../membership/directory.js';
export type {
  BecameRepresentative,
  ElectionComponents,
  ElectionHooks,
  ElectionInit,
  ElectionState,
  RoleChange,
} from './election-node.js';
export { ElectionNode } from './election-node.js';
export { ElectionConfigError, ElectionError } from './errors.js';
export type { Ranked } from './rules.js';
export { compareCandidates, deviceRank, rankOf, takeoverDelayMs } from './rules.js';
