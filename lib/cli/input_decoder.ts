/**
 * Raw terminal input to key events: the bytes a terminal in raw mode sends (UTF-8 text, control
 * characters, escape sequences, bracketed pastes) in whatever pieces `read()` returns them,
 * turned into events. Pure: no I/O, no timers. Linear in the input: a run of typed text is one
 * event, and a bracketed paste of any size is one event, however many reads it took.
 * @module
 */

/** A key the line editor acts on. */
export type KeyName =
  | "enter"
  | "backspace"
  | "delete"
  | "left"
  | "right"
  | "up"
  | "down"
  | "home"
  | "end"
  | "word-left"
  | "word-right"
  | "word-backspace"
  | "ctrl-a"
  | "ctrl-c"
  | "ctrl-d"
  | "ctrl-e"
  | "ctrl-k"
  | "ctrl-l"
  | "ctrl-u"
  | "ctrl-w"
  | "ctrl-z"
  | "escape";

/** What the user did: typed text, pasted text, or pressed a key. */
export type KeyEvent =
  | { kind: "text"; text: string }
  | { kind: "paste"; text: string }
  | { kind: "key"; name: KeyName };

/** Bracketed paste (xterm): the terminal wraps pasted text in these when ESC[?2004h is on. */
export const PASTE_START = "\x1b[200~";
/** The end of a bracketed paste. */
export const PASTE_END = "\x1b[201~";

const CONTROL_KEYS: Record<string, KeyName> = {
  "\r": "enter",
  "\n": "enter",
  "\x7f": "backspace",
  "\b": "word-backspace", // Ctrl-Backspace in most terminals, Ctrl-H in others
  "\x01": "ctrl-a",
  "\x03": "ctrl-c",
  "\x04": "ctrl-d",
  "\x05": "ctrl-e",
  "\x02": "left", // Ctrl-B
  "\x06": "right", // Ctrl-F
  "\x0b": "ctrl-k",
  "\x0c": "ctrl-l",
  "\x0e": "down", // Ctrl-N
  "\x10": "up", // Ctrl-P
  "\x15": "ctrl-u",
  "\x17": "ctrl-w",
  "\x1a": "ctrl-z",
};

/** CSI and SS3 final characters, and `~` sequences by their number. */
const FINAL_KEYS: Record<string, KeyName> = {
  A: "up",
  B: "down",
  C: "right",
  D: "left",
  H: "home",
  F: "end",
};
const TILDE_KEYS: Record<string, KeyName> = {
  "1": "home",
  "7": "home",
  "3": "delete",
  "4": "end",
  "8": "end",
};

// deno-lint-ignore no-control-regex -- the text a terminal sends between control characters
const TEXT_RUN = /[^\x00-\x1f\x7f\x80-\x9f]+/y;

/**
 * Turns raw input into key events. Feed it every chunk `read()` returns; a UTF-8 character or an
 * escape sequence cut between two chunks is completed by the next. A lone ESC at the end of a
 * chunk waits for more: call `flush()` when no more input came for a moment (it was the Escape
 * key).
 *
 * @example
 * ```ts
 * import { InputDecoder } from "./input_decoder.ts";
 * const decoder = new InputDecoder();
 * decoder.push(new TextEncoder().encode("hi\x1b[")); // [{ kind: "text", text: "hi" }]
 * decoder.push(new TextEncoder().encode("D")); // [{ kind: "key", name: "left" }]
 * ```
 */
export class InputDecoder {
  readonly #utf8 = new TextDecoder("utf-8", { fatal: false });
  /** Decoded text not yet turned into events (an unfinished escape sequence). */
  #pending = "";
  /** Pieces of a bracketed paste in progress, or undefined outside one. */
  #paste: string[] | undefined;

  /** The events in `bytes`, given everything pushed before. */
  push(bytes: Uint8Array): KeyEvent[] {
    return this.#decode(this.#utf8.decode(bytes, { stream: true }));
  }

  /** Ends a wait for more input: a pending lone ESC is the Escape key. */
  flush(): KeyEvent[] {
    if (this.#paste || this.#pending !== "\x1b") return [];
    this.#pending = "";
    return [{ kind: "key", name: "escape" }];
  }

  /** Whether a paste or an escape sequence is waiting for more input. */
  get waiting(): boolean {
    return this.#paste !== undefined || this.#pending !== "";
  }

  #decode(chunk: string): KeyEvent[] {
    const text = this.#pending + chunk;
    this.#pending = "";
    const events: KeyEvent[] = [];
    let at = 0;
    while (at < text.length) {
      if (this.#paste) {
        at = this.#pasteFrom(text, at, events);
        continue;
      }
      TEXT_RUN.lastIndex = at;
      const run = TEXT_RUN.exec(text);
      if (run) {
        pushText(events, run[0]);
        at += run[0].length;
        continue;
      }
      if (text[at] !== "\x1b") {
        const name = CONTROL_KEYS[text[at]];
        if (name) events.push({ kind: "key", name });
        // \r\n from a terminal that sends both is one Enter
        at += text[at] === "\r" && text[at + 1] === "\n" ? 2 : 1;
        continue;
      }
      const length = escapeLength(text, at);
      if (length === 0) { // cut short: wait for the rest
        this.#pending = text.slice(at);
        break;
      }
      const sequence = text.slice(at, at + length);
      at += length;
      if (sequence === PASTE_START) this.#paste = [];
      else {
        const name = escapeKey(sequence);
        if (name) events.push({ kind: "key", name });
      }
    }
    return events;
  }

  /** Takes paste content from `text` at `at`; returns where to go on. */
  #pasteFrom(text: string, at: number, events: KeyEvent[]): number {
    const end = text.indexOf(PASTE_END, at);
    if (end >= 0) {
      this.#paste!.push(text.slice(at, end));
      events.push({ kind: "paste", text: normalizePaste(this.#paste!.join("")) });
      this.#paste = undefined;
      return end + PASTE_END.length;
    }
    // Keep back what could be the start of the end marker, cut between two reads.
    let keep = 0;
    for (let n = Math.min(PASTE_END.length - 1, text.length - at); n > 0; n--) {
      if (text.endsWith(PASTE_END.slice(0, n))) {
        keep = n;
        break;
      }
    }
    this.#paste!.push(text.slice(at, text.length - keep));
    this.#pending = text.slice(text.length - keep);
    return text.length;
  }
}

/** Appends typed text, merging it with a text event just before. */
function pushText(events: KeyEvent[], text: string): void {
  const last = events[events.length - 1];
  if (last?.kind === "text") last.text += text;
  else events.push({ kind: "text", text });
}

/**
 * The length of the escape sequence at `text[at]` (an ESC), or 0 if the text ends inside it.
 * CSI: ESC [ parameters intermediates final (ECMA-48 §5.4); SS3: ESC O final; else ESC and one
 * character (Alt and a key).
 */
function escapeLength(text: string, at: number): number {
  const next = text[at + 1];
  if (next === undefined) return 0;
  if (next === "O") return text.length > at + 2 ? 3 : 0;
  if (next !== "[") return text.codePointAt(at + 1)! > 0xffff ? 3 : 2; // Alt and a key
  for (let i = at + 2; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0x40 && code <= 0x7e) return i - at + 1;
    if (code < 0x20 || code > 0x3f) return i - at; // not a CSI byte: end it here
  }
  return 0;
}

/** The key an escape sequence stands for, if the editor knows it. */
function escapeKey(sequence: string): KeyName | undefined {
  if (sequence === "\x1b\x7f") return "word-backspace"; // Alt-Backspace
  if (sequence === "\x1bb") return "word-left"; // Alt-B
  if (sequence === "\x1bf") return "word-right"; // Alt-F
  if (sequence === "\x1b\x1b") return "escape";
  const final = sequence[sequence.length - 1];
  const params = sequence.slice(2, -1);
  if (sequence[1] === "O") return FINAL_KEYS[final];
  if (sequence[1] !== "[") return undefined;
  if (final === "~") return TILDE_KEYS[params.split(";")[0]];
  const key = FINAL_KEYS[final];
  // ESC[1;5C is Ctrl-Right, ESC[1;3C Alt-Right: move by words
  if ((final === "C" || final === "D") && /^1;[35]$/.test(params)) {
    return final === "C" ? "word-right" : "word-left";
  }
  return key;
}

/** Pasted text with every line break as `\n`. */
function normalizePaste(text: string): string {
  return text.replace(/\r\n?/g, "\n");
}
