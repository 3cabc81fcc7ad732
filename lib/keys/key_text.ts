/**
 * Key text: public keys (`chat1…`, bech32 per BIP 173, or the 44-character standard base64 that
 * WireGuard uses), secret keys (`CHAT-SECRET-KEY-1…`), fingerprints, and the identity file that
 * holds a secret key. The allowlist and `known_servers` lines are in key_files.ts. Pure: no
 * files, no output.
 * @module
 */
import { base64, bech32, bech32m } from "@scure/base";
import { sha256 } from "@noble/hashes/sha2.js";
import { KEY_BYTES, PUBLIC_KEY_HRP, SECRET_KEY_HRP } from "../protocol/constants.ts";
import { type KeyPair, primitives } from "../protocol/crypto.ts";
import { abytes } from "../protocol/bytes.ts";

export type { KeyPair };

/** Length of a public key in bech32 text: `chat1`, 52 data characters, 6 checksum characters. */
export const PUBLIC_KEY_TEXT_LENGTH: number = PUBLIC_KEY_HRP.length + 1 + 52 + 6;
/** Length of a public key in standard base64 (with one `=` of padding), the WireGuard form. */
export const PUBLIC_KEY_BASE64_LENGTH = 44;
/** Length of a secret key in bech32 text: `CHAT-SECRET-KEY-1` and 58 characters. */
export const SECRET_KEY_TEXT_LENGTH: number = SECRET_KEY_HRP.length + 1 + 52 + 6;

const BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=$/;
// Base64 characters whose two low bits are zero: the only ones allowed before a single '='.
const BASE64_LAST_CHARACTERS = "AEIMQUYcgkosw048";

// --- Public keys ----------------------------------------------------------------

/**
 * Encodes a 32-byte public key as `chat1…` text (bech32, lowercase).
 *
 * @example
 * ```ts
 * import { encodePublicKey } from "./key_text.ts";
 * encodePublicKey(new Uint8Array(32)); // "chat1qqqq…" (63 characters)
 * ```
 */
export function encodePublicKey(publicKey: Uint8Array): string {
  checkBytes("public key", publicKey);
  return bech32.encode(PUBLIC_KEY_HRP, bech32.toWords(publicKey), false);
}

/**
 * Encodes a 32-byte public key as 44 characters of standard base64 (the WireGuard form).
 *
 * @example
 * ```ts
 * import { encodePublicKeyBase64 } from "./key_text.ts";
 * encodePublicKeyBase64(new Uint8Array(32)); // "AAAA…AAA="
 * ```
 */
export function encodePublicKeyBase64(publicKey: Uint8Array): string {
  checkBytes("public key", publicKey);
  return base64.encode(publicKey);
}

/**
 * Parses a public key given as `chat1…` (bech32) or as 44 characters of standard base64, and
 * returns its 32 bytes. Throws a `SyntaxError` that says why, for example
 * `cannot parse public key "chat1qqqqqqqq…": bad checksum (a typing error?)`.
 * White space is not trimmed: callers trim what they read.
 *
 * @example
 * ```ts
 * import { encodePublicKey, parsePublicKey } from "./key_text.ts";
 * const key = new Uint8Array(32).fill(7);
 * parsePublicKey(encodePublicKey(key)); // the same 32 bytes
 * ```
 */
export function parsePublicKey(text: string): Uint8Array {
  if (typeof text !== "string") throw new TypeError("a public key must be a string");
  const lower = text.toLowerCase();
  // Never echo a secret key back, not even in part.
  if (lower.startsWith(SECRET_KEY_HRP + "1")) {
    throw new SyntaxError(
      `cannot parse public key "${SECRET_KEY_HRP.toUpperCase()}1…": ` +
        "this is a secret key, not a public key (keep it private)",
    );
  }
  const fail = (reason: string) =>
    new SyntaxError(`cannot parse public key ${preview(text)}: ${reason}`);
  if (text.length === 0) throw fail("it is empty");
  if (/\s/.test(text)) {
    if (text.trim() !== text) throw fail("it has white space around it");
    throw fail("it contains white space");
  }
  // A valid key followed by anything: say so rather than "bad checksum".
  for (const length of [PUBLIC_KEY_TEXT_LENGTH, PUBLIC_KEY_BASE64_LENGTH]) {
    if (text.length > length && tryParse(text.slice(0, length))) {
      throw fail(`unexpected characters after the key ("${text.slice(length, length + 8)}…")`);
    }
  }
  // 44 characters ending in '=' can only be base64 (bech32 has no '='), even if they start "chat1".
  if (text.length === PUBLIC_KEY_BASE64_LENGTH && text.endsWith("=")) {
    return parseBase64Key(text, fail);
  }
  const singleCase = text === lower || text === text.toUpperCase();
  if (lower.startsWith(PUBLIC_KEY_HRP + "1") || (singleCase && looksLikeBech32(lower))) {
    return decodeBech32(text, PUBLIC_KEY_HRP, PUBLIC_KEY_TEXT_LENGTH, fail);
  }
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(text) && (text.length >= 40 || text.includes("="))) {
    return parseBase64Key(text, fail);
  }
  throw fail(
    `expected ${PUBLIC_KEY_HRP}1… (${PUBLIC_KEY_TEXT_LENGTH} characters) or ` +
      `${PUBLIC_KEY_BASE64_LENGTH} characters of base64`,
  );
}

/** Whether `text` is a valid public key in either form. */
export function isPublicKey(text: string): boolean {
  return tryParse(text);
}

function tryParse(text: string): boolean {
  try {
    parsePublicKey(text);
    return true;
  } catch {
    return false;
  }
}

function parseBase64Key(text: string, fail: (reason: string) => SyntaxError): Uint8Array {
  if (/[-_]/.test(text)) {
    throw fail("it looks like URL-safe base64 ('-', '_'); use standard base64 ('+', '/')");
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text) || text.length % 4 !== 0) {
    throw fail(
      `base64 of the wrong length: ${text.length} characters, expected ` +
        `${PUBLIC_KEY_BASE64_LENGTH}`,
    );
  }
  // RFC 4648 §3.5: the unused low bits of the last character must be zero; one spelling per key.
  if (BASE64_KEY.test(text) && !BASE64_LAST_CHARACTERS.includes(text[42])) {
    throw fail("non-canonical base64 (the character before '=' has stray low bits)");
  }
  return decodeKey(() => base64.decode(text), fail, "invalid base64", "base64 of");
}

// --- Secret keys ----------------------------------------------------------------

/**
 * Encodes a 32-byte secret key as `CHAT-SECRET-KEY-1…` (bech32, uppercase, as age does).
 *
 * @example
 * ```ts
 * import { encodeSecretKey } from "./key_text.ts";
 * encodeSecretKey(new Uint8Array(32)).startsWith("CHAT-SECRET-KEY-1"); // true
 * ```
 */
export function encodeSecretKey(secretKey: Uint8Array): string {
  checkBytes("secret key", secretKey);
  return bech32.encode(SECRET_KEY_HRP, bech32.toWords(secretKey), false).toUpperCase();
}

/**
 * Parses `CHAT-SECRET-KEY-1…` text (either case) into 32 bytes. Throws a `SyntaxError` whose
 * message never contains the text itself.
 *
 * @example
 * ```ts
 * import { encodeSecretKey, parseSecretKey } from "./key_text.ts";
 * parseSecretKey(encodeSecretKey(new Uint8Array(32).fill(1))); // the same 32 bytes
 * ```
 */
export function parseSecretKey(text: string): Uint8Array {
  if (typeof text !== "string") throw new TypeError("a secret key must be a string");
  const fail = (reason: string) => new SyntaxError(`cannot parse secret key: ${reason}`);
  if (text.length === 0) throw fail("it is empty");
  if (/\s/.test(text)) throw fail("it contains white space");
  return decodeBech32(text, SECRET_KEY_HRP, SECRET_KEY_TEXT_LENGTH, fail);
}

// --- bech32 -----------------------------------------------------------------------

function looksLikeBech32(lower: string): boolean {
  const separator = lower.lastIndexOf("1");
  if (separator < 1) return false;
  return [...lower.slice(separator + 1)].every((c) => BECH32_CHARSET.includes(c));
}

/** Decodes bech32 text with the expected prefix into exactly 32 bytes, or throws `fail(reason)`. */
function decodeBech32(
  text: string,
  hrp: string,
  textLength: number,
  fail: (reason: string) => SyntaxError,
): Uint8Array {
  const lower = text.toLowerCase();
  // BIP 173: all lowercase or all uppercase, never mixed.
  if (text !== lower && text !== text.toUpperCase()) throw fail("it mixes upper and lower case");
  const expected = `${hrp}1`;
  if (!lower.startsWith(expected)) {
    const separator = lower.lastIndexOf("1");
    if (separator < 1) throw fail(`it does not start with "${expected}"`);
    throw fail(`wrong prefix "${lower.slice(0, separator + 1)}", expected "${expected}"`);
  }
  const data = lower.slice(expected.length);
  for (let i = 0; i < data.length; i++) {
    if (!BECH32_CHARSET.includes(data[i])) {
      const position = expected.length + i + 1;
      throw fail(`invalid character ${JSON.stringify(data[i])} at position ${position}`);
    }
  }
  if (data.length < 6) throw fail(`it is too short (${text.length} characters)`);
  let words: number[];
  try {
    words = bech32.decode(lower as `${string}1${string}`, false).words;
  } catch {
    if (isBech32m(lower)) throw fail("it is bech32m (BIP 350); expected bech32 (BIP 173)");
    if (text.length !== textLength) {
      throw fail(`it is ${text.length} characters long, expected ${textLength}`);
    }
    throw fail("bad checksum (a typing error?)");
  }
  return decodeKey(() => bech32.fromWords(words), fail, "it has non-zero padding bits", "it holds");
}

/**
 * The 32 bytes `decode` returns from text a user gave, or `fail(reason)`: `undecodable` if it
 * throws, `holding N bytes, expected 32` if it returns another length. The parse-side twin of
 * `checkBytes`, whose RangeError is for a caller's bug, not a typing error.
 */
function decodeKey(
  decode: () => Uint8Array,
  fail: (reason: string) => SyntaxError,
  undecodable: string,
  holding: string,
): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = decode();
  } catch {
    throw fail(undecodable);
  }
  if (bytes.length !== KEY_BYTES) {
    throw fail(`${holding} ${bytes.length} bytes, expected ${KEY_BYTES}`);
  }
  return bytes;
}

function isBech32m(lower: string): boolean {
  try {
    bech32m.decode(lower as `${string}1${string}`, false);
    return true;
  } catch {
    return false;
  }
}

function preview(text: string): string {
  return JSON.stringify(text.length > 14 ? text.slice(0, 12) + "…" : text);
}

/** `bytes` if it is a key's 32 bytes (or `length`); abytes (protocol/bytes.ts) with a label. */
export function checkBytes(label: string, bytes: Uint8Array, length: number = KEY_BYTES) {
  return abytes(bytes, length, label);
}

// --- Fingerprints and comparison --------------------------------------------------

/**
 * The short fingerprint shown next to keys: the first 8 bytes of SHA-256 over the 32 raw
 * public key bytes, as lowercase hex in four groups of four, joined by `:`.
 *
 * @example
 * ```ts
 * import { fingerprint } from "./key_text.ts";
 * fingerprint(new Uint8Array(32)); // "6668:7aad:f862:bd77"
 * ```
 */
export function fingerprint(publicKey: Uint8Array): string {
  checkBytes("public key", publicKey);
  const hex = [...sha256(publicKey).subarray(0, 8)]
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("");
  return hex.match(/.{4}/g)!.join(":");
}

/**
 * Whether two keys are the same bytes. Not constant time: public keys are not secret.
 */
export function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// --- The identity file ------------------------------------------------------------

/**
 * The text of the identity file: two comment lines (a warning and the public key) and the
 * secret key.
 *
 * @example
 * ```ts
 * import { formatIdentity, parseIdentity } from "./key_text.ts";
 * import { primitives } from "../protocol/crypto.ts";
 * const pair = primitives.generateKeyPair();
 * parseIdentity(formatIdentity(pair)).publicKey; // equals pair.publicKey
 * ```
 */
export function formatIdentity(pair: KeyPair): string {
  return [
    "# chat secret key: keep private",
    `# public key: ${encodePublicKey(pair.publicKey)}`,
    encodeSecretKey(pair.secretKey),
    "",
  ].join("\n");
}

/**
 * Parses an identity file: blank lines and `#` comments are ignored, and exactly one line must
 * hold a secret key. The public key is derived from the secret key (the comment is not trusted).
 * Throws a `SyntaxError` naming the line.
 */
export function parseIdentity(text: string): KeyPair {
  let found: { line: number; secretKey: Uint8Array } | undefined;
  // "\n" or "\r\n" line endings: the trim takes the "\r", and blank lines are skipped
  for (const [index, raw] of text.split("\n").entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (found) {
      throw new SyntaxError(
        `line ${index + 1}: a second secret key (the first is on line ${found.line})`,
      );
    }
    try {
      found = { line: index + 1, secretKey: parseSecretKey(line) };
    } catch (error) {
      throw new SyntaxError(`line ${index + 1}: ${(error as Error).message}`);
    }
  }
  if (!found) throw new SyntaxError("no secret key in the file");
  return { secretKey: found.secretKey, publicKey: primitives.publicKeyOf(found.secretKey) };
}
