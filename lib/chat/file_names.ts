/**
 * File names offered by a peer, made safe to create in a downloads folder, and the numbered
 * names (`report (1).pdf`) that keep a download from overwriting a file. Pure: no I/O.
 * @module
 */

/** The longest safe name, in UTF-8 bytes: room under the usual 255-byte limit for a part file. */
export const MAX_FILE_NAME_BYTES = 200;

/** What an empty name becomes. */
const FALLBACK_NAME = "file";

/**
 * What never belongs in a file name: controls (C0, DEL, C1), every format character (`Cf`: the
 * bidi marks, embeddings, overrides and isolates, U+200B-U+200D, U+2060-U+2064, U+FEFF, the soft
 * hyphen, tags), the whole tag block U+E0000-U+E007F, the line and paragraph separators, and
 * unpaired surrogates (they have no UTF-8 form). All are invisible or rewrite what a terminal or
 * a file manager shows, so a name could look like another one.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\u{e0000}-\u{e007f}]/gu;

/** Characters Windows forbids in names (`:` would also open an NTFS alternate data stream). */
const WINDOWS_FORBIDDEN = /[<>:"|?*]/g;

/** Path separators of any system: only the last component of an offered name is kept. */
const SEPARATORS = /[/\\]/;

/**
 * Windows device names, reserved with any extension and before trailing spaces (`nul.txt`,
 * `CON .log`), including the superscript-digit ports Windows also treats as devices.
 */
const WINDOWS_RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$) *(\.|$)/i;

/** Double extensions kept whole when numbering or cutting (`archive (1).tar.gz`). */
const DOUBLE_EXTENSION = /\.tar\.(gz|bz2|xz|zst)$/i;

/** A single extension: a dot and up to 16 characters that are neither dots nor spaces. */
const EXTENSION = /\.[^.\s]{1,16}$/u;

/**
 * A name offered by an untrusted peer, reduced to a safe base name for a downloads folder:
 *
 * 1. invisible and control characters are dropped (see `INVISIBLE`), then the name is
 *    NFC-normalised;
 * 2. only the last non-empty path component is kept (split on both `/` and `\`);
 * 3. `<>:"|?*` become `_`;
 * 4. leading dots and white space go (no hidden files, no `.` or `..`), and trailing ones (Windows
 *    drops them, so `a.txt.` would name `a.txt`);
 * 5. a Windows device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, with or without an extension, in
 *    any case) gets a `_` prefix;
 * 6. the name is cut to `MAX_FILE_NAME_BYTES` UTF-8 bytes, keeping the extension (`.pdf`, or a
 *    `.tar.gz`-style double one) and cutting the stem between code points;
 * 7. a name that ends up empty becomes `file`.
 *
 * The result never contains a separator, never starts with a dot, and is never `.` or `..`.
 *
 * @example
 * ```ts
 * import { safeFileName } from "./file_names.ts";
 * safeFileName("../../etc/passwd"); // "passwd"
 * safeFileName("C:\\Windows\\evil.exe"); // "evil.exe"
 * safeFileName("invoice\u202Efdp.exe"); // "invoicefdp.exe": no bidi override to hide ".exe"
 * safeFileName(".bashrc"); // "bashrc"
 * safeFileName("con.txt"); // "_con.txt"
 * safeFileName("what?.txt"); // "what_.txt"
 * safeFileName(".."); // "file"
 * ```
 */
export function safeFileName(offered: string): string {
  if (typeof offered !== "string") {
    throw new TypeError(`a file name must be a string, got ${typeof offered}`);
  }
  // dropped before normalising: an invisible character between a letter and its accent
  // would otherwise keep the pair from composing
  const visible = offered.replace(INVISIBLE, "").normalize("NFC");
  const last = visible.split(SEPARATORS).filter((part) => part !== "").at(-1) ?? "";
  let name = trimDotsAndSpaces(last.replace(WINDOWS_FORBIDDEN, "_"));
  if (WINDOWS_RESERVED.test(name)) name = "_" + name;
  // the prefix comes first so that the cut keeps the name within the cap
  name = trimDotsAndSpaces(capped(name, ""));
  return name === "" ? FALLBACK_NAME : name;
}

/**
 * `name` with ` (n)` before its extension, for the `n`th name tried when `name` is taken; the
 * stem is cut so that the result stays within `MAX_FILE_NAME_BYTES`. `name` should be a result
 * of `safeFileName`. Throws a RangeError unless `n` is a positive safe integer.
 *
 * @example
 * ```ts
 * import { numberedName } from "./file_names.ts";
 * numberedName("report.pdf", 1); // "report (1).pdf"
 * numberedName("archive.tar.gz", 1); // "archive (1).tar.gz"
 * numberedName("notes", 2); // "notes (2)"
 * ```
 */
export function numberedName(name: string, n: number): string {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new RangeError(`a file name number must be a positive integer, got ${n}`);
  }
  return capped(name, ` (${n})`);
}

/** `name` without leading or trailing dots and white space. */
function trimDotsAndSpaces(name: string): string {
  return name.replace(/^[\s.]+/u, "").replace(/[\s.]+$/u, "");
}

/**
 * `stem + suffix + extension` of `name`, with the stem cut on a code-point boundary so that the
 * whole fits `MAX_FILE_NAME_BYTES`. (An extension is at most 16 characters, 65 bytes, and a
 * suffix at most 19, so the stem always keeps over 100 bytes.)
 */
function capped(name: string, suffix: string): string {
  const [stem, extension] = splitExtension(name);
  const room = MAX_FILE_NAME_BYTES - utf8Length(suffix) - utf8Length(extension);
  return cutToBytes(stem, room) + suffix + extension;
}

/** `[stem, extension]`: `report.pdf` is `["report", ".pdf"]`; the stem is never empty. */
function splitExtension(name: string): [string, string] {
  const match = DOUBLE_EXTENSION.exec(name) ?? EXTENSION.exec(name);
  if (!match || match.index === 0) return [name, ""];
  return [name.slice(0, match.index), match[0]];
}

/** The longest prefix of `text` that is at most `limit` UTF-8 bytes, whole code points only. */
function cutToBytes(text: string, limit: number): string {
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    bytes += utf8Length(char);
    if (bytes > limit) break;
    end += char.length; // 2 for a surrogate pair: the cut never falls inside one
  }
  return text.slice(0, end);
}

/** The length of `text` in UTF-8 bytes (unpaired surrogates count as U+FFFD, 3 bytes). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0)!;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}
