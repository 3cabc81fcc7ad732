/**
 * Text from the network, made safe to show: whatever a peer sent, what reaches a terminal or a
 * log is visible characters only, so no escape sequence can rewrite a screen, set a title or
 * write the clipboard, and no invisible or bidi control can make one name look like another.
 * @module
 */

/**
 * What a terminal acts on or a reader is fooled by: C0 and C1 controls and DEL (escape
 * sequences), the bidi marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
 * U+202A-U+202E, U+2066-U+2069), the line and paragraph separators (U+2028, U+2029, line breaks
 * to some tools), invisible characters (U+200B, U+2060-U+2064, U+FEFF) and the tag characters
 * (U+E0000-U+E007F). The zero-width joiners U+200C and U+200D stay: scripts and emoji need them.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\u0000-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{e0000}-\u{e007f}]/gu;

/** The same, less the C0 controls that JSON.stringify escapes itself. */
const UNSAFE_IN_JSON =
  /[\u007f-\u009f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{e0000}-\u{e007f}]/gu;

/** The longest untrusted value quoted into a log line. */
const QUOTE_LIMIT = 64;

/** `\uXXXX` (or a surrogate pair of them) for `c`. */
function escaped(c: string): string {
  return Array.from({ length: c.length }, (_, i) => c.charCodeAt(i))
    .map((unit) => `\\u${unit.toString(16).padStart(4, "0")}`).join("");
}

/**
 * `text` with every unsafe character shown as U+FFFD and tabs as spaces.
 *
 * @example
 * ```ts
 * import { sanitize } from "./untrusted.ts";
 * sanitize("hi\u001b]0;owned\u0007"); // "hi\ufffd]0;owned\ufffd"
 * ```
 */
export function sanitize(text: string): string {
  return text.replaceAll("\t", " ").replace(UNSAFE, "\ufffd");
}

/**
 * `value` as one line of JSON that is safe to print: JSON.stringify escapes C0 controls and lone
 * surrogates, and this escapes the rest of what sanitize() neutralises as `\uXXXX`, so the data
 * stays exact for a program and inert for a terminal.
 *
 * @example
 * ```ts
 * import { safeJson } from "./untrusted.ts";
 * safeJson({ text: "\u009b31m" }); // '{"text":"\\u009b31m"}'
 * ```
 */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE_IN_JSON, escaped);
}

/**
 * `text` as a JSON string literal with every unsafe character escaped, cut to `limit`
 * characters: for putting a peer's value in a log line.
 *
 * @example
 * ```ts
 * import { quoteUntrusted } from "./untrusted.ts";
 * quoteUntrusted("join\u001b]0;owned\u0007"); // "\"join\\u001b]0;owned\\u0007\""
 * ```
 */
export function quoteUntrusted(text: string, limit = QUOTE_LIMIT): string {
  const cut = text.length > limit ? text.slice(0, limit) + "…" : text;
  return safeJson(cut);
}

/** The most characters of a peer's sentence (an error's or notice's `message`) shown. */
export const SHOWN_MESSAGE_LIMIT = 300;

/** `text` cut to `limit` characters (with `…`): a peer cannot fill a screen with one message. */
export function clip(text: string, limit = SHOWN_MESSAGE_LIMIT): string {
  return text.length > limit ? text.slice(0, limit) + "…" : text;
}
