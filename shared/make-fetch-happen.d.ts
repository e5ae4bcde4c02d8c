/*
 * The part of make-fetch-happen (npm's fetch, CommonJS, no bundled types) that shared/registry.ts
 * uses. @types/make-fetch-happen pulls the DOM lib into every file, so it is not used.
 */
declare module 'make-fetch-happen' {
  import type { Readable } from 'node:stream';

  export interface FetchOptions {
    /** The http(s) agent to use instead of the one make-fetch-happen would look up. */
    agent?: import('node:http').Agent;
    method?: string;
    headers?: Record<string, string>;
    /** 'manual' answers a 3xx as it is, so every hop can be checked before it is followed. */
    redirect?: 'follow' | 'manual' | 'error';
    /** Socket idle timeout (ms), and the wait for the response headers. */
    timeout?: number;
    signal?: AbortSignal;
    retry?: false | { retries: number };
  }

  export interface FetchResponse {
    status: number;
    statusText: string;
    url: string;
    headers: { get(name: string): string | null };
    /** The body, gzip undone. */
    body: Readable;
  }

  function fetch(url: string, options?: FetchOptions): Promise<FetchResponse>;
  export default fetch;
}
