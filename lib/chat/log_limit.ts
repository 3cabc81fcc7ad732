/**
 * Keeps a log readable under attack: events of one kind beyond a few per window are counted
 * instead of reported, and the count is reported when the window ends (a `suppressed` event,
 * worded `… and 1,998 more "dropped" lines in the last 10 s`).
 * @module
 */
import type { ServerEvent } from "./events.ts";

/** The window over which events of one kind are limited. */
export const LOG_WINDOW_MS = 10_000;
/** Events of one kind reported in full per window. */
export const LOG_LINES_PER_WINDOW = 5;

interface Window {
  startedAt: number;
  reported: number;
  suppressed: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** A rate limit on reported events, per kind. `report` is where the events that pass go. */
export class LogLimiter {
  readonly #report: (event: ServerEvent) => void;
  readonly #windowMs: number;
  readonly #perWindow: number;
  readonly #windows = new Map<string, Window>();

  constructor(
    report: (event: ServerEvent) => void,
    options: { windowMs?: number; perWindow?: number } = {},
  ) {
    this.#report = report;
    this.#windowMs = options.windowMs ?? LOG_WINDOW_MS;
    this.#perWindow = options.perWindow ?? LOG_LINES_PER_WINDOW;
  }

  /** Reports `event` unless its kind has used up its window; then counts it. */
  report(event: ServerEvent): void {
    const kind = event.kind;
    const now = performance.now();
    let window = this.#windows.get(kind);
    if (!window || now - window.startedAt >= this.#windowMs) {
      if (window) this.#flush(kind, window);
      window = { startedAt: now, reported: 0, suppressed: 0 };
      this.#windows.set(kind, window);
    }
    if (window.reported < this.#perWindow) {
      window.reported++;
      return this.#report(event);
    }
    window.suppressed++;
    if (!window.timer) {
      const current = window;
      current.timer = setTimeout(() => {
        this.#flush(kind, current);
        if (this.#windows.get(kind) === current) this.#windows.delete(kind);
      }, Math.max(0, window.startedAt + this.#windowMs - now));
      // a pending summary must not keep a finished process alive
      Deno.unrefTimer(current.timer as unknown as number);
    }
  }

  /** Reports every pending count now (when the server closes). */
  flush(): void {
    for (const [kind, window] of this.#windows) this.#flush(kind, window);
    this.#windows.clear();
  }

  #flush(kind: string, window: Window): void {
    clearTimeout(window.timer);
    window.timer = undefined;
    if (window.suppressed === 0) return;
    const seconds = Math.round(this.#windowMs / 1000);
    this.#report({ kind: "suppressed", of: kind, count: window.suppressed, seconds });
    window.suppressed = 0;
  }
}
