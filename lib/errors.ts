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

/**
 * The server presented a key that nothing pins yet, to a caller that refuses first contact
 * (`firstContact: "refuse"`: a script must not trust a key on first use unless it opts in).
 */
export class UnknownServerError extends Error {
  readonly code = "UNKNOWN_SERVER";
  constructor(
    readonly address: string,
    readonly presented: Uint8Array,
    why = "no --server-key was given",
  ) {
    super(`the server at ${address} is not pinned and ${why}`);
    this.name = "UnknownServerError";
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

/** What went wrong, for callers that branch (the CLI words hints per code and facts). */
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

/** What the operating system refused a keystore file operation with (`IO`). */
export type KeystoreOsError =
  | "permission-denied"
  | "no-space"
  | "quota"
  | "read-only"
  | "not-found"
  | "not-a-folder"
  | "is-a-folder"
  | "not-utf8"
  | "other";

/**
 * The facts of a keystore failure, each set only where it is the problem, so that the command
 * line can say what to do (lib/cli/output.ts): lib/ never words a hint.
 */
export interface KeystoreFacts {
  /** The file or folder concerned. */
  path?: string;
  /** `path` is the keys folder itself, not a file in it. */
  isFolder?: boolean;
  /** `path` is a symbolic link where a plain file belongs (`UNSAFE`). */
  isSymlink?: boolean;
  /** With `isSymlink`: the link leads nowhere (its target does not exist). */
  dangling?: boolean;
  /** The owner of `path`, when it is not us (nor root) (`UNSAFE`). */
  owner?: number;
  /** Our user id, with `owner`. */
  me?: number;
  /** The permission bits of `path`, when they let others in (`INSECURE_MODE`, `UNSAFE`). */
  mode?: number;
  /** `path` was replaced between its check and its opening (`UNSAFE`). */
  replaced?: boolean;
  /** What the operating system said (`IO`). */
  os?: KeystoreOsError;
  /** For a failed write (`IO`): whether `path` existed (and is unchanged) or was not created. */
  existed?: boolean;
  /** The public key of the secret key, when `identity.pub` holds another (`BAD_IDENTITY`). */
  publicKey?: Uint8Array;
  /** The label a single request wanted, when another key has it (`CONFLICT`). */
  label?: string;
}

/**
 * A keystore failure: a message that names the file, the facts behind it (`KeystoreFacts`) and
 * bad lines. What to do about it is worded by the command line, from `code` and the facts.
 */
export class KeystoreError extends Error implements KeystoreFacts {
  /** What went wrong. */
  readonly code: KeystoreErrorCode;
  /** Bad lines, with `source` the file (or input) they belong to. */
  readonly problems: LineError[];
  /** The file or input `problems` refer to. */
  readonly source?: string;
  readonly path?: string;
  readonly isFolder?: boolean;
  readonly isSymlink?: boolean;
  readonly dangling?: boolean;
  readonly owner?: number;
  readonly me?: number;
  readonly mode?: number;
  readonly replaced?: boolean;
  readonly os?: KeystoreOsError;
  readonly existed?: boolean;
  readonly publicKey?: Uint8Array;
  readonly label?: string;

  /** Creates an error; `options.cause` keeps the operating system's error. */
  constructor(
    code: KeystoreErrorCode,
    message: string,
    options: KeystoreFacts & { problems?: LineError[]; source?: string; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
    const { problems = [], source, cause: _cause, ...facts } = options;
    Object.assign(this, facts);
    this.name = "KeystoreError";
    this.code = code;
    this.problems = problems;
    this.source = source;
  }
}

/**
 * A received file's SHA-256 is not the one its sender offered. The part file has been removed:
 * the transfer must start again from the first byte.
 */
export class FileHashError extends Error {
  readonly code = "FILE_HASH";
  constructor(
    /** The part file that held the bytes (now removed). */
    readonly path: string,
    /** The SHA-256 the sender offered. */
    readonly expected: Uint8Array,
    /** The SHA-256 of the bytes received. */
    readonly actual: Uint8Array,
  ) {
    super(`the bytes received in ${path} do not match the SHA-256 their sender offered`);
    this.name = "FileHashError";
  }
}

/** Why a path of the downloads folder was refused. */
export type UnsafePathReason =
  | "symlink" // a symbolic link where a folder or a plain file belongs
  | "not-a-folder" // the downloads folder is a file or something else
  | "not-a-file" // a part file is a folder, a device, a pipe…
  | "not-ours" // another user owns it
  | "writable" // the downloads folder is writable by group or others
  | "replaced"; // it changed between its check and its use

/**
 * A path of the downloads folder that chat will not use, because writing there could change a
 * file other than the download: a link, the wrong kind of file, another user's, or replaced
 * while chat opened it. Nothing was written.
 */
export class UnsafePathError extends Error {
  readonly code = "UNSAFE_PATH";
  constructor(readonly path: string, readonly reason: UnsafePathReason, message: string) {
    super(message);
    this.name = "UnsafePathError";
  }
}
