/**
 * The line being typed, as a value: its text and cursor, the editing keys, history, and how it
 * lies on a screen of a given width. Pure: no I/O; lib/cli/terminal.ts reads keys, feeds them
 * here, and writes what `drawInput()` returns.
 * @module
 */
import type { KeyEvent } from "./input_decoder.ts";
import { graphemes, graphemeWidth } from "./text_width.ts";
import { sanitize } from "../chat/untrusted.ts";

/** What a key asks of the terminal, besides changing the line. */
export type EditAction =
  | { kind: "submit"; text: string; pasted: boolean }
  | { kind: "interrupt" }
  | { kind: "end" }
  | { kind: "suspend" }
  | { kind: "redraw" };

/** The most lines Up and Down go back through. */
export const HISTORY_LINES = 100;

// deno-lint-ignore no-control-regex -- controls never enter the line; a tab is a space
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/** Text as it may enter the line: tabs as spaces, no controls (line breaks included). */
function clean(text: string): string {
  return text.replace(CONTROLS, "").replaceAll("\t", " ");
}

/**
 * The line editor's state: the text, the cursor (a UTF-16 index, always between grapheme
 * clusters), whether any of the text was pasted, and the history of lines entered.
 *
 * @example
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 * const editor = new LineEditor();
 * editor.handle({ kind: "text", text: "helo" });
 * editor.handle({ kind: "key", name: "left" });
 * editor.handle({ kind: "text", text: "l" });
 * editor.handle({ kind: "key", name: "enter" }); // [{ kind: "submit", text: "hello", pasted: false }]
 * ```
 */
export class LineEditor {
  #text = "";
  #cursor = 0;
  #pasted = false;
  readonly #history: string[] = [];
  /** Where Up and Down are in the history; history.length is the line being typed. */
  #historyAt = 0;
  /** The line being typed, kept while Up shows older ones. */
  #draft = "";

  /** The text of the line. */
  get text(): string {
    return this.#text;
  }

  /** The cursor, as an index into `text`. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Whether some of the line was pasted (then it is text to say, never a command). */
  get pasted(): boolean {
    return this.#pasted;
  }

  /** Replaces the line (the cursor goes to its end). */
  set(text: string, pasted = false): void {
    this.#text = clean(text);
    this.#cursor = this.#text.length;
    this.#pasted = pasted && this.#text !== "";
  }

  /** Applies one event; returns what the terminal has to do beyond redrawing the line. */
  handle(event: KeyEvent): EditAction[] {
    if (event.kind === "text") {
      this.#insert(clean(event.text));
      return [];
    }
    if (event.kind === "paste") return this.#paste(event.text);
    switch (event.name) {
      case "enter":
        return [this.#submit()];
      case "ctrl-c":
        if (this.#text === "") return [{ kind: "interrupt" }];
        this.set("");
        this.#historyAt = this.#history.length;
        return [];
      case "ctrl-d":
        if (this.#text === "") return [{ kind: "end" }];
        this.#cut(this.#cursor, this.#nextBoundary());
        return [];
      case "ctrl-z":
        return [{ kind: "suspend" }];
      case "ctrl-l":
        return [{ kind: "redraw" }];
      case "up":
      case "down":
        this.#browse(event.name === "up" ? -1 : 1);
        return [];
      default:
        this.#edit(event.name);
        return [];
    }
  }

  /** Keys that only change the text or move the cursor. */
  #edit(name: string): void {
    const text = this.#text, cursor = this.#cursor;
    switch (name) {
      case "backspace":
        return this.#cut(this.#previousBoundary(), cursor);
      case "delete":
        return this.#cut(cursor, this.#nextBoundary());
      case "left":
        this.#cursor = this.#previousBoundary();
        return;
      case "right":
        this.#cursor = this.#nextBoundary();
        return;
      case "home":
      case "ctrl-a":
        this.#cursor = 0;
        return;
      case "end":
      case "ctrl-e":
        this.#cursor = text.length;
        return;
      case "ctrl-u":
        return this.#cut(0, cursor);
      case "ctrl-k":
        return this.#cut(cursor, text.length);
      case "ctrl-w":
      case "word-backspace":
        return this.#cut(wordStart(text, cursor), cursor);
      case "word-left":
        this.#cursor = wordStart(text, cursor);
        return;
      case "word-right":
        this.#cursor = wordEnd(text, cursor);
        return;
    }
  }

  #insert(text: string): void {
    if (text === "") return;
    this.#text = this.#text.slice(0, this.#cursor) + text + this.#text.slice(this.#cursor);
    this.#cursor += text.length;
  }

  #cut(from: number, to: number): void {
    this.#text = this.#text.slice(0, from) + this.#text.slice(to);
    this.#cursor = from;
    if (this.#text === "") this.#pasted = false;
  }

  /**
   * A paste: its text goes in at the cursor; each line break in it enters the line before it, as
   * pasted text. What follows the last break stays in the line, to be edited and entered.
   */
  #paste(text: string): EditAction[] {
    const parts = text.split("\n").map(clean);
    if (parts.length === 1) {
      this.#insert(parts[0]);
      if (parts[0] !== "") this.#pasted = true;
      return [];
    }
    const after = this.#text.slice(this.#cursor);
    parts[0] = this.#text.slice(0, this.#cursor) + parts[0];
    const last = parts.pop()!;
    const actions: EditAction[] = [];
    for (const line of parts) {
      if (line === "") continue;
      this.#remember(line);
      actions.push({ kind: "submit", text: line, pasted: true });
    }
    this.#text = last + after;
    this.#cursor = last.length;
    this.#pasted = last !== "";
    return actions;
  }

  #submit(): EditAction {
    const action: EditAction = { kind: "submit", text: this.#text, pasted: this.#pasted };
    this.#remember(this.#text);
    this.set("");
    return action;
  }

  #remember(line: string): void {
    if (line !== "" && this.#history[this.#history.length - 1] !== line) {
      this.#history.push(line);
      if (this.#history.length > HISTORY_LINES) this.#history.shift();
    }
    this.#historyAt = this.#history.length;
  }

  #browse(step: -1 | 1): void {
    const to = this.#historyAt + step;
    if (to < 0 || to > this.#history.length) return;
    if (this.#historyAt === this.#history.length) this.#draft = this.#text;
    this.#historyAt = to;
    this.set(to === this.#history.length ? this.#draft : this.#history[to]);
  }

  #previousBoundary(): number {
    if (this.#cursor === 0) return 0;
    const before = graphemes(this.#text.slice(0, this.#cursor));
    return this.#cursor - before[before.length - 1].length;
  }

  #nextBoundary(): number {
    if (this.#cursor === this.#text.length) return this.#cursor;
    const [next] = graphemes(this.#text.slice(this.#cursor));
    return this.#cursor + next.length;
  }
}

/** Where the word before `cursor` starts (spaces before it skipped first, as in shells). */
function wordStart(text: string, cursor: number): number {
  let at = cursor;
  while (at > 0 && text[at - 1] === " ") at--;
  while (at > 0 && text[at - 1] !== " ") at--;
  return at;
}

/** Where the word after `cursor` ends. */
function wordEnd(text: string, cursor: number): number {
  let at = cursor;
  while (at < text.length && text[at] === " ") at++;
  while (at < text.length && text[at] !== " ") at++;
  return at;
}

/** One screen row of the input: the part of the prompt on it, the part of the text, columns. */
export interface InputRow {
  prompt: string;
  text: string;
  width: number;
}

/** The input laid out on a screen: its rows, and the row and column of the cursor. */
export interface InputLayout {
  rows: InputRow[];
  cursorRow: number;
  cursorColumn: number;
}

/**
 * Lays out `prompt` and `text` on rows of `columns` columns, breaking rows ourselves (a wide
 * character that does not fit goes to the next row, as terminals do), so the rows drawn are
 * exactly the rows counted. Characters a terminal would act on are shown as U+FFFD. When the
 * cursor is at the end of a full row, it sits on an empty row after it.
 *
 * @example
 * ```ts
 * import { layoutInput } from "./line_editor.ts";
 * const { rows, cursorRow, cursorColumn } = layoutInput("> ", "abcdef", 6, 4);
 * rows.map((row) => row.prompt + row.text); // ["> ab", "cdef", ""]
 * [cursorRow, cursorColumn]; // [2, 0]
 * ```
 */
export function layoutInput(
  prompt: string,
  text: string,
  cursor: number,
  columns: number,
): InputLayout {
  const width = Math.max(2, columns);
  const rows: InputRow[] = [{ prompt: "", text: "", width: 0 }];
  let row = rows[0];
  let cursorRow = 0, cursorColumn = 0, offset = 0;
  const place = (cell: string, cellWidth: number, isPrompt: boolean) => {
    if (row.width + cellWidth > width && row.width > 0) {
      row = { prompt: "", text: "", width: 0 };
      rows.push(row);
    }
    if (isPrompt) row.prompt += cell;
    else row.text += cell;
    row.width += cellWidth;
  };
  for (const cell of graphemes(prompt)) place(cell, graphemeWidth(cell), true);
  for (const cell of graphemes(text)) {
    const shown = sanitize(cell) === cell ? cell : "\ufffd";
    const cellWidth = graphemeWidth(shown);
    if (offset === cursor) { // the cursor sits where this cell goes
      place("", cellWidth, false);
      row.width -= cellWidth;
      cursorRow = rows.length - 1, cursorColumn = row.width;
    }
    place(shown, cellWidth, false);
    offset += cell.length;
  }
  if (offset <= cursor) {
    if (row.width >= width) {
      row = { prompt: "", text: "", width: 0 };
      rows.push(row);
    }
    cursorRow = rows.length - 1, cursorColumn = row.width;
  }
  return { rows, cursorRow, cursorColumn };
}

/** DECAWM (DEC private mode 7): whether writing past the last column starts a new row. */
const AUTOWRAP_OFF = "\x1b[?7l";
const AUTOWRAP_ON = "\x1b[?7h";

/** What drawing the input wrote: the rows' widths, and the cursor's row and column among them. */
export interface DrawnInput {
  widths: number[];
  cursorRow: number;
  cursorColumn: number;
}

/**
 * The bytes that draw `layout` from the start of an empty row, at most `maxRows` rows of it (a
 * window that holds the cursor), ending with the cursor in place; `paintPrompt` colours the
 * prompt. Row breaks are written as CR LF, never left to the terminal's wrapping (autowrap is off
 * while the rows are written).
 */
export function drawInput(
  layout: InputLayout,
  maxRows: number,
  paintPrompt: (text: string) => string,
): { output: string; drawn: DrawnInput } {
  const total = layout.rows.length, shown = Math.max(1, Math.min(maxRows, total));
  const top = Math.min(Math.max(0, layout.cursorRow - shown + 1), total - shown);
  const rows = layout.rows.slice(top, top + shown);
  // Autowrap off while drawing: a row the terminal finds wider than we counted is cut short
  // instead of growing a row we would not know to erase.
  let output = AUTOWRAP_OFF + rows
    .map((row) => (row.prompt ? paintPrompt(row.prompt) : "") + row.text)
    .join("\r\n") +
    AUTOWRAP_ON;
  const cursorRow = layout.cursorRow - top;
  const up = rows.length - 1 - cursorRow;
  output += "\r" + (up > 0 ? `\x1b[${up}A` : "") +
    (layout.cursorColumn > 0 ? `\x1b[${layout.cursorColumn}C` : "");
  return {
    output,
    drawn: { widths: rows.map((row) => row.width), cursorRow, cursorColumn: layout.cursorColumn },
  };
}

/**
 * The bytes that erase drawn input, from the cursor: up to its first row, then to the end of the
 * screen. `columns` is the terminal's width now; if it shrank since, a terminal that rewraps
 * (tmux, VTE, kitty, iTerm2) has cut each drawn row into as many rows as it now needs.
 */
export function eraseInput(drawn: DrawnInput, columns: number): string {
  const width = Math.max(1, columns);
  let up = Math.floor(drawn.cursorColumn / width);
  for (let i = 0; i < drawn.cursorRow; i++) up += Math.max(1, Math.ceil(drawn.widths[i] / width));
  return "\r" + (up > 0 ? `\x1b[${up}A` : "") + "\x1b[J";
}
