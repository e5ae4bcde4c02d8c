// Types of bin/build.js (plain JavaScript: it runs before anything is compiled).
export declare const PROJECT_ROOT: string;
export declare class BuildError extends Error {
  readonly code: 'EBUILD';
}
export interface FileFingerprint {
  size: number;
  mtimeMs: number;
  sha1: string;
}
export declare function buildInputs(root?: string): string[];
export declare function fingerprint(root?: string): Promise<Record<string, FileFingerprint>>;
export declare function staleReason(root?: string): Promise<string | undefined>;
export declare function build(root?: string): Promise<void>;
export declare function ensureFreshBuild(root?: string): Promise<void>;
