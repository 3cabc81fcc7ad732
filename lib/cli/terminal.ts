/**
 * The terminal: the one module that reads the user's lines and draws the chat.
 *
 * Interactive (stdin and stdout are terminals): stdin in raw mode, read by our own line editor
 * (lib/cli/line_editor.ts, keys from lib/cli/input_decoder.ts), whose input rows sit under the
 * chat: a line that arrives erases exactly the rows the input took, is printed, and the input is
 * drawn again under it. Bracketed paste is on, so pasted text is always text to say; Ctrl-C
 * clears a half-typed line (and leaves on an empty one), Ctrl-D on an empty line ends input,
 * Ctrl-Z suspends with the terminal given back, and a resize redraws.
 * Otherwise: plain input lines, and each received message as one `NAME: text` line (or one JSON
 * object with --json) on stdout, with everything else on stderr; scripts and tests rely on it.
 * @module
 */
import { safeJson, sanitize } from "../chat/untrusted.ts";
import { InputDecoder, type KeyEvent } from "./input_decoder.ts";
import {
  drawInput,
  type DrawnInput,
  type EditAction,
  eraseInput,
  layoutInput,
  LineEditor,
} from "./line_editor.ts";
import { UserError } from "./output.ts";
import { displayWidth, graphemes, graphemeWidth } from "./text_width.ts";

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

/** How a line was entered. */
export interface LineInfo {
  /**
   * Some or all of it was pasted: it is text to say, even if it reads `exit` or starts with `/`
   * (a paste is content, and one stray line in it must not end the chat).
   */
  pasted: boolean;
}

/** What the terminal reports. */
export interface TerminalInput {
  /** A line the user entered (without its line break); a pasted one says so in `info`. */
  line(text: string, info: LineInfo): void;
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

/** Bracketed paste on and off (xterm): pasted text then arrives between ESC[200~ and ESC[201~. */
const BRACKETED_PASTE_ON = "\x1b[?2004h";
const BRACKETED_PASTE_OFF = "\x1b[?2004l";

/** How long a lone ESC waits for the rest of an escape sequence before it is the Escape key. */
const ESCAPE_WAIT_MS = 50;

/** How long Ctrl-Z waits for SIGCONT before it takes the stop as refused (an orphaned job). */
const SUSPEND_FALLBACK_MS = 500;

/** A question asked with `ask()`, waiting for its answer. */
interface Question {
  prompt: string;
  answer: (text: string | null) => void;
  /** The line that was being typed, put back after the answer. */
  draft: string;
}

/** How a chat line is shown. */
export interface MessageStyle {
  /** When it was said (now, unless replayed). */
  at?: Date;
  /** A `/me` line: `* name text`. */
  action?: boolean;
  /** A private line, to us or from us. */
  private?: boolean;
  /** Replayed from the server's history: dimmed, with its original time. */
  replay?: boolean;
  /** A mention of us or a private line: shown bright. */
  highlight?: boolean;
  /** Ring the terminal's bell (interactive only). */
  bell?: boolean;
}

const ERASE_LINE = "\x1b[2K";
const CURSOR_UP = "\x1b[1A";

/** `text` cut to at most `columns` cells (whole graphemes), so it never wraps. */
function fitWidth(text: string, columns: number): string {
  if (displayWidth(text) <= columns) return text;
  let out = "", width = 0;
  for (const grapheme of graphemes(text)) {
    const w = graphemeWidth(grapheme);
    if (width + w > columns - 1) break;
    out += grapheme;
    width += w;
  }
  return out + "…";
}

/** The chat on the terminal. */
export class Terminal {
  readonly options: TerminalOptions;
  readonly #input: TerminalInput;
  readonly #prompt: string;
  readonly #editor = new LineEditor();
  readonly #decoder = new InputDecoder();
  /** The input as drawn on the screen, or undefined when it is not there. */
  #drawn: DrawnInput | undefined;
  /** A line just entered, shown as `> text` unless `sent()` shows it as a message instead. */
  #echo: string | undefined;
  /** A line kept just above the input (transfers' progress), redrawn in place; see status(). */
  #status: string | undefined;
  #statusDrawn = false;
  #questions: Question[] = [];
  #closed = false;
  #reading = true;
  #suspended = false;
  #escapeTimer: ReturnType<typeof setTimeout> | undefined;
  #reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  readonly #onResize = () => this.#redraw();
  readonly #onContinue = () => this.#resume();
  readonly #onUnload = () => this.#restore();

  constructor(options: TerminalOptions, input: TerminalInput, prompt = "> ") {
    this.options = options;
    this.#input = input;
    this.#prompt = prompt;
    if (options.interactive) this.#startInteractive();
    else void this.#readLines();
  }

  /** A chat line from `from`: coloured and timed in a terminal, `NAME: text` or JSON otherwise. */
  message(from: string, text: string, style: MessageStyle = {}): void {
    const at = style.at ?? new Date();
    if (this.options.json) {
      return this.#above(safeJson({ time: at.toISOString(), from, text }), Deno.stdout);
    }
    const safeFrom = sanitize(from), safeText = sanitize(text);
    const plain = style.action
      ? `* ${safeFrom} ${safeText}`
      : style.private
      ? `${safeFrom} (private): ${safeText}`
      : `${safeFrom}: ${safeText}`;
    if (!this.options.interactive) {
      return this.#above(style.replay ? `(replay ${clock(at)}) ${plain}` : plain, Deno.stdout);
    }
    const { color } = this.options;
    const who = paint(color, `1;${colorOf(from)}`, safeFrom);
    const body = style.action
      ? `* ${who} ${safeText}`
      : style.private
      ? `${who} ${paint(color, 35, "(private)")}: ${safeText}`
      : `${who}: ${safeText}`;
    // a mention or a private line is bright (reverse video), a replay dim; the bell rings apart
    const line = `${paint(color, 2, clock(at))} ${style.replay ? paint(color, 2, body) : body}`;
    this.#above(style.highlight ? paint(color, 7, line) : line, Deno.stdout);
    if (style.bell) write("\x07");
  }

  /**
   * Shows a line the user just sent like any other message: at a terminal, `HH:MM name: text`
   * in place of the `> text` echo. Nothing elsewhere (a pipe's lines are the user's own data;
   * echoing them to stdout would mix them with received ones).
   */
  sent(name: string, text: string, style: MessageStyle = {}): void {
    if (!this.options.interactive || this.#closed) return;
    this.#echo = undefined;
    this.message(name, text, style);
  }

  /** Something about the chat (who joined, who is here), on stderr; dim and timed in a terminal. */
  info(text: string, at = new Date()): void {
    if (!this.options.interactive) return this.#above(`chat: ${sanitize(text)}`, Deno.stderr);
    const line = `${clock(at)} -- ${sanitize(text)}`;
    this.#above(paint(this.options.colorErrors, 2, line), Deno.stderr);
  }

  /**
   * Sets the status line (progress bars), drawn in place just above the input and cut to the
   * screen's width; undefined removes it. Only at a terminal: elsewhere it is not shown.
   */
  status(text: string | undefined): void {
    if (!this.options.interactive || this.#closed || text === this.#status) return;
    this.#hide();
    this.#status = text === undefined ? undefined : sanitize(text);
    this.#show();
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

  /**
   * Asks a question and waits for a one-line answer: at a terminal, `question` is the prompt
   * and the line being typed waits; from a pipe, the next line answers. Null on Ctrl-C, Ctrl-D,
   * the end of input, or when the terminal closes.
   */
  ask(question: string): Promise<string | null> {
    if (this.#closed) return Promise.resolve(null);
    return new Promise((answer) => {
      const draft = this.#editor.text;
      this.#questions.push({ prompt: question + " ", answer, draft });
      if (this.options.interactive && this.#questions.length === 1) {
        this.#hide();
        this.#editor.set("");
        this.#show();
      }
    });
  }

  /** Stops reading and gives the terminal back (the input rows are erased). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#reading = false;
    this.#answerAll(null);
    if (this.options.interactive) {
      this.#hide();
      this.#restore();
      Deno.removeSignalListener("SIGWINCH", this.#onResize);
      Deno.removeSignalListener("SIGCONT", this.#onContinue);
      globalThis.removeEventListener("unload", this.#onUnload);
      clearTimeout(this.#escapeTimer);
    }
    // A pipe that has not ended would keep the process alive.
    this.#reader?.cancel().catch(() => {});
  }

  /**
   * Stops reading input but keeps printing (for `--stay` and a server whose input ended). At a
   * terminal, the input rows go and the terminal is back in its normal mode, so Ctrl-C is SIGINT.
   */
  stopReading(): void {
    if (!this.#reading) return;
    this.#reading = false;
    this.#answerAll(null);
    if (this.options.interactive) {
      this.#hide();
      this.#restore();
    } else this.#reader?.cancel().catch(() => {});
  }

  // --- reading --------------------------------------------------------------------------------

  /** Lines from a pipe or file, split as node:readline did: at LF, CR LF or a lone CR. */
  async #readLines(): Promise<void> {
    const reader = this.#reader = Deno.stdin.readable.getReader();
    const utf8 = new TextDecoder();
    let partial = "", skipLineFeed = false;
    try {
      while (this.#reading) {
        const { value, done } = await reader.read();
        if (done) break;
        let text = utf8.decode(value, { stream: true });
        if (skipLineFeed && text.startsWith("\n")) text = text.slice(1);
        if (text === "") continue;
        skipLineFeed = text.endsWith("\r");
        const lines = (partial + text).split(/\r\n|\n|\r/);
        partial = lines.pop()!;
        for (const line of lines) if (this.#reading) this.#enter(line, false);
      }
    } catch {
      // a read cancelled by close() or stopReading(), or stdin gone: the input has ended
    }
    partial += utf8.decode();
    if (partial && this.#reading) this.#enter(partial, false);
    this.#ended();
  }

  #startInteractive(): void {
    Deno.stdin.setRaw(true);
    write(BRACKETED_PASTE_ON);
    Deno.addSignalListener("SIGWINCH", this.#onResize);
    Deno.addSignalListener("SIGCONT", this.#onContinue);
    globalThis.addEventListener("unload", this.#onUnload);
    this.#show();
    void this.#readKeys();
  }

  /** Raw input, a read at a time: decoded to key events, each applied to the line. */
  async #readKeys(): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    while (this.#reading) {
      let count: number | null;
      try {
        count = await Deno.stdin.read(buffer);
      } catch {
        count = null;
      }
      if (!this.#reading) return;
      if (count === null) return this.#ended();
      clearTimeout(this.#escapeTimer);
      this.#keys(this.#decoder.push(buffer.subarray(0, count)));
      if (this.#decoder.waiting) {
        this.#escapeTimer = setTimeout(() => this.#keys(this.#decoder.flush()), ESCAPE_WAIT_MS);
      }
    }
  }

  #keys(events: KeyEvent[]): void {
    if (events.length === 0) return;
    this.#hide();
    for (const event of events) {
      if (!this.#reading) break;
      if (this.#questions.length && event.kind === "key" && event.name === "ctrl-c") {
        this.#answer(null);
        continue;
      }
      for (const action of this.#editor.handle(event)) this.#act(action);
    }
    this.#show();
  }

  #act(action: EditAction): void {
    switch (action.kind) {
      case "submit":
        return this.#enter(action.text, action.pasted);
      case "interrupt":
        return this.#input.interrupt();
      case "end":
        return this.#questions.length ? this.#answer(null) : this.#ended();
      case "suspend":
        return this.#suspend();
      case "redraw":
        write("\x1b[H\x1b[2J");
        this.#drawn = undefined;
        return;
    }
  }

  /** A line entered: the answer to a question, or a line for the caller. */
  #enter(text: string, pasted: boolean): void {
    if (this.#questions.length) {
      if (this.options.interactive) {
        this.#hide();
        write(paint(this.options.color, 2, this.#questions[0].prompt) + sanitize(text) + "\r\n");
      }
      return this.#answer(text);
    }
    if (this.options.interactive) {
      this.#hide();
      this.#echo = text;
    }
    this.#input.line(text, { pasted });
    this.#flushEcho();
    this.#show();
  }

  #ended(): void {
    if (this.#closed) return;
    if (this.#questions.length) this.#answerAll(null);
    this.#input.end();
  }

  #answer(text: string | null): void {
    const question = this.#questions.shift();
    if (!question) return;
    if (this.options.interactive) {
      this.#hide();
      if (this.#questions.length === 0) this.#editor.set(question.draft);
    }
    question.answer(text);
    this.#show();
  }

  #answerAll(text: string | null): void {
    while (this.#questions.length) this.#answer(text);
  }

  // --- the screen -----------------------------------------------------------------------------

  /**
   * Prints a line; at a terminal above the input: erase the input's rows, print, draw the input
   * again. Writes are synchronous so nothing is lost at exit.
   */
  #above(text: string, stream: typeof Deno.stdout | typeof Deno.stderr): void {
    if (!this.options.interactive || this.#closed) return writeAllSync(stream, text + "\n");
    const line = text.replaceAll("\n", "\r\n") + "\r\n";
    const print = () => {
      this.#hide();
      this.#flushEcho();
      if (stream === Deno.stdout) write(line);
      else writeAllSync(stream, line);
      this.#show();
    };
    // A line to stdout goes out in one write with the erasing and redrawing of the input around
    // it, so the terminal never shows the input gone (no flicker while lines arrive as one
    // types). On stderr the three must stay in order across two streams, so they are not joined.
    if (stream === Deno.stdout) inOneWrite(print);
    else print();
  }

  #flushEcho(): void {
    if (this.#echo === undefined) return;
    const echo = this.#echo;
    this.#echo = undefined;
    write(paint(this.options.color, 2, this.#prompt) + sanitize(echo) + "\r\n");
  }

  /** Draws the input at the cursor, if it belongs on the screen and is not there. */
  #show(): void {
    if (this.#drawn || this.#closed || !this.#reading || this.#suspended) return;
    if (!this.options.interactive) return;
    const { columns, rows } = screenSize();
    const prompt = this.#questions[0]?.prompt ?? this.#prompt;
    const layout = layoutInput(prompt, this.#editor.text, this.#editor.cursor, columns);
    const maxRows = Math.max(1, Math.floor(rows / 2));
    const { output, drawn } = drawInput(layout, maxRows, (p) => paint(this.options.color, 2, p));
    if (this.#status !== undefined && rows > 2) {
      write(`\r${ERASE_LINE}${fitWidth(this.#status, columns - 1)}\r\n`);
      this.#statusDrawn = true;
    }
    write(output);
    this.#drawn = drawn;
  }

  /** Erases the input's rows (and the status line), leaving the cursor where the first was. */
  #hide(): void {
    if (!this.#drawn) return;
    write(eraseInput(this.#drawn, screenSize().columns));
    this.#drawn = undefined;
    if (this.#statusDrawn) write(`${CURSOR_UP}\r${ERASE_LINE}`);
    this.#statusDrawn = false;
  }

  /** After a resize: erase the input as the terminal has rewrapped it, and draw it anew. */
  #redraw(): void {
    this.#hide();
    this.#show();
  }

  /**
   * Ctrl-Z: the terminal goes back to its normal mode (no raw input, no bracketed paste), then
   * the process stops itself as the kernel would have; SIGCONT (`fg`) brings it all back.
   */
  #suspend(): void {
    this.#hide();
    this.#suspended = true;
    this.#restore();
    // Only this process: stopping the whole job (pid 0) needs --allow-run. Under a parent in the
    // same job (`deno task chat`) the parent does not stop, so the shell does not get the
    // terminal back until `kill -CONT`; run `chat` or `deno run … main.ts` directly.
    Deno.kill(Deno.pid, "SIGTSTP");
    // A job the shell does not control (an orphaned process group) is not stopped: go on.
    setTimeout(() => this.#resume(), SUSPEND_FALLBACK_MS);
  }

  #resume(): void {
    if (!this.#suspended || this.#closed) return;
    this.#suspended = false;
    Deno.stdin.setRaw(true);
    write(BRACKETED_PASTE_ON);
    this.#drawn = undefined;
    this.#show();
  }

  /** Gives the terminal back its normal mode; safe to call more than once, and at exit. */
  #restore(): void {
    try {
      write(BRACKETED_PASTE_OFF);
      Deno.stdin.setRaw(false);
    } catch {
      // stdin or stdout already gone: nothing to give back
    }
  }
}

/** The terminal's size, with a fallback when it cannot be read. */
function screenSize(): { columns: number; rows: number } {
  try {
    const { columns, rows } = Deno.consoleSize();
    if (columns > 0 && rows > 0) return { columns, rows };
  } catch {
    // not a terminal after all
  }
  return { columns: 80, rows: 24 };
}

const utf8 = new TextEncoder();

/** What `write` collects inside `inOneWrite`, else undefined. */
let collected: string[] | undefined;

/** Writes to the terminal (stdout); inside `inOneWrite`, at its end. */
function write(text: string): void {
  if (collected) collected.push(text);
  else writeAllSync(Deno.stdout, text);
}

/** Runs `draw`, and writes what it wrote to stdout in one write (even if it throws). */
function inOneWrite(draw: () => void): void {
  if (collected) return draw();
  collected = [];
  try {
    draw();
  } finally {
    const text = collected.join("");
    collected = undefined;
    writeAllSync(Deno.stdout, text);
  }
}

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
