/**
 * Line latency while a file flows: a probe client says numbered lines (`lat SEQ SENT_AT`, the
 * send time being this process's `performance.now()`) at a steady rate, and each receiver hands
 * back the lines as it sees them; a window is the lines said between `start()` and `stop()`.
 * @module
 */
import { percentile, Signal } from "../server/harness.ts";

/** Where a probe line was seen. */
export type ProbePath = "listen" | "library";
/** Every path, in report order. */
export const PROBE_PATHS: readonly ProbePath[] = ["listen", "library"];

const PROBE_LINE = /^lat (\d+) (\d+(?:\.\d+)?)$/;

/** The lines said in one window: sequence numbers `first` to `last - 1`. */
export interface ProbeWindow {
  first: number;
  last: number;
}

/** Latencies of some windows on one path, ascending, and the lines that never arrived. */
export interface Latencies {
  ms: number[];
  missing: number;
}

/** Says numbered lines through `say` and records when each path saw them. */
export class LineProbe {
  readonly #say: (text: string) => Promise<void>;
  readonly #seen: Record<ProbePath, Map<number, number>> = {
    listen: new Map(),
    library: new Map(),
  };
  readonly #arrival = new Signal();
  #next = 0;
  #first = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Lines whose say() failed (the probe's own connection broke). */
  failures = 0;

  constructor(say: (text: string) => Promise<void>) {
    this.#say = say;
  }

  /** Starts saying `perSecond` lines a second (the first at once). */
  start(perSecond: number): void {
    if (this.#timer !== undefined) throw new Error("the probe is already running");
    this.#first = this.#next;
    this.#sayNext();
    this.#timer = setInterval(() => this.#sayNext(), 1000 / perSecond);
  }

  #sayNext(): void {
    const seq = this.#next++;
    this.#say(`lat ${seq} ${performance.now().toFixed(3)}`).catch(() => this.failures++);
  }

  /** Stops saying lines; returns the window since `start()`. */
  stop(): ProbeWindow {
    clearInterval(this.#timer);
    this.#timer = undefined;
    return { first: this.#first, last: this.#next };
  }

  /** A line as `path` saw it at `at`; anything but a probe line is ignored. */
  arrived(path: ProbePath, text: string, at = performance.now()): void {
    const match = text.match(PROBE_LINE);
    if (!match) return;
    const seq = Number(match[1]);
    if (!this.#seen[path].has(seq)) this.#seen[path].set(seq, at - Number(match[2]));
    this.#arrival.notify();
  }

  /** Waits (at most `timeoutMs`) until every path has seen every line of `window`. */
  async settle(window: ProbeWindow, timeoutMs: number): Promise<void> {
    const complete = () =>
      PROBE_PATHS.every((path) => {
        for (let seq = window.first; seq < window.last; seq++) {
          if (!this.#seen[path].has(seq)) return false;
        }
        return true;
      });
    await this.#arrival.until(complete, timeoutMs, "the probe lines").catch(() => {});
  }

  /** The latencies on `path` of the lines of `windows`, ascending. */
  latencies(path: ProbePath, windows: ProbeWindow[]): Latencies {
    const ms: number[] = [];
    let missing = 0;
    for (const { first, last } of windows) {
      for (let seq = first; seq < last; seq++) {
        const latency = this.#seen[path].get(seq);
        if (latency === undefined) missing++;
        else ms.push(latency);
      }
    }
    return { ms: ms.sort((a, b) => a - b), missing };
  }
}

/** `p50 / p99 / max` in ms of ascending `ms`. */
export function summary(ms: number[]): { p50: number; p99: number; max: number } {
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), max: ms.at(-1) ?? NaN };
}
