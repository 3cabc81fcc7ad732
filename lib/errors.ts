/**
 * The errors callers branch on, each with a `code`; everything else is a TypeError, RangeError
 * or SyntaxError. Errors say what happened (facts: a path, a key, a mode); the command line
 * words what to do about it (lib/cli/output.ts). This module imports nothing, so every layer
 * may use it.
 * @module
 */

/** A bad line of an input or file, by its 1-based number. */
export interface LineError {
  line: number;
  message: string;
}

/** The peer broke the protocol (bad frame, failed decryption, bad message): end that connection. */
export class ProtocolError extends Error {
  readonly code: string = "PROTOCOL";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ProtocolError";
  }
}

/** The error every failed decryption throws: one opaque message, never which check failed. */
export class DecryptError extends ProtocolError {
  override readonly code = "DECRYPT";
  constructor() {
    super("failed to decrypt and authenticate message");
    this.name = "DecryptError";
  }
}

/** A bounded wait ran out; the connection it was waiting on has been closed. */
export class TimeoutError extends Error {
  readonly code = "TIMEOUT";
  constructor(message: string) {
    super(message);
    this.name = "TimeoutError";
  }
}

/** No port of a `--data-ports` range could be opened. */
export class NoFreePortError extends Error {
  readonly code = "NO_FREE_PORT";
  constructor(readonly first: number, readonly last: number) {
    super(`no free data port in ${first}-${last}`);
    this.name = "NoFreePortError";
  }
}

/** The server presented a key other than the pinned or expected one. */
export class ServerKeyChangedError extends Error {
  readonly code = "SERVER_KEY_CHANGED";
  constructor(
    readonly address: string,
    readonly expected: Uint8Array,
    readonly presented: Uint8Array,
    readonly explicit: boolean,
  ) {
    super(
      `the server at ${address} presented a different key than the one ${
        explicit ? "given with --server-key" : "pinned"
      }`,
    );
    this.name = "ServerKeyChangedError";
  }
}

/** The server refused us or removed us, with one of the protocol's error codes. */
export class ServerRefusedError extends Error {
  /** `code` is the protocol's error code (docs/PROTOCOL.md section 7.3), as the server sent it. */
  constructor(readonly code: string, readonly serverMessage: string) {
    super(`the server refused: ${serverMessage} (${code})`);
    this.name = "ServerRefusedError";
  }
}

/** Why a server could not be reached. */
export type ConnectFailure = "refused" | "timeout" | "failed";

/** The server could not be reached: refused, no answer in time, or another network failure. */
export class ConnectError extends Error {
  readonly code = "CONNECT";
  constructor(
    /** `host:port` as dialled. */
    readonly address: string,
    readonly failure: ConnectFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ConnectError";
  }
}

/** What went wrong, for callers that branch (the CLI adds hints per code). */
export type KeystoreErrorCode =
  | "NO_FOLDER" // the keys folder does not exist
  | "NOT_A_FOLDER" // the keys path is a file
  | "NO_IDENTITY" // no secret key file
  | "IDENTITY_EXISTS" // keygen without force
  | "INSECURE_MODE" // secret key file accessible by group or others
  | "UNSAFE" // the folder or a file in it is another user's, writable by others, or a link
  | "BAD_IDENTITY" // the secret key file or the public key file is wrong
  | "BAD_FILE" // a line-based file has bad lines; nothing was changed
  | "CONFLICT" // the requested change conflicts with the file (label taken)
  | "NOT_FOUND" // revoke: no such key or label
  | "IO"; // the operating system refused (permission, full disk…)

/** A keystore failure: a message that names the file, hints that say what to do, bad lines. */
export class KeystoreError extends Error {
  /** What went wrong. */
  readonly code: KeystoreErrorCode;
  /** What to do about it, one sentence each. */
  readonly hints: string[];
  /** Bad lines, with `source` the file (or input) they belong to. */
  readonly problems: LineError[];
  /** The file or input `problems` refer to. */
  readonly source?: string;

  /** Creates an error; `options.cause` keeps the operating system's error. */
  constructor(
    code: KeystoreErrorCode,
    message: string,
    options: { hints?: string[]; problems?: LineError[]; source?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "KeystoreError";
    this.code = code;
    this.hints = options.hints ?? [];
    this.problems = options.problems ?? [];
    this.source = options.source;
  }
}
