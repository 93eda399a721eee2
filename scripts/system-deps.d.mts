// Types of what the e2e tests import from system-deps.mjs.
export declare const PRESENT: string;
export declare const NGINX_MODULES: readonly string[];
export declare const APT_PACKAGES: readonly string[];
export declare function chromiumPath(): string;
export declare function firefoxPath(): string;
export declare function webkitDriverPath(): string;
export declare function miniBrowserPath(): string | undefined;
export declare function findMissing(): string[];
export declare function ensureSystemDeps(options?: { install?: boolean }): number;
