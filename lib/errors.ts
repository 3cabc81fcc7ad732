/**
 * The domain errors callers branch on. Everything else uses TypeError, RangeError or SyntaxError.
 * @module
 */

/** The peer broke the protocol (bad frame, failed decryption, bad message): end that connection. */
export class ProtocolError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
  }
}

/** A bounded wait ran out; the connection it was waiting on has been closed. */
export class TimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/**
 * Resolves as `work` does, unless `ms` pass first: then calls `onTimeout` (which should close the
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
    }, ms);
  });
  // The loser of the race must not surface as an unhandled rejection.
  work.catch(() => {});
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
