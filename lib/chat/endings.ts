/**
 * How the server ends a connection: a last message given a moment to arrive, and a failure
 * said in words that are safe to log.
 * @module
 */
import type { Channel } from "../protocol/channel.ts";
import type { ServerMessage } from "../protocol/messages.ts";
import { quoteUntrusted } from "./untrusted.ts";

/** How long a farewell (bye, error) may take before the server closes the connection anyway. */
export const FAREWELL_MS = 1000;

/**
 * Sends `farewell`, then closes the connection when the client closes it or after a second.
 * Waiting for the client's close matters: closing a socket with unread input sends a reset,
 * which can destroy the farewell before the client reads it.
 */
export function farewell<In>(channel: Channel<In, ServerMessage>, message: ServerMessage): void {
  channel.send(message).catch(() => {});
  setTimeout(() => channel.close(), FAREWELL_MS);
}

/** What went wrong, for the log: a peer's words in an error message are escaped. */
export function reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return quoteUntrusted(text, 200).slice(1, -1);
}
