/**
 * The one rule for how long a chat line may be: it must fit one frame not only as the sender's
 * `{"type":"msg","text":…}` but also as the relayed `{"type":"msg","from":…,"text":…}`, so the
 * server never has to cut or drop a line it accepted.
 * @module
 */
import { MAX_PLAINTEXT_BYTES } from "../protocol/constants.ts";

/** The longest display name the server gives: a 32-character name, `~`, 16 hex digits. */
export const MAX_DISPLAY_NAME_LENGTH = 49;

const LONGEST_FROM = "x".repeat(MAX_DISPLAY_NAME_LENGTH);
/** A relayed message's bytes besides its text: `{"type":"msg","from":"<49>","text":""}`. */
const RELAY_OVERHEAD_BYTES = JSON.stringify({ type: "msg", from: LONGEST_FROM, text: "" }).length;

/** The UTF-8 length of `text` without encoding it (lone surrogates count as U+FFFD, 3 bytes). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/**
 * Returns why `text` cannot be sent as a chat line, or undefined if it can. `maxLineBytes` is the
 * server's limit on the text (from its welcome); the frame limit applies in any case.
 */
export function lineProblem(text: string, maxLineBytes = Infinity): string | undefined {
  if (text.length === 0) return "the line is empty";
  // a lone surrogate (`"\ud800"` in JSON) is no Unicode text: it cannot be shown or stored
  if (!text.isWellFormed()) return "the line is not Unicode text (it has a lone surrogate)";
  const bytes = utf8Length(text);
  if (bytes > maxLineBytes) {
    return `the line is too long (${bytes} bytes; this server takes at most ${maxLineBytes}); ` +
      "nothing was sent";
  }
  // JSON escapes a byte into at most 6 (\u00XX): only a line that could overflow is encoded.
  if (6 * bytes + RELAY_OVERHEAD_BYTES <= MAX_PLAINTEXT_BYTES) return undefined;
  const relayed = utf8Length(JSON.stringify({ type: "msg", from: LONGEST_FROM, text }));
  if (relayed > MAX_PLAINTEXT_BYTES) {
    return `the line is too long for one message (${relayed} bytes as relayed, over the ` +
      `${MAX_PLAINTEXT_BYTES}-byte limit); nothing was sent`;
  }
  return undefined;
}
