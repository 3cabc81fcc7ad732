/**
 * Keeps a log readable under attack: lines of one kind beyond a few per window are counted
 * instead of written, and the count is written when the window ends
 * (`… and 1,998 more "dropped" lines in the last 10 s`).
 * @module
 */

/** The window over which lines of one kind are limited. */
export const LOG_WINDOW_MS = 10_000;
/** Lines of one kind written in full per window. */
export const LOG_LINES_PER_WINDOW = 5;

interface Window {
  startedAt: number;
  written: number;
  suppressed: number;
  timer?: ReturnType<typeof setTimeout>;
}

/** A rate limit on log lines, per kind. `write` is where lines that pass go. */
export class LogLimiter {
  readonly #write: (line: string) => void;
  readonly #windowMs: number;
  readonly #perWindow: number;
  readonly #windows = new Map<string, Window>();

  constructor(
    write: (line: string) => void,
    options: { windowMs?: number; perWindow?: number } = {},
  ) {
    this.#write = write;
    this.#windowMs = options.windowMs ?? LOG_WINDOW_MS;
    this.#perWindow = options.perWindow ?? LOG_LINES_PER_WINDOW;
  }

  /** Writes `line` unless `kind` has used up its window; then counts it. */
  line(kind: string, line: string): void {
    const now = performance.now();
    let window = this.#windows.get(kind);
    if (!window || now - window.startedAt >= this.#windowMs) {
      if (window) this.#flush(kind, window);
      window = { startedAt: now, written: 0, suppressed: 0 };
      this.#windows.set(kind, window);
    }
    if (window.written < this.#perWindow) {
      window.written++;
      this.#write(line);
      return;
    }
    window.suppressed++;
    if (!window.timer) {
      const ends = window.startedAt + this.#windowMs - now;
      const current = window;
      current.timer = setTimeout(() => {
        this.#flush(kind, current);
        if (this.#windows.get(kind) === current) this.#windows.delete(kind);
      }, Math.max(0, ends));
      // a pending summary must not keep a finished process alive
      Deno.unrefTimer(current.timer as unknown as number);
    }
  }

  /** Writes every pending count now (when the server closes). */
  flush(): void {
    for (const [kind, window] of this.#windows) this.#flush(kind, window);
    this.#windows.clear();
  }

  #flush(kind: string, window: Window): void {
    clearTimeout(window.timer);
    window.timer = undefined;
    if (window.suppressed === 0) return;
    const seconds = Math.round(this.#windowMs / 1000);
    this.#write(
      `… and ${window.suppressed.toLocaleString("en-US")} more "${kind}" line` +
        `${window.suppressed === 1 ? "" : "s"} in the last ${seconds} s`,
    );
    window.suppressed = 0;
  }
}
