/**
 * Text from the network, made safe to show: whatever a peer sent, what reaches a terminal or a
 * log is visible characters only, so no escape sequence can rewrite a screen, set a title or
 * write the clipboard, and no bidi override can make one name look like another.
 * @module
 */

// C0 and C1 controls, DEL, and the bidirectional marks, embeddings, overrides and isolates.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** The longest untrusted value quoted into a log line. */
const QUOTE_LIMIT = 64;

/**
 * `text` as a JSON string literal with every unsafe character escaped as `\uXXXX` (JSON itself
 * escapes only C0 controls), cut to `limit` characters: for putting a peer's value in a log line.
 *
 * @example
 * ```ts
 * import { quoteUntrusted } from "./untrusted.ts";
 * quoteUntrusted("join\u001b]0;owned\u0007"); // "\"join\\u001b]0;owned\\u0007\""
 * ```
 */
export function quoteUntrusted(text: string, limit = QUOTE_LIMIT): string {
  const cut = text.length > limit ? text.slice(0, limit) + "…" : text;
  return escapeUnsafe(JSON.stringify(cut));
}

/**
 * `json` (text that is already JSON) with the unsafe characters JSON.stringify leaves alone
 * (DEL, C1 controls, bidi marks) escaped as `\uXXXX`: still the same JSON value.
 */
export function escapeUnsafe(json: string): string {
  return json.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
