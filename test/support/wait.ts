/**
 * Poll `probe` until it returns a truthy value; fail with `what` and the last value after
 * `timeoutMs`, plus what `explain` says about the state of things then (which servers, which jobs).
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T> | T,
  timeoutMs = 20_000,
  intervalMs = 50,
  explain?: () => Promise<string>,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) {
      const why = explain ? await explain().catch((error: unknown) => `(explaining failed: ${String(error)})`) : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})${why ? `\n${why}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
