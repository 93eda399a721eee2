export { DEFAULT_RELAY_OPTIONS, WatchService } from './watch-service.js';
export type { OpenSource, SourcePolicy, WatchMetrics, WatchServiceOptions } from './watch-service.js';
export type { ConnectSource, StreamRelayOptions, StreamStats, TagSource } from './stream-relay.js';
