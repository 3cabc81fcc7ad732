/**
 * The only module that writes to the terminal. Data goes to stdout; everything else goes to
 * stderr as `chat: …` lines, errors as `chat: error: …` followed by `chat: hint: …` lines that
 * say what to do (the style of age's `tui.go`). Also turns any thrown error into an exit code.
 * @module
 */
import { basename, dirname } from "node:path";
import { KeystoreError, type LineError } from "../errors.ts";
import { encodePublicKey } from "../keys/key_text.ts";
import { KEY_FILES } from "../keys/keystore.ts";
import { Exit } from "./exit.ts";
import { sanitize } from "../chat/untrusted.ts";

const PROGRAM = "chat";
const encoder = new TextEncoder();

/**
 * An expected failure of a command: printed as `chat: error: <message>` plus hints, never with
 * a stack trace, and the process exits with `exitCode` (default `Exit.ERROR`).
 */
export class UserError extends Error {
  /** What to do about it, one line each. */
  readonly hints: string[];
  /** The process exit code. */
  readonly exitCode: number;
  /** Bad lines of an input, each printed with its line number. */
  readonly problems: LineError[];
  /** The file or input `problems` refer to ("stdin", a path). */
  readonly source?: string;

  /** Creates the error; every option is optional. */
  constructor(
    message: string,
    options: {
      hints?: string[];
      exitCode?: number;
      problems?: LineError[];
      source?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "UserError";
    this.hints = options.hints ?? [];
    this.exitCode = options.exitCode ?? Exit.ERROR;
    this.problems = options.problems ?? [];
    this.source = options.source;
  }
}

function write(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  const bytes = encoder.encode(text);
  try {
    for (let written = 0; written < bytes.length;) {
      written += stream.writeSync(bytes.subarray(written));
    }
  } catch (error) {
    // `chat pubkey | head -c 0`: the reader left; nothing useful to say.
    if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
  }
}

/** Writes one line of data (a key, a table row) to stdout. */
export function printData(line: string): void {
  write(Deno.stdout, line + "\n");
}

/** Writes raw text to stdout (help, version): exactly what commander produced. */
export function writeStdout(text: string): void {
  write(Deno.stdout, text);
}

/** Writes raw text to stderr (help shown after a usage error). */
export function writeStderr(text: string): void {
  write(Deno.stderr, text);
}

/**
 * Writes `chat: <message>` to stderr: what the command did, for the person at the terminal.
 * Like every `chat: …` line, it may carry what a peer sent: its control characters are shown
 * as U+FFFD (PROTOCOL.md section 9.6) and a line break as `\n`.
 */
export function printInfo(message: string): void {
  write(Deno.stderr, `${PROGRAM}: ${oneLine(message)}\n`);
}

/** Writes `chat: warning: <message>` to stderr. */
export function printWarning(message: string): void {
  write(Deno.stderr, `${PROGRAM}: warning: ${oneLine(message)}\n`);
}

/** Writes `chat: hint: <hint>` lines to stderr. */
export function printHints(hints: string[]): void {
  for (const hint of hints) write(Deno.stderr, `${PROGRAM}: hint: ${oneLine(hint)}\n`);
}

/**
 * Writes `chat: error: <message>`, then one error line per bad input line
 * (`chat: error: <source>:<line>: <reason>`), then the hints.
 */
export function printError(
  message: string,
  hints: string[] = [],
  problems: LineError[] = [],
  source?: string,
): void {
  write(Deno.stderr, `${PROGRAM}: error: ${oneLine(message)}\n`);
  for (const problem of problems) {
    const where = source ? `${source}:${problem.line}` : `line ${problem.line}`;
    write(Deno.stderr, `${PROGRAM}: error: ${where}: ${oneLine(problem.message)}\n`);
  }
  printHints(hints);
}

/**
 * `text` as one inert line of stderr: a line break shown as `\n` (a message never breaks the line
 * structure), any other control character as U+FFFD (it never reaches the terminal).
 */
function oneLine(text: string): string {
  return sanitize(text.replace(/\r?\n/g, "\\n"));
}

/** `text` as one shell word: as it is when that is safe, else in single quotes. */
export function shellWord(text: string): string {
  // "~" only inside a word: at its start the shell would expand it
  return /^[A-Za-z0-9_./:@%+=,-][A-Za-z0-9_./~:@%+=,-]*$/.test(text)
    ? text
    : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** A path as a shell word that no command takes for an option (`./-x`, not `-x`). */
export function pathWord(path: string): string {
  return shellWord(path.startsWith("-") ? `./${path}` : path);
}

/** How the commands in hints start (`chat`, or `chat --keys DIR`); see `setCommandPrefix`. */
let commandStart = "chat";

/**
 * Sets how the commands printed in hints start, so that they work pasted in the same shell:
 * `chat --keys DIR` when the command was given `--keys` (lib/cli/context.ts).
 */
export function setCommandPrefix(prefix: string): void {
  commandStart = prefix;
}

/** The hint for a file with bad lines (`count` of them). */
export function badLinesHint(path: string, count: number): string {
  return `fix or remove ${count === 1 ? "that line" : "those lines"} in ${path}`;
}

/**
 * What to do about a keystore failure, worded from its code and facts; every command in it
 * works pasted as printed (paths as shell words, `chat` with the `--keys` this run was given).
 */
export function keystoreHints(error: KeystoreError, chat: string = commandStart): string[] {
  const path = pathWord(error.path ?? "");
  const elsewhere = "or use another keys folder: --keys DIR or CHAT_KEYS=DIR";
  switch (error.code) {
    case "NO_FOLDER":
      return [`create it and your identity with: ${chat} keygen`, elsewhere];
    case "NO_IDENTITY":
      return [`create one with: ${chat} keygen`, elsewhere];
    case "NOT_A_FOLDER":
      return ["give a folder with --keys DIR or CHAT_KEYS=DIR"];
    case "IDENTITY_EXISTS":
      return [
        `print its public key with: ${chat} pubkey`,
        `replace it with: ${chat} keygen --force (the old secret key is lost)`,
      ];
    case "NOT_FOUND":
      return [`list the allowlist with: ${chat} allowed`];
    case "CONFLICT":
      return [
        "choose another label with --name LABEL, or free it first with: " +
        `${chat} revoke ${error.label === undefined ? "LABEL" : shellWord(error.label)}`,
      ];
    case "INSECURE_MODE":
      return [`make it private with: chmod 600 ${path}`];
    case "BAD_IDENTITY":
      return error.publicKey === undefined ? [] : [
        `the secret key decides: its public key is ${encodePublicKey(error.publicKey)}`,
        `${error.path} is derived from it: remove it with: rm ${path}, or restore the matching ` +
        "pair",
      ];
    case "BAD_FILE":
      return [badLinesHint(error.path ?? "the file", error.problems.length)];
    case "UNSAFE":
      return unsafeHints(error, path);
    case "IO":
      return ioHints(error, path);
  }
}

/** Hints for `UNSAFE`: a link, another user's entry, a mode that lets others write. */
function unsafeHints(error: KeystoreError, path: string): string[] {
  // `.lock` is an empty file chat creates again: removing it is the whole fix
  const isLock = error.path !== undefined && basename(error.path) === KEY_FILES.lock;
  const copyOver = `cp ${path} ${path}.new && mv ${path}.new ${path}`;
  if (error.isSymlink) {
    if (isLock) return [`remove the link (chat makes a new ${KEY_FILES.lock}): rm ${path}`];
    if (error.dangling) return [`it leads nowhere: remove it with: rm ${path}`];
    return [`replace it with a copy of the file it points to: ${copyOver}`];
  }
  if (error.owner !== undefined && error.isFolder) {
    return [
      "use a keys folder of your own: --keys DIR or CHAT_KEYS=DIR",
      `or, if its files are yours, check them and take it over (as root): ` +
      `chown -R ${error.me} ${path}`,
    ];
  }
  if (error.owner !== undefined) {
    return [
      isLock
        ? `remove it (chat makes a new one): rm ${path}`
        : `check it, then make it yours with: ${copyOver}`,
      `or (as root): chown ${error.me} ${path}`,
    ];
  }
  if (error.mode !== undefined && error.isFolder) {
    return [
      `make it private with: chmod 700 ${path}`,
      `then check ${KEY_FILES.allowed} and ${KEY_FILES.knownServers} in it: ` +
      "someone may have changed them",
    ];
  }
  if (error.mode !== undefined) {
    return [`check it, then remove their write access with: chmod go-w ${path}`];
  }
  if (error.replaced) return ["check who else writes the keys folder, then try again"];
  return [];
}

/** Hints for `IO`: what to do about what the system said, and whether the file was touched. */
function ioHints(error: KeystoreError, path: string): string[] {
  const hints: string[] = [];
  switch (error.os) {
    case "permission-denied":
      hints.push(
        `check the owner and mode of it and its folder: ls -ld ${path} ` +
          pathWord(dirname(error.path ?? ".")),
      );
      break;
    case "no-space":
    case "quota":
      hints.push("free some disk space");
      break;
    case "read-only":
      hints.push("use a writable keys folder: --keys DIR or CHAT_KEYS=DIR");
      break;
  }
  if (error.existed !== undefined) {
    hints.push(error.existed ? `${error.path} is unchanged` : `${error.path} was not created`);
  }
  return hints;
}

/**
 * Prints any error the way the command line shows it and returns the exit code: `UserError` and
 * `KeystoreError` with their hints, anything else as an unexpected error (a bug) with a hint to
 * report it; the stack trace only with `CHAT_DEBUG=1`.
 */
export function reportError(error: unknown): number {
  if (error instanceof UserError) {
    printError(error.message, error.hints, error.problems, error.source);
    return error.exitCode;
  }
  if (error instanceof KeystoreError) {
    printError(error.message, keystoreHints(error), error.problems, error.source);
    return Exit.ERROR;
  }
  const message = error instanceof Error ? error.message : String(error);
  printError(`unexpected error: ${message}`, [
    "this is a bug: please report it with the command you ran" +
    (debugging() ? "" : " (CHAT_DEBUG=1 shows the stack trace)"),
  ]);
  if (debugging() && error instanceof Error && error.stack) write(Deno.stderr, error.stack + "\n");
  return Exit.ERROR;
}

function debugging(): boolean {
  try {
    return Deno.env.get("CHAT_DEBUG") === "1";
  } catch {
    return false;
  }
}
