/**
 * What a client shows of file transfers: offers with a short number to `/accept` or
 * `/decline`, a progress bar (bytes, rate, ETA) on the status line at a terminal, a line now
 * and then elsewhere, JSON events (progress at most once a second) with --json, and how each
 * transfer ended.
 * @module
 */
import type { FileEvents, TransferEnd, TransferInfo } from "../chat/file_transfer.ts";
import { FileEndCode, type FileOffer } from "../protocol/file_messages.ts";
import { clip, sanitize } from "../chat/untrusted.ts";
import type { JsonEvent } from "./json_events.ts";

/** Where the view writes. */
export interface FileOutput {
  /** A line about the chat (stderr). */
  info(text: string): void;
  /** The status line at a terminal (absent elsewhere); undefined clears it. */
  status?(text: string | undefined): void;
  /** A JSON event (with --json). */
  emit?(event: JsonEvent): void;
}

/** How often progress is told: JSON events at most once a second, plain lines every 5 s. */
const JSON_PROGRESS_MS = 1000;
const LINE_PROGRESS_MS = 5000;
/** How often the status line is redrawn at most. */
const STATUS_MS = 200;

/** How much of a file's name the status line shows (the bar comes first). */
const STATUS_NAME_CHARACTERS = 24;
/** How much of a file's name other lines show: a peer chooses it, up to 1024 bytes. */
const NAME_CHARACTERS = 120;

/** An offered file's name as shown: neutralised and cut (it is the peer's text). */
function shownName(name: string): string {
  return clip(sanitize(name), NAME_CHARACTERS);
}

/** `n` bytes for people, in SI units (MB = 10^6 bytes): `512 B`, `12.3 MB`. */
export function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n, unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** Seconds as `m:ss` or `h:mm:ss`. */
function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return hh > 0 ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
}

/**
 * One transfer's progress: a bar, the share, the bytes, the rate since it started and the time
 * left at that rate.
 *
 * @example
 * ```ts
 * import { progressText } from "./file_view.ts";
 * progressText({ done: 50_000_000, size: 100_000_000, startedAt: 0 }, 5);
 * // "[##########----------]  50% 50.0 MB of 100 MB, 10.0 MB/s, 0:05 left"
 * ```
 */
export function progressText(
  transfer: Pick<TransferInfo, "done" | "size" | "startedAt">,
  elapsedSeconds: number,
): string {
  const { done, size } = transfer;
  const share = size === 0 ? 1 : done / size;
  const filled = Math.round(share * 20);
  const bar = `[${"#".repeat(filled)}${"-".repeat(20 - filled)}]`;
  const rate = elapsedSeconds > 0 ? (done - transfer.startedAt) / elapsedSeconds : 0;
  const left = rate > 0 ? `, ${formatDuration((size - done) / rate)} left` : "";
  const percent = `${Math.floor(share * 100)}%`.padStart(4);
  return `${bar} ${percent} ${formatBytes(done)} of ${formatBytes(size)}, ` +
    `${formatBytes(Math.round(rate))}/s${left}`;
}

/** What the view keeps of a transfer. */
interface Shown {
  info: TransferInfo;
  number: number;
  /** Accepted: its bar is shown (from 0 %). */
  running: boolean;
  began: number;
  lastJson: number;
  lastLine: number;
}

/** The transfers of one client, as its person or script sees them. */
export class FileView {
  readonly #output: FileOutput;
  readonly #now: () => number;
  readonly #shown = new Map<string, Shown>();
  /** Offer numbers: `/accept 2` (numbers are never reused in a run). */
  readonly #numbers = new Map<number, string>();
  #next = 1;
  // performance.now() counts from the process's start: a 0 here held back the first event of
  // a process younger than the interval (a fast transfer then had no progress at all)
  #lastStatus = -Infinity;
  #statusTimer: ReturnType<typeof setTimeout> | undefined;
  /** Told of each offer, after it is shown (`listen --accept-files` accepts here). */
  onOffer: ((offer: FileOffer) => void) | undefined;

  /** `now`: the clock (ms), performance.now() unless a test gives its own. */
  constructor(output: FileOutput, now: () => number = () => performance.now()) {
    this.#output = output;
    this.#now = now;
  }

  /** The transfer id an `/accept` or `/decline` argument means: its number or its id. */
  idOf(reference: string): string | undefined {
    const number = /^#?(\d{1,9})$/.exec(reference);
    if (number) return this.#numbers.get(Number(number[1]));
    return /^[0-9a-f]{16}$/.test(reference) ? reference : undefined;
  }

  /** One line about a transfer, for `/files`. */
  describe(info: TransferInfo): string {
    const shown = this.#track(info);
    const arrow = info.direction === "in" ? `from ${info.peer}` : `to ${info.peer}`;
    const head = `${shown.number}: ${shownName(info.name)} (${formatBytes(info.size)}) ${arrow}`;
    if (info.direction === "in" && !shown.running) {
      return `${head}: offered; /accept ${shown.number} or /decline ${shown.number}`;
    }
    const elapsed = (this.#now() - shown.began) / 1000;
    return `${head}: ${progressText(info, elapsed)}`;
  }

  /** The events a FileTransfers reports to. */
  events(): FileEvents {
    return {
      offered: (offer, info) => this.#offered(offer, info),
      started: (info) => this.#started(info),
      progress: (info) => this.#progress(info),
      ended: (info, end) => this.#ended(info, end),
    };
  }

  /** Shows an offer we made (the receiver has it now). */
  offered(info: TransferInfo): void {
    this.#track(info);
    if (this.#output.emit) return;
    this.#output.info(
      `offered ${shownName(info.name)} (${
        formatBytes(info.size)
      }) to ${info.peer}; waiting for them ` +
        "to accept",
    );
  }

  #track(info: TransferInfo): Shown {
    let shown = this.#shown.get(info.id);
    if (!shown) {
      const number = this.#next++;
      this.#numbers.set(number, info.id);
      shown = {
        info,
        number,
        running: false,
        began: this.#now(),
        lastJson: -Infinity,
        lastLine: -Infinity,
      };
      this.#shown.set(info.id, shown);
    }
    return shown;
  }

  #offered(offer: FileOffer, info: TransferInfo): void {
    const shown = this.#track(info);
    const emit = this.#output.emit;
    if (emit) {
      emit({
        event: "file-offer",
        id: offer.id,
        from: offer.from,
        name: offer.name,
        size: offer.size,
        sha256: offer.sha256,
      });
    } else {
      const minutes = Math.round(offer.expires_ms / 60_000);
      this.#output.info(
        `${offer.from} offers ${shownName(offer.name)} (${formatBytes(offer.size)}): ` +
          `/accept ${shown.number} or /decline ${shown.number} (the offer expires in ` +
          `${minutes} min)`,
      );
    }
    this.onOffer?.(offer);
  }

  #started(info: TransferInfo): void {
    const shown = this.#track(info);
    shown.began = this.#now();
    shown.running = true;
    if (this.#output.emit) return;
    if (this.#output.status) this.#drawStatus(true);
    const what = info.direction === "in"
      ? `receiving ${shownName(info.name)} from`
      : `sending ${shownName(info.name)} to`;
    const resumed = info.startedAt > 0 ? `, resuming at ${formatBytes(info.startedAt)}` : "";
    this.#output.info(`${what} ${info.peer} (${formatBytes(info.size)}${resumed})`);
  }

  #progress(info: TransferInfo): void {
    const shown = this.#shown.get(info.id);
    if (!shown) return;
    const now = this.#now();
    const { emit, status } = this.#output;
    if (emit) {
      if (now - shown.lastJson < JSON_PROGRESS_MS) return;
      shown.lastJson = now;
      return emit({
        event: "file-progress",
        id: info.id,
        direction: info.direction,
        peer: info.peer,
        name: info.name,
        bytes: info.done,
        size: info.size,
      });
    }
    if (status) return this.#drawStatus();
    if (now - shown.lastLine < LINE_PROGRESS_MS) return;
    shown.lastLine = now;
    this.#output.info(`${shownName(info.name)}: ${progressText(info, (now - shown.began) / 1000)}`);
  }

  /**
   * Redraws the status line: every running transfer's bar, at most every STATUS_MS (`now`: at
   * once, when a transfer starts or ends).
   */
  #drawStatus(now = false): void {
    const time = this.#now();
    if (!now && time - this.#lastStatus < STATUS_MS) {
      this.#statusTimer ??= setTimeout(() => {
        this.#statusTimer = undefined;
        this.#drawStatus();
      }, STATUS_MS);
      return;
    }
    this.#lastStatus = time;
    const running = [...this.#shown.values()].filter((t) => t.running);
    const text = running.map((t) => {
      const arrow = t.info.direction === "in" ? "<-" : "->";
      // the bar first, the name last and short: several transfers share one line
      const name = clip(sanitize(t.info.name), STATUS_NAME_CHARACTERS);
      return `${arrow} ${t.info.peer} ${progressText(t.info, (time - t.began) / 1000)} ${name}`;
    }).join(" | ");
    this.#output.status?.(text || undefined);
  }

  #ended(info: TransferInfo, end: TransferEnd): void {
    const shown = this.#shown.get(info.id);
    this.#shown.delete(info.id);
    if (this.#output.status) this.#drawStatus(true);
    const seconds = shown ? (this.#now() - shown.began) / 1000 : 0;
    const emit = this.#output.emit;
    if (emit) return emit(endEvent(info, end));
    const name = shownName(info.name);
    if (end.code === FileEndCode.done) {
      const rate = seconds > 0
        ? `, ${formatBytes(Math.round((info.size - info.startedAt) / seconds))}/s`
        : "";
      return this.#output.info(
        info.direction === "in"
          ? `received ${name} from ${info.peer}: ${sanitize(end.path ?? "")} (${
            formatBytes(info.size)
          }${rate}, SHA-256 verified)`
          : `${info.peer} received ${name} (${formatBytes(info.size)}${rate}, SHA-256 verified)`,
      );
    }
    this.#output.info(
      `${info.direction === "in" ? "receiving" : "sending"} ${name} ended: ${
        clip(sanitize(end.message))
      } [${end.code}]`,
    );
  }
}

/** The JSON event of a transfer's end. */
export function endEvent(info: TransferInfo, end: TransferEnd): JsonEvent {
  if (end.code === FileEndCode.done) {
    return info.direction === "in"
      ? {
        event: "file-received",
        id: info.id,
        from: info.peer,
        name: info.name,
        path: end.path ?? "",
        bytes: info.size,
        resumed_at: info.startedAt,
      }
      : {
        event: "file-sent",
        id: info.id,
        to: info.peer,
        name: info.name,
        bytes: info.size,
        resumed_at: info.startedAt,
      };
  }
  return {
    event: "file-ended",
    id: info.id,
    direction: info.direction,
    peer: info.peer,
    name: info.name,
    code: end.code,
    message: end.message,
    by: end.by,
  };
}
