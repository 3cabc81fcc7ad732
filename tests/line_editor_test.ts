/**
 * The pure core of the interactive prompt: the input decoder, display widths, the line editor's
 * keys and its layout on the screen.
 */
import { assert } from "./helpers.ts";
import { InputDecoder, type KeyEvent } from "../lib/cli/input_decoder.ts";
import { displayWidth, graphemeWidth } from "../lib/cli/text_width.ts";
import { drawInput, eraseInput, layoutInput, LineEditor } from "../lib/cli/line_editor.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

/** Decodes `input` fed in pieces cut at `cuts` (byte offsets). */
function decodeInPieces(input: Uint8Array, cuts: number[]): KeyEvent[] {
  const decoder = new InputDecoder();
  const events: KeyEvent[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    events.push(...decoder.push(input.subarray(from, cut)));
    from = cut;
  }
  return merge(events);
}

/** Adjacent text events as one (how a read was cut must not matter). */
function merge(events: KeyEvent[]): KeyEvent[] {
  const out: KeyEvent[] = [];
  for (const event of events) {
    const last = out[out.length - 1];
    if (event.kind === "text" && last?.kind === "text") last.text += event.text;
    else out.push({ ...event });
  }
  return out;
}

Deno.test("InputDecoder gives the same events however the bytes are cut, UTF-8 and escapes included", () => {
  const input = bytes("é漢😀\x1b[D\x1b[3~x\x1bOH\x1b[1;5C\r\x7f\x03\x1b[200~a\r\nb\x1b[201~z");
  const expected: KeyEvent[] = [
    { kind: "text", text: "é漢😀" },
    { kind: "key", name: "left" },
    { kind: "key", name: "delete" },
    { kind: "text", text: "x" },
    { kind: "key", name: "home" },
    { kind: "key", name: "word-right" },
    { kind: "key", name: "enter" },
    { kind: "key", name: "backspace" },
    { kind: "key", name: "ctrl-c" },
    { kind: "paste", text: "a\nb" },
    { kind: "text", text: "z" },
  ];
  assert.deepEqual(decodeInPieces(input, []), expected);
  for (let cut = 1; cut < input.length; cut++) {
    assert.deepEqual(decodeInPieces(input, [cut]), expected, `cut at byte ${cut}`);
  }
  // every byte on its own
  assert.deepEqual(decodeInPieces(input, [...input.keys()].slice(1)), expected);
});

Deno.test("InputDecoder keeps a lone ESC until flush() says it was the Escape key", () => {
  const decoder = new InputDecoder();
  assert.deepEqual(decoder.push(bytes("a\x1b")), [{ kind: "text", text: "a" }]);
  assert.equal(decoder.waiting, true);
  assert.deepEqual(decoder.flush(), [{ kind: "key", name: "escape" }]);
  assert.equal(decoder.waiting, false);
});

Deno.test("InputDecoder reads a bracketed paste as one event: controls and commands are content", () => {
  const decoder = new InputDecoder();
  const events = [
    ...decoder.push(bytes("\x1b[200~one\rexit\r/quit\x03\x1b[A")),
    ...decoder.push(bytes("two\x1b[20")),
    ...decoder.push(bytes("1~")),
  ];
  assert.deepEqual(events, [{ kind: "paste", text: "one\nexit\n/quit\x03\x1b[Atwo" }]);
});

Deno.test("InputDecoder decodes a 16 KiB paste, in 4 KiB reads, as one event in well under 100 ms", () => {
  const text = "0123456789abcdef".repeat(1024);
  const input = bytes(`\x1b[200~${text}\x1b[201~`);
  const start = performance.now();
  const decoder = new InputDecoder();
  const events: KeyEvent[] = [];
  for (let at = 0; at < input.length; at += 4096) {
    events.push(...decoder.push(input.subarray(at, at + 4096)));
  }
  const editor = new LineEditor();
  for (const event of events) editor.handle(event);
  layoutInput("> ", editor.text, editor.cursor, 100);
  const elapsed = performance.now() - start;
  assert.deepEqual(events, [{ kind: "paste", text }]);
  assert.equal(editor.text, text);
  assert.ok(elapsed < 100, `took ${elapsed.toFixed(1)} ms`);
});

Deno.test("InputDecoder turns typed text into one event however long (not one per character)", () => {
  const events = new InputDecoder().push(bytes("x".repeat(16_384)));
  assert.equal(events.length, 1);
});

Deno.test("displayWidth() counts CJK and emoji as 2, combining marks as 0", () => {
  const table: [string, number][] = [
    ["", 0],
    ["hello", 5],
    ["漢字", 4],
    ["ｆｕｌｌ", 8], // fullwidth forms
    ["한국어", 6],
    ["😀", 2],
    ["🎉x", 3],
    ["e\u0301", 1], // e and a combining acute
    ["\u0301", 0],
    ["a\u200db", 2], // ZWJ takes nothing
    ["🇯🇵", 2],
    ["✔\ufe0f", 2], // VS16: emoji presentation
    ["héllo wörld", 11],
  ];
  for (const [text, width] of table) assert.equal(displayWidth(text), width, JSON.stringify(text));
  assert.equal(graphemeWidth("👍🏽"), 4); // as xterm, VTE and tmux 3.3 draw it: the wider count
});

/** An editor fed `events`; returns it and the actions. */
function edit(...events: (KeyEvent | string)[]) {
  const editor = new LineEditor();
  const actions = events.flatMap((event) =>
    editor.handle(typeof event === "string" ? { kind: "key", name: event as never } : event)
  );
  return { editor, actions };
}
const type = (text: string): KeyEvent => ({ kind: "text", text });
const paste = (text: string): KeyEvent => ({ kind: "paste", text });

Deno.test("LineEditor moves and deletes by whole characters, emoji and combined ones included", () => {
  let { editor } = edit(type("ae\u0301😀b"), "left", "left", "backspace");
  assert.equal(editor.text, "a😀b");
  ({ editor } = edit(type("漢字"), "home", "delete"));
  assert.equal(editor.text, "字");
  ({ editor } = edit(type("abc"), "ctrl-a", type(">"), "ctrl-e", type("<")));
  assert.equal(editor.text, ">abc<");
});

Deno.test("LineEditor has the shell's Ctrl-U, Ctrl-W and Ctrl-K", () => {
  assert.equal(edit(type("one two  three"), "ctrl-w").editor.text, "one two  ");
  assert.equal(edit(type("one two  "), "ctrl-w").editor.text, "one ");
  assert.equal(edit(type("one two"), "word-left", "ctrl-u").editor.text, "two");
  assert.equal(edit(type("one two"), "word-left", "ctrl-k").editor.text, "one ");
});

Deno.test("LineEditor: Ctrl-C clears a half-typed line first, and interrupts on an empty one", () => {
  const { editor, actions } = edit(type("half"), "ctrl-c");
  assert.equal(editor.text, "");
  assert.deepEqual(actions, []);
  assert.deepEqual(editor.handle({ kind: "key", name: "ctrl-c" }), [{ kind: "interrupt" }]);
  assert.deepEqual(edit("ctrl-d").actions, [{ kind: "end" }]);
  assert.deepEqual(edit(type("x"), "home", "ctrl-d").editor.text, "");
  assert.deepEqual(edit("ctrl-z").actions, [{ kind: "suspend" }]);
});

Deno.test("LineEditor enters a typed line as not pasted, and goes through history", () => {
  const { editor, actions } = edit(type("first"), "enter", type("second"), "enter", type("new"));
  assert.deepEqual(actions, [
    { kind: "submit", text: "first", pasted: false },
    { kind: "submit", text: "second", pasted: false },
  ]);
  editor.handle({ kind: "key", name: "up" });
  assert.equal(editor.text, "second");
  editor.handle({ kind: "key", name: "up" });
  editor.handle({ kind: "key", name: "up" });
  assert.equal(editor.text, "first");
  editor.handle({ kind: "key", name: "down" });
  editor.handle({ kind: "key", name: "down" });
  assert.equal(editor.text, "new");
});

Deno.test("LineEditor enters each line of a paste as pasted text, in order, keeping the last part", () => {
  const { editor, actions } = edit(type("say: "), paste("one\nexit\n\n/quit\nlast"));
  assert.deepEqual(actions, [
    { kind: "submit", text: "say: one", pasted: true },
    { kind: "submit", text: "exit", pasted: true },
    { kind: "submit", text: "/quit", pasted: true },
  ]);
  assert.equal(editor.text, "last");
  assert.equal(editor.pasted, true);
  assert.deepEqual(editor.handle({ kind: "key", name: "enter" }), [
    { kind: "submit", text: "last", pasted: true },
  ]);
  // a paste ending in a line break leaves nothing behind, and controls never enter the line
  const after = edit(paste("a\x1b[2J\tb\n"));
  assert.deepEqual(after.actions, [{ kind: "submit", text: "a[2J b", pasted: true }]);
  assert.equal(after.editor.text, "");
});

Deno.test("layoutInput() breaks rows before a wide character that does not fit", () => {
  const layout = layoutInput("> ", "ab漢字c", 7, 5);
  assert.deepEqual(layout.rows.map((row) => row.prompt + row.text), ["> ab", "漢字c", ""]);
  assert.deepEqual(layout.rows.map((row) => row.width), [4, 5, 0]);
  assert.deepEqual([layout.cursorRow, layout.cursorColumn], [2, 0]); // after a full row
  const middle = layoutInput("> ", "ab漢字c", 2, 5); // the cursor before 漢
  assert.deepEqual([middle.cursorRow, middle.cursorColumn], [1, 0]);
});

Deno.test("drawInput() writes rows with CR LF and autowrap off; eraseInput() goes back up exactly", () => {
  const layout = layoutInput("> ", "x".repeat(250), 100, 100); // 3 rows, cursor on the second
  const { output, drawn } = drawInput(layout, 10, (p) => p);
  assert.equal(output.split("\r\n").length, 3);
  assert.ok(output.startsWith("\x1b[?7l> xx"));
  assert.deepEqual(drawn, { widths: [100, 100, 52], cursorRow: 1, cursorColumn: 2 });
  assert.equal(eraseInput(drawn, 100), "\r\x1b[1A\x1b[J");
  // after the terminal narrowed to 40 columns and rewrapped: 3 rows for the first, then 1
  assert.equal(eraseInput(drawn, 40), "\r\x1b[3A\x1b[J");
  // a window of at most 2 rows keeps the cursor in it
  const windowed = drawInput(layoutInput("> ", "x".repeat(250), 250, 100), 2, (p) => p);
  assert.deepEqual(windowed.drawn.widths, [100, 52]);
});
