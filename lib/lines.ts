/**
 * The one rule for how long a chat line may be: it must fit one frame not only as the sender's
 * `{"type":"msg","text":…}` but also as the relayed `{"type":"msg","from":…,"text":…}`, so the
 * server never has to cut or drop a line it accepted.
 * @module
 */
import { encodeMessage } from "./channel.ts";

/** The longest display name the server gives: a 32-character name, `~`, 4 hex digits. */
export const MAX_DISPLAY_NAME_LENGTH = 37;

const LONGEST_FROM = "x".repeat(MAX_DISPLAY_NAME_LENGTH);

/** Returns why `text` cannot be sent as a chat line, or undefined if it can. */
export function lineProblem(text: string): string | undefined {
  if (text.length === 0) return "the line is empty";
  try {
    encodeMessage({ type: "msg", from: LONGEST_FROM, text });
    return undefined;
  } catch (error) {
    return `the line is too long for one message (${(error as Error).message}); nothing was sent`;
  }
}
