/**
 * Bounded waits: every wait on a peer has a deadline, and no deadline overflows a timer.
 * @module
 */
import { TimeoutError } from "../errors.ts";

/**
 * The longest delay a timer can wait: setTimeout and setInterval take a signed 32-bit delay, and
 * Deno (like Node) runs a longer one after 1 ms instead, so a 25-day wait would end at once.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as a timer delay: at most MAX_TIMER_MS, so a long wait never turns into an instant one. */
export function timerDelay(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}

/**
 * Resolves as `work` does, unless `ms` pass first (a wait longer than MAX_TIMER_MS waits
 * MAX_TIMER_MS, about 24.8 days): then calls `onTimeout` (which should close the
 * resource `work` waits on, so nothing is left pending) and rejects with TimeoutError(`what`).
 */
export function withDeadline<T>(
  work: Promise<T>,
  ms: number,
  what: string,
  onTimeout: () => void,
): Promise<T> {
  if (!Number.isFinite(ms)) return work;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new TimeoutError(what));
    }, timerDelay(ms));
  });
  // The loser of the race must not surface as an unhandled rejection.
  work.catch(() => {});
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
