/*
 * Exit codes (README "CLI"): 0 ok, 1 failure, 2 usage, 78 configuration error (EX_CONFIG).
 */
import { ConfigurationError, MCPError, ValidationError } from '../shared/errors.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, config: 78 } as const;

export class UsageError extends MCPError {
  constructor(message: string, hint?: string) {
    super('EUSAGE', message, { hint });
  }
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof ConfigurationError) return EXIT.config;
  if (error instanceof UsageError || error instanceof ValidationError) return EXIT.usage;
  return EXIT.failure;
}

/** One line on stderr for people: "mcp-updater: <CODE>: message: hint". */
export function reportError(error: unknown): void {
  const text = error instanceof MCPError ? `${error.code}: ${error.toString()}` : error instanceof Error ? error.message : String(error);
  process.stderr.write(`mcp-updater: ${text}\n`);
}
