// Types of what the test setup imports from build.mjs.
export declare function buildBridge(): boolean;
export declare function buildWeb(): boolean;
