/**
 * The line-based files of the keys folder, as text: the allowlist (`KEY [LABEL]` lines) and
 * `known_servers` (`host:port KEY` lines), with `#` comments and blank lines kept for rewriting.
 * Every bad line is reported with its number, never dropped. Pure: no files, no output.
 * @module
 */
import { canonicalHost, isIPv6 } from "./address.ts";
import { encodePublicKey, parsePublicKey, sameKey } from "./key_text.ts";
import { validateName } from "../protocol/names.ts";
import type { LineError } from "../errors.ts";

/** A line of a file that could not be parsed: 1-based line number and the reason. */
export type { LineError };

/** The result of parsing a line-based file: good entries, bad lines, and the original lines. */
export interface ParsedFile<T> {
  /** Entries in file order. */
  entries: T[];
  /** Lines that could not be parsed, in file order; never silently dropped. */
  errors: LineError[];
  /** The file's lines without line endings, to rewrite it with comments kept. */
  lines: string[];
}

/** One allowlist entry. */
export interface AllowEntry {
  /** The 32-byte public key. */
  key: Uint8Array;
  /** Optional label, unique within the allowlist. */
  label?: string;
  /** 1-based line number in the file (or in the input it came from). */
  line: number;
}

/**
 * Parses one allowlist line, `KEY [LABEL] [# comment]`. Returns `undefined` for a blank or
 * comment line, and throws a `SyntaxError` for a bad one.
 *
 * @example
 * ```ts
 * import { parseAllowLine } from "./key_files.ts";
 * parseAllowLine("# servers I trust"); // undefined
 * ```
 */
export function parseAllowLine(line: string): { key: Uint8Array; label?: string } | undefined {
  const fields = fieldsOf(line);
  if (fields.length === 0) return undefined;
  if (fields.length > 2) {
    throw new SyntaxError(
      `expected "KEY [LABEL]", found ${fields.length} fields (a label has no spaces)`,
    );
  }
  const key = parsePublicKey(fields[0]);
  if (fields.length === 1) return { key };
  return { key, label: validateName(fields[1], "label") };
}

/**
 * Formats an allowlist line: the key in `chat1…` form, then the label if any. Throws a
 * `SyntaxError` for an invalid label (a newline, a space, too long…).
 */
export function formatAllowLine(key: Uint8Array, label?: string): string {
  const text = encodePublicKey(key);
  return label === undefined ? text : `${text} ${validateName(label, "label")}`;
}

/**
 * Parses allowlist text. Every bad line is returned in `errors` with its line number, including a
 * key listed twice and a label used twice.
 *
 * @example
 * ```ts
 * import { parseAllowlist } from "./key_files.ts";
 * parseAllowlist("# none yet\n\nnot-a-key\n").errors[0].line; // 3
 * ```
 */
export function parseAllowlist(text: string): ParsedFile<AllowEntry> {
  const lines = splitLines(text);
  const entries: AllowEntry[] = [];
  const errors: LineError[] = [];
  // Maps, not scans: a server re-reads this file for every handshake.
  const lineOfKey = new Map<string, number>();
  const lineOfLabel = new Map<string, number>();
  lines.forEach((raw, index) => {
    const line = index + 1;
    try {
      const parsed = parseAllowLine(raw);
      if (!parsed) return;
      const keyText = encodePublicKey(parsed.key);
      const keyLine = lineOfKey.get(keyText);
      if (keyLine !== undefined) {
        throw new SyntaxError(`the key is already listed on line ${keyLine}`);
      }
      const labelLine = parsed.label === undefined ? undefined : lineOfLabel.get(parsed.label);
      if (labelLine !== undefined) {
        throw new SyntaxError(`the label "${parsed.label}" is already used on line ${labelLine}`);
      }
      lineOfKey.set(keyText, line);
      if (parsed.label !== undefined) lineOfLabel.set(parsed.label, line);
      entries.push({ ...parsed, line });
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      errors.push({ line, message: error.message });
    }
  });
  return { entries, errors, lines };
}

/** One pinned server key. */
export interface KnownServer {
  /** `host:port` in the form of `normalizeAddress` (IPv6 in brackets). */
  address: string;
  /** The server's 32-byte static public key. */
  key: Uint8Array;
  /** 1-based line number. */
  line: number;
}

/**
 * Checks a server address `host:port` (IPv6 as `[::1]:7447`) and returns it with the host in
 * canonical form (`canonicalHost`: every spelling of an IP address is one, names lowercased), so
 * that one server has one pin. Throws a `SyntaxError` saying what is wrong.
 *
 * @example
 * ```ts
 * import { normalizeAddress } from "./key_files.ts";
 * normalizeAddress("Example.org:7447"); // "example.org:7447"
 * normalizeAddress("127.1:07447"); // "127.0.0.1:7447"
 * ```
 */
export function normalizeAddress(address: string): string {
  const fail = (reason: string) =>
    new SyntaxError(`invalid server address ${JSON.stringify(address)}: ${reason}`);
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/.exec(address);
  if (!match) throw fail('expected "host:port" (IPv6 as "[::1]:port")');
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw fail(`port ${match[2]} is not in 1-65535`);
  let host: string;
  try {
    host = canonicalHost(match[1]);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw fail(error.message);
  }
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Formats a `known_servers` line: `host:port chat1…`.
 */
export function formatKnownServerLine(address: string, key: Uint8Array): string {
  return `${normalizeAddress(address)} ${encodePublicKey(key)}`;
}

/**
 * Parses `known_servers` text: `host:port KEY` lines, `#` comments and blank lines. An address
 * listed twice is a bad line.
 *
 * @example
 * ```ts
 * import { parseKnownServers } from "./key_files.ts";
 * parseKnownServers("example.org:7447\n").errors[0].line; // 1
 * ```
 */
export function parseKnownServers(text: string): ParsedFile<KnownServer> {
  const lines = splitLines(text);
  const entries: KnownServer[] = [];
  const errors: LineError[] = [];
  lines.forEach((raw, index) => {
    const line = index + 1;
    try {
      const fields = fieldsOf(raw);
      if (fields.length === 0) return;
      if (fields.length !== 2) {
        throw new SyntaxError(`expected "HOST:PORT KEY", found ${fields.length} field(s)`);
      }
      const address = normalizeAddress(fields[0]);
      const key = parsePublicKey(fields[1]);
      const earlier = entries.find((entry) => entry.address === address);
      // two spellings of one address (written before addresses were canonical) with one key
      if (earlier && sameKey(earlier.key, key)) return;
      if (earlier) throw new SyntaxError(`${address} is already listed on line ${earlier.line}`);
      entries.push({ address, key, line });
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      errors.push({ line, message: error.message });
    }
  });
  return { entries, errors, lines };
}

/**
 * Pins `key` for `addresses` (normalized) in parsed `known_servers`: returns the key pinned
 * before (the first that differs from `key`, else the first found) and the new lines, or no
 * lines when nothing changes. Without `replace` (a first contact) only addresses without a pin
 * get one, and if any has another key, nothing changes; with `replace` every address gets `key`.
 *
 * @example
 * ```ts
 * import { parseKnownServers, pinLines } from "./key_files.ts";
 * const key = new Uint8Array(32).fill(3);
 * pinLines(parseKnownServers(""), ["example.org:7447"], key, false).lines?.length; // 1
 * ```
 */
export function pinLines(
  servers: ParsedFile<KnownServer>,
  addresses: readonly string[],
  key: Uint8Array,
  replace: boolean,
): { before?: Uint8Array; lines?: string[] } {
  const old = addresses.map((address) => servers.entries.find((e) => e.address === address));
  const before = old.find((entry) => entry && !sameKey(entry.key, key)) ??
    old.find((entry) => entry);
  if (before && !sameKey(before.key, key) && !replace) return { before: before.key };
  const lines = [...servers.lines];
  let changed = false;
  addresses.forEach((address, index) => {
    const entry = old[index];
    if (entry && sameKey(entry.key, key)) return;
    const line = formatKnownServerLine(address, key);
    if (entry) lines[entry.line - 1] = line;
    else lines.push(line);
    changed = true;
  });
  return { before: before?.key, lines: changed ? lines : undefined };
}

/**
 * Splits text into lines without their endings (`\n` or `\r\n`); a final line ending does not
 * start another line.
 */
export function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n").map((line) => line.endsWith("\r") ? line.slice(0, -1) : line);
  if (lines[lines.length - 1] === "") lines.pop();
  return lines;
}

/** The fields of a line, up to a field that starts a `#` comment. */
function fieldsOf(line: string): string[] {
  const fields = line.trim().split(/[ \t]+/).filter((field) => field !== "");
  const comment = fields.findIndex((field) => field.startsWith("#"));
  return comment === -1 ? fields : fields.slice(0, comment);
}
