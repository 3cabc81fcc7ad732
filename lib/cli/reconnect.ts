/**
 * Coming back after a lost connection: a bounded back-off, said on screen at every step, that
 * gives up on a final answer. A refusal (not allowed, revoked, a look-alike name), a changed
 * server key and the server's own `bye` are final; a crash, a kill or a network failure is not.
 * @module
 */
import { ServerKeyChangedError, ServerRefusedError } from "../errors.ts";
import { ErrorCode } from "../protocol/messages.ts";

/** Delays between attempts, in seconds: quick at first, then every 30 s. */
export const BACKOFF_SECONDS: readonly number[] = [1, 2, 4, 8, 15, 30];
/** Attempts before giving up (about ten minutes in all). */
export const MAX_ATTEMPTS = 24;

/**
 * The wait before attempt `n` (1-based), in milliseconds.
 *
 * @example
 * ```ts
 * import { backoffMs } from "./reconnect.ts";
 * [1, 2, 3, 6, 7, 20].map(backoffMs); // [1000, 2000, 4000, 30000, 30000, 30000]
 * ```
 */
export function backoffMs(attempt: number): number {
  return 1000 * BACKOFF_SECONDS[Math.min(attempt, BACKOFF_SECONDS.length) - 1];
}

/** Whether a failed join is an answer to accept (stop trying) rather than a failure to retry. */
export function isFinal(error: unknown): boolean {
  if (error instanceof ServerKeyChangedError) return true;
  if (!(error instanceof ServerRefusedError)) return false;
  const final: string[] = [ErrorCode.notAllowed, ErrorCode.revoked, ErrorCode.nameConfusable];
  return final.includes(error.code);
}

/** What reconnecting needs from the command. */
export interface Reconnector<T> {
  /** One attempt to join again (throws as joinServer does). */
  join(): Promise<T>;
  /** Tells the person what is happening (one line). */
  say(line: string): void;
  /** Resolves when the person asked to leave (Ctrl-C): the wait ends at once. */
  stopped: Promise<void>;
}

/** How reconnecting ended. */
export type Reconnected<T> =
  | { kind: "joined"; session: T }
  | { kind: "final"; error: unknown } // a refusal or a changed key: report it and stop
  | { kind: "stopped" } // the person left
  | { kind: "gave-up"; reason: string };

/** Tries to join again with back-off until it works, a final answer comes, or the person leaves. */
export async function reconnect<T>(
  lost: string,
  r: Reconnector<T>,
  maxAttempts = MAX_ATTEMPTS,
): Promise<Reconnected<T>> {
  let last = lost;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const wait = backoffMs(attempt);
    r.say(
      `connection lost (${last}); reconnecting in ${wait / 1000} s ` +
        `(attempt ${attempt} of ${maxAttempts}; Ctrl-C leaves)`,
    );
    let timer: ReturnType<typeof setTimeout> | undefined;
    const waited = await Promise.race([
      new Promise<"waited">((resolve) => timer = setTimeout(() => resolve("waited"), wait)),
      r.stopped.then(() => "stopped" as const),
    ]);
    clearTimeout(timer);
    if (waited === "stopped") return { kind: "stopped" };
    try {
      return { kind: "joined", session: await r.join() };
    } catch (error) {
      if (isFinal(error)) return { kind: "final", error };
      last = (error as Error).message;
    }
  }
  return { kind: "gave-up", reason: last };
}
