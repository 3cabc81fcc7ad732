/**
 * Rate limits: the token bucket that paces one member's lines, and the per-source-address
 * buckets that keep one flooding address from crowding out everyone else's handshakes.
 * @module
 */

/**
 * A token bucket: `take()` returns 0 when a line may go now, else the milliseconds to wait.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./rate.ts";
 * const bucket = new TokenBucket(1, 2, 0); // 1 per second, burst of 2
 * bucket.take(0); // 0
 * bucket.take(0); // 0
 * bucket.take(0); // 1000: the third must wait a second
 * ```
 */
export class TokenBucket {
  #tokens: number;
  #updated: number;

  constructor(readonly ratePerSecond: number, readonly burst: number, now = performance.now()) {
    this.#tokens = burst;
    this.#updated = now;
  }

  /** Takes one token (possibly going into debt) and says how long the caller must wait. */
  take(now = performance.now()): number {
    this.#refill(now);
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.ratePerSecond) * 1000;
  }

  /** Takes one token if there is one (never going into debt); says whether it did. */
  tryTake(now = performance.now()): boolean {
    this.#refill(now);
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(
      this.burst,
      this.#tokens + ((now - this.#updated) / 1000) * this.ratePerSecond,
    );
    this.#updated = now;
  }
}

/**
 * The source a connection is counted against: an IPv4 address, or the /64 prefix of an IPv6
 * address (one host usually holds a whole /64). An IPv4-mapped IPv6 address counts as its IPv4.
 *
 * @example
 * ```ts
 * import { sourceOf } from "./rate.ts";
 * sourceOf("192.0.2.7"); // "192.0.2.7"
 * sourceOf("::ffff:192.0.2.7"); // "192.0.2.7"
 * sourceOf("2001:db8:1:2:3:4:5:6"); // "2001:db8:1:2::/64"
 * ```
 */
export function sourceOf(hostname: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(hostname);
  if (mapped) return mapped[1];
  if (!hostname.includes(":")) return hostname;
  const [head, tail = ""] = hostname.toLowerCase().split("::");
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  const groups = hostname.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  const prefix = groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, ""));
  return `${prefix.join(":")}::/64`;
}

/** The most sources remembered at once; past it the longest-idle one is forgotten. */
export const MAX_TRACKED_SOURCES = 10_000;

/**
 * One token bucket per source address, for new connections: `allow(hostname)` says whether a
 * connection from there may cost us a handshake now. Memory is bounded: at most
 * MAX_TRACKED_SOURCES are kept, the longest idle forgotten first.
 */
export class SourceRateLimiter {
  readonly #buckets = new Map<string, TokenBucket>();

  constructor(readonly ratePerSecond: number, readonly burst: number) {}

  /** Takes a token from the bucket of `hostname`'s source; false when it has none left. */
  allow(hostname: string, now = performance.now()): boolean {
    const source = sourceOf(hostname);
    let bucket = this.#buckets.get(source);
    if (bucket) this.#buckets.delete(source); // re-inserted below: the Map keeps recency order
    else {
      this.#forgetOldest();
      bucket = new TokenBucket(this.ratePerSecond, this.burst, now);
    }
    this.#buckets.set(source, bucket);
    return bucket.tryTake(now);
  }

  /** How many sources are remembered (for tests). */
  get tracked(): number {
    return this.#buckets.size;
  }

  /** At the cap, forgets the longest-idle source (the first in the Map's recency order). */
  #forgetOldest(): void {
    if (this.#buckets.size < MAX_TRACKED_SOURCES) return;
    this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
