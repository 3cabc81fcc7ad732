/**
 * The terminal: the one module that reads the user's lines and draws the chat.
 *
 * Interactive (stdin and stdout are terminals): a prompt that incoming lines never clobber (the
 * line being typed is redrawn under them), coloured senders, times, and Ctrl-C / Ctrl-D handled.
 * Otherwise: plain input lines, and each received message as one `NAME: text` line (or one JSON
 * object with --json) on stdout, with everything else on stderr; scripts and tests rely on it.
 * @module
 */
import * as readline from "node:readline";
import process from "node:process";
import { safeJson, sanitize } from "../chat/untrusted.ts";
import { UserError } from "./output.ts";

/** How to draw. */
export interface TerminalOptions {
  /** Prompt, colours and redrawing; false for pipes and files. */
  interactive: boolean;
  /** Received messages as JSON lines (non-interactive output). */
  json: boolean;
  /** ANSI colours on stdout (interactive only; off with NO_COLOR). */
  color: boolean;
  /** ANSI colours on stderr (as `color`, and only if stderr is a terminal too). */
  colorErrors: boolean;
}

/** What the terminal reports. */
export interface TerminalInput {
  /** A line the user entered (without its line break). */
  line(text: string): void;
  /** End of input (Ctrl-D, or the end of a pipe). */
  end(): void;
  /** Ctrl-C at the prompt (interactive only; otherwise the process gets SIGINT). */
  interrupt(): void;
}

/** Decides the options from the environment: interactive only when both ends are terminals. */
export function detectTerminal(json: boolean): TerminalOptions {
  const interactive = !json && Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  const noColor = (Deno.env.get("NO_COLOR") ?? "") !== "";
  const color = interactive && !noColor;
  return { interactive, json, color, colorErrors: color && Deno.stderr.isTerminal() };
}

const PALETTE = [31, 32, 33, 34, 35, 36, 91, 92, 93, 94, 95, 96];

/** The colour of a name: stable for the name, so a person keeps theirs. */
export function colorOf(name: string): number {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619);
  return PALETTE[(hash >>> 0) % PALETTE.length];
}

function paint(on: boolean, code: number | string, text: string): string {
  return on ? `\x1b[${code}m${text}\x1b[0m` : text;
}

function clock(at: Date): string {
  return `${String(at.getHours()).padStart(2, "0")}:${String(at.getMinutes()).padStart(2, "0")}`;
}

/** The chat on the terminal. */
export class Terminal {
  readonly options: TerminalOptions;
  readonly #rl: readline.Interface;
  readonly #promptWidth: number;
  #closed = false;

  constructor(options: TerminalOptions, input: TerminalInput, prompt = "> ") {
    this.options = options;
    this.#promptWidth = prompt.length;
    this.#rl = readline.createInterface({
      input: process.stdin,
      output: options.interactive ? process.stdout : undefined,
      terminal: options.interactive,
      prompt: options.interactive ? paint(options.color, 2, prompt) : "",
      historySize: options.interactive ? 100 : 0,
    });
    this.#rl.on("line", (text) => {
      input.line(text);
      if (options.interactive && !this.#closed) this.#rl.prompt();
    });
    this.#rl.on("close", () => {
      if (!this.#closed) input.end();
    });
    if (options.interactive) {
      this.#rl.on("SIGINT", () => input.interrupt());
      this.#rl.prompt();
    }
  }

  /** A chat line from `from`: coloured and timed in a terminal, `NAME: text` or JSON otherwise. */
  message(from: string, text: string, at = new Date()): void {
    if (this.options.json) {
      return this.#above(safeJson({ time: at.toISOString(), from, text }), Deno.stdout);
    }
    const safeFrom = sanitize(from), safeText = sanitize(text);
    if (!this.options.interactive) return this.#above(`${safeFrom}: ${safeText}`, Deno.stdout);
    const { color } = this.options;
    this.#above(
      `${paint(color, 2, clock(at))} ${paint(color, `1;${colorOf(from)}`, safeFrom)}: ${safeText}`,
      Deno.stdout,
    );
  }

  /**
   * Shows a line the user just sent like any other message: at a terminal, the echo that
   * readline left (`> text`) is replaced by `HH:MM name: text`. Nothing elsewhere (a pipe's
   * lines are the user's own data; echoing them to stdout would mix them with received ones).
   */
  sent(name: string, text: string, at = new Date()): void {
    if (!this.options.interactive || this.#closed) return;
    const columns = process.stdout.columns || 80;
    const rows = Math.max(1, Math.ceil((this.#promptWidth + text.length) / columns));
    readline.moveCursor(process.stdout, 0, -rows);
    readline.clearScreenDown(process.stdout);
    this.message(name, text, at);
  }

  /** Something about the chat (who joined, who is here), on stderr; dim and timed in a terminal. */
  info(text: string, at = new Date()): void {
    if (!this.options.interactive) return this.#above(`chat: ${sanitize(text)}`, Deno.stderr);
    const line = `${clock(at)} -- ${sanitize(text)}`;
    this.#above(paint(this.options.colorErrors, 2, line), Deno.stderr);
  }

  /** Something wrong, on stderr as `chat: error:` and `chat: hint:` lines (red in a terminal). */
  error(text: string, hints: string[] = []): void {
    const lines = [
      `chat: error: ${sanitize(text)}`,
      ...hints.map((hint) => `chat: hint: ${sanitize(hint)}`),
    ];
    const painted = lines.map((line) => paint(this.options.colorErrors, 31, line));
    this.#above(painted.join("\n"), Deno.stderr);
  }

  /** Stops reading and gives the terminal back (the prompt line is cleared). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.options.interactive) {
      readline.clearLine(process.stdout, 0);
      readline.cursorTo(process.stdout, 0);
    }
    this.#rl.close();
    // A pipe that has not ended would keep the process alive.
    process.stdin.destroy();
  }

  /** Stops reading input but keeps printing (for `--stay` and a server whose input ended). */
  stopReading(): void {
    process.stdin.pause();
  }

  /**
   * Prints a line; in a terminal above the prompt: clear the input line, print, then redraw the
   * prompt with what was being typed. Writes are synchronous so nothing is lost at exit.
   */
  #above(text: string, stream: typeof Deno.stdout | typeof Deno.stderr): void {
    const redraw = this.options.interactive && !this.#closed;
    if (redraw) {
      readline.clearLine(process.stdout, 0);
      readline.cursorTo(process.stdout, 0);
    }
    writeAllSync(stream, text + "\n");
    if (redraw) this.#rl.prompt(true);
  }
}

const utf8 = new TextEncoder();

function writeAllSync(stream: typeof Deno.stdout | typeof Deno.stderr, text: string): void {
  const bytes = utf8.encode(text);
  for (let offset = 0; offset < bytes.length;) offset += stream.writeSync(bytes.subarray(offset));
}

/**
 * All of stdin as UTF-8 text, read to its end (a pipe or a file, not the chat's lines). More
 * than `maxBytes`, or bytes that are not UTF-8, are a UserError that ends with `consequence`
 * ("nothing was added").
 */
export async function readStdinText(maxBytes: number, consequence: string): Promise<string> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of Deno.stdin.readable) {
    total += chunk.length;
    if (total > maxBytes) {
      throw new UserError(`stdin holds more than ${maxBytes} bytes; ${consequence}`);
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new UserError(`stdin is not UTF-8 text; ${consequence}`);
  }
}
