export { DEFAULT_RELAY_OPTIONS, WatchService, parseWatchUpstream } from './watch-service.js';
export type { OpenSource, SourcePolicy, WatchMetrics, WatchServiceOptions, WatchUpstream } from './watch-service.js';
export type { ConnectSource, StreamRelayOptions, StreamStats, TagSource } from './stream-relay.js';
