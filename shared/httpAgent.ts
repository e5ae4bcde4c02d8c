/*
 * The keep-alive agent npm's fetch stack picks for a URL (@npmcli/agent's getAgent with the
 * options make-fetch-happen would give it, so the same cached agent, proxy rules and TLS checks),
 * told its protocol. agent-base otherwise works the protocol out on every request by capturing
 * and formatting a stack trace (its `protocol` and `defaultPort` getters, which node's
 * http.ClientRequest reads): about 9 % of a check sweep's worker CPU (README "Benchmarks").
 */
import { getAgent, type Agent } from '@npmcli/agent';

/** The agent for requests to `url`'s origin, with a socket idle timeout of `timeoutMs`. */
export function fetchAgent(url: URL, timeoutMs: number): Agent {
  const agent = getAgent(url.href, {
    timeout: timeoutMs,
    // What make-fetch-happen passes when no strictSSL is given.
    rejectUnauthorized: process.env.NODE_TLS_REJECT_UNAUTHORIZED !== '0',
  });
  agent.protocol = url.protocol;
  return agent;
}
