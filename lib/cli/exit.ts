/**
 * The program's exit codes, documented in the README: scripts rely on them.
 * @module
 */

/** Process exit codes. */
export const Exit = {
  /** Success, including a chat that ended normally. */
  OK: 0,
  /** A general error: bad input, a file problem. */
  ERROR: 1,
  /** The command line was wrong. */
  USAGE: 2,
  /** The server's allowlist refused our key. */
  NOT_ALLOWED: 3,
  /** The server's key differs from the pinned one (possible impersonation). */
  SERVER_KEY_CHANGED: 4,
  /** The server could not be reached, or the connection failed or was lost. */
  CONNECTION: 5,
  /** The server removed us during the chat (revoked, replaced, closing with an error). */
  REMOVED: 6,
  /** The server refused an invite: unknown, used up, withdrawn or expired (`chat join`). */
  BAD_INVITE: 7,
} as const;
