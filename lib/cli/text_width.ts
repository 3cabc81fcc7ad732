/**
 * How many terminal columns text takes: East Asian Wide and Fullwidth characters and emoji take
 * two, combining marks and other zero-width characters none, everything else one. Counted per
 * grapheme cluster (what a cursor moves over), so a flag, an emoji with a skin tone or a ZWJ
 * family is one two-column cell, as terminals draw them.
 * @module
 */

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** Code points drawn as emoji, two columns wide. */
const EMOJI = /^\p{Emoji_Presentation}$/u;

/** Code points that take no column: combining marks, format characters, variation selectors. */
const ZERO_WIDTH = /^[\p{Mn}\p{Me}\p{Cf}\u1160-\u11ff\ufe00-\ufe0f\u{e0100}-\u{e01ef}]$/u;

/**
 * East Asian Wide (W) and Fullwidth (F) ranges of Unicode 15's EastAsianWidth.txt, merged where
 * adjacent and without the emoji, which EMOJI covers. Sorted pairs of first and last code point.
 */
// deno-fmt-ignore -- pairs of ranges, easier to check against the table packed
const WIDE: readonly number[] = [
  0x1100, 0x115f, 0x231a, 0x231b, 0x2329, 0x232a, 0x2e80, 0x303e, 0x3041, 0x33ff, 0x3400, 0x4dbf,
  0x4e00, 0x9fff, 0xa000, 0xa4cf, 0xa960, 0xa97f, 0xac00, 0xd7a3, 0xf900, 0xfaff, 0xfe10, 0xfe19,
  0xfe30, 0xfe6f, 0xff00, 0xff60, 0xffe0, 0xffe6, 0x16fe0, 0x16fe4, 0x17000, 0x18cff, 0x1b000,
  0x1b2ff, 0x1f200, 0x1f2ff, 0x20000, 0x2fffd, 0x30000, 0x3fffd,
];

/** Whether `codePoint` lies in one of the WIDE ranges (a binary search). */
function isWide(codePoint: number): boolean {
  let low = 0, high = WIDE.length / 2 - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (codePoint < WIDE[2 * middle]) high = middle - 1;
    else if (codePoint > WIDE[2 * middle + 1]) low = middle + 1;
    else return true;
  }
  return false;
}

/** Emoji modifiers (skin tones): terminals that draw them apart from their base give them 2. */
const MODIFIER = /\p{Emoji_Modifier}/u;

/** The columns one code point takes on its own (wcwidth): 0, 1 or 2. */
function codePointWidth(codePoint: number, character: string): number {
  if (codePoint < 0x7f) return codePoint < 0x20 ? 0 : 1;
  if (ZERO_WIDTH.test(character)) return 0;
  return isWide(codePoint) || EMOJI.test(character) ? 2 : 1;
}

/**
 * The columns one grapheme cluster takes. Terminals disagree here; where they do, this counts
 * the wider, because a row counted too wide only ends early, while one counted too narrow would
 * wrap (and the input is drawn with autowrap off, so even then no row is added). So: code points
 * add up as wcwidth counts them (an emoji with a skin tone is 4, as xterm, VTE and tmux 3.3 draw
 * it), except that a flag, a ZWJ sequence and a character with VS16 are one 2-column cell.
 *
 * @example
 * ```ts
 * import { graphemeWidth } from "./text_width.ts";
 * graphemeWidth("a"); // 1
 * graphemeWidth("漢"); // 2
 * graphemeWidth("😀"); // 2
 * graphemeWidth("\u0301"); // 0
 * ```
 */
export function graphemeWidth(grapheme: string): number {
  const first = grapheme.codePointAt(0);
  if (first === undefined) return 0;
  if (grapheme.length === 1 && first < 0x7f) return first < 0x20 ? 0 : 1;
  if (/\p{Regional_Indicator}{2}|\u200d\p{Extended_Pictographic}|\ufe0f/u.test(grapheme)) {
    return MODIFIER.test(grapheme) ? 4 : 2;
  }
  let width = 0;
  for (const character of grapheme) width += codePointWidth(character.codePointAt(0)!, character);
  return width;
}

/** `text` cut into grapheme clusters. */
export function graphemes(text: string): string[] {
  const out: string[] = [];
  for (const { segment } of segmenter.segment(text)) out.push(segment);
  return out;
}

/**
 * The columns `text` takes on one line of a terminal.
 *
 * @example
 * ```ts
 * import { displayWidth } from "./text_width.ts";
 * displayWidth("héllo"); // 5
 * displayWidth("日本語 ok"); // 9
 * displayWidth("e\u0301"); // 1
 * ```
 */
export function displayWidth(text: string): number {
  if (/^[\x20-\x7e]*$/.test(text)) return text.length;
  let width = 0;
  for (const { segment } of segmenter.segment(text)) width += graphemeWidth(segment);
  return width;
}
