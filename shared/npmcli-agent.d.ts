/*
 * The part of @npmcli/agent (the keep-alive agent of npm's fetch stack, CommonJS, no bundled
 * types) that shared/httpAgent.ts uses.
 */
declare module '@npmcli/agent' {
  import type { Agent as HttpAgent } from 'node:http';

  export interface Agent extends HttpAgent {
    /** "http:" or "https:"; agent-base derives it from a stack trace when it is not set. */
    protocol: string;
    /** 443 for https:, else 80, unless set. */
    readonly defaultPort: number;
  }

  export function getAgent(url: string, options?: { timeout?: number; rejectUnauthorized?: boolean }): Agent;
}
