/**
 * The one rule for how long a chat line may be: it must fit one frame not only as the sender's
 * `{"type":"msg","text":…}` but also as the relayed `{"type":"msg","from":…,"text":…}`, so the
 * server never has to cut or drop a line it accepted.
 * @module
 */
import { encodeMessage } from "./channel.ts";

/** The longest display name the server gives: a 32-character name, `~`, 16 hex digits. */
export const MAX_DISPLAY_NAME_LENGTH = 49;

const LONGEST_FROM = "x".repeat(MAX_DISPLAY_NAME_LENGTH);

const utf8 = new TextEncoder();

/**
 * Returns why `text` cannot be sent as a chat line, or undefined if it can. `maxLineBytes` is the
 * server's limit on the text (from its welcome); the frame limit applies in any case.
 */
export function lineProblem(text: string, maxLineBytes = Infinity): string | undefined {
  if (text.length === 0) return "the line is empty";
  const bytes = utf8.encode(text).length;
  if (bytes > maxLineBytes) {
    return `the line is too long (${bytes} bytes; this server takes at most ${maxLineBytes}); ` +
      "nothing was sent";
  }
  try {
    encodeMessage({ type: "msg", from: LONGEST_FROM, text });
    return undefined;
  } catch (error) {
    return `the line is too long for one message (${(error as Error).message}); nothing was sent`;
  }
}
