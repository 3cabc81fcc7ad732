/**
 * The server's pending invites, as text: the `invites` file of the keys folder, one
 * `ID SHA256 EXPIRES USES [LABEL]` line per invite. Only the SHA-256 of each secret is kept, so
 * the file lets nobody in; a secret presented in a handshake is hashed and compared with every
 * line in constant time. Also what redeeming one invite comes to, decided before anything is
 * written. Pure: no files, no output.
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesOfHex, hexOf } from "../protocol/bytes.ts";
import { validateName } from "../protocol/names.ts";
import type { AllowEntry, LineError, ParsedFile } from "./key_files.ts";
import { splitLines } from "./key_files.ts";
import { INVITE_SECRET_BYTES } from "./invite_token.ts";
import { checkBytes, sameKey } from "./key_text.ts";

/** The most uses one invite may have. */
export const MAX_INVITE_USES = 1_000_000;
/** An invite's id: 8 lowercase hex digits, random (it says nothing about the secret). */
const ID = /^[0-9a-f]{8}$/;
const HASH = /^[0-9a-f]{64}$/;
/** The expiry as written: ISO 8601 in UTC, to the second. */
const EXPIRES = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
/** The longest label (protocol/names.ts: 1 to 32 characters). */
const MAX_LABEL_LENGTH = 32;

/** One pending invite. */
export interface InviteEntry {
  /** Its id, to list and revoke it by. */
  id: string;
  /** SHA-256 of its secret. */
  hash: Uint8Array;
  /** When it stops working, in ms since the epoch (whole seconds). */
  expiresAt: number;
  /** How many more keys it lets in (at least 1: an invite used up is removed). */
  uses: number;
  /** The label the key it lets in gets on the allowlist; else the client's declared name. */
  label?: string;
  /** 1-based line number in the file. */
  line: number;
}

/** SHA-256 of an invite secret: what the server keeps. */
export function hashSecret(secret: Uint8Array): Uint8Array {
  return sha256(checkBytes("invite secret", secret, INVITE_SECRET_BYTES));
}

/**
 * Parses one line of `invites`: undefined for a blank or comment line, a SyntaxError for a bad
 * one.
 *
 * @example
 * ```ts
 * import { formatInviteLine, parseInviteLine } from "./invites.ts";
 * const line = formatInviteLine({
 *   id: "0a1b2c3d",
 *   hash: new Uint8Array(32),
 *   expiresAt: Date.UTC(2030, 0, 1),
 *   uses: 1,
 *   label: "bob",
 * });
 * line; // "0a1b2c3d 0000…0000 2030-01-01T00:00:00Z 1 bob"
 * parseInviteLine(line)?.label; // "bob"
 * ```
 */
export function parseInviteLine(line: string): Omit<InviteEntry, "line"> | undefined {
  const fields = line.replace(/#.*$/, "").trim().split(/\s+/).filter((f) => f !== "");
  if (fields.length === 0) return undefined;
  if (fields.length < 4 || fields.length > 5) {
    throw new SyntaxError(
      `expected "ID SHA256 EXPIRES USES [LABEL]", found ${fields.length} fields`,
    );
  }
  const [id, hash, expires, uses, label] = fields;
  if (!ID.test(id)) throw new SyntaxError(`the id "${id}" is not 8 lowercase hex digits`);
  if (!HASH.test(hash)) throw new SyntaxError("the hash is not 64 lowercase hex digits");
  const expiresAt = EXPIRES.test(expires) ? Date.parse(expires) : NaN;
  if (Number.isNaN(expiresAt)) {
    throw new SyntaxError(`the expiry "${expires}" is not a time like 2030-01-31T12:00:00Z`);
  }
  const count = /^[1-9]\d{0,6}$/.test(uses) ? Number(uses) : NaN;
  if (!(count <= MAX_INVITE_USES)) {
    throw new SyntaxError(`the uses "${uses}" is not a number from 1 to ${MAX_INVITE_USES}`);
  }
  const entry = { id, hash: bytesOfHex(hash), expiresAt, uses: count };
  return label === undefined ? entry : { ...entry, label: validateName(label, "label") };
}

/** The line of an invite (the label validated: a SyntaxError if it is not a name). */
export function formatInviteLine(entry: Omit<InviteEntry, "line">): string {
  const expires = new Date(Math.floor(entry.expiresAt / 1000) * 1000).toISOString()
    .replace(".000Z", "Z");
  const fields = [entry.id, hexOf(entry.hash), expires, String(entry.uses)];
  if (entry.label !== undefined) fields.push(validateName(entry.label, "label"));
  return fields.join(" ");
}

/** Parses `invites`; every bad line is reported with its number, never dropped. */
export function parseInvites(text: string): ParsedFile<InviteEntry> {
  const lines = splitLines(text);
  const entries: InviteEntry[] = [];
  const errors: LineError[] = [];
  lines.forEach((line, index) => {
    try {
      const entry = parseInviteLine(line);
      if (!entry) return;
      if (entries.some((other) => other.id === entry.id)) {
        throw new SyntaxError(`the id ${entry.id} is on an earlier line too`);
      }
      entries.push({ ...entry, line: index + 1 });
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      errors.push({ line: index + 1, message: error.message });
    }
  });
  return { entries, errors, lines };
}

/** A new id that none of `entries` has. */
export function newInviteId(entries: readonly InviteEntry[]): string {
  while (true) {
    const id = hexOf(crypto.getRandomValues(new Uint8Array(4)));
    if (!entries.some((entry) => entry.id === id)) return id;
  }
}

/**
 * Whether `a` and `b` are the same bytes, in time that depends only on their length: a hash of
 * a guessed secret must not tell how much of it was right.
 */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let i = 0; i < a.length; i++) difference |= a[i] ^ b[i];
  return difference === 0;
}

/** Why an invite secret let nobody in: no invite has it (or it was used up), or it expired. */
export type InviteRefusal = "unknown" | "expired";

/** What redeeming an invite came to: the label the key was allowed under, or why not. */
export type InviteRedemption = { label: string; id?: string } | { refused: InviteRefusal };

/** What `findInvite` found. */
export type FoundInvite = { entry: InviteEntry } | { refused: InviteRefusal };

/**
 * The invite whose hash is the hash of `secret`, compared with every entry (no early exit), or
 * why there is none that works at `now`.
 */
export function findInvite(
  entries: readonly InviteEntry[],
  secret: Uint8Array,
  now: number,
): FoundInvite {
  const hash = hashSecret(secret);
  let found: InviteEntry | undefined;
  for (const entry of entries) {
    if (constantTimeEqual(entry.hash, hash)) found = entry;
  }
  if (!found) return { refused: "unknown" };
  if (now >= found.expiresAt) return { refused: "expired" };
  return { entry: found };
}

/**
 * The label a key let in by an invite gets: `wanted` if no other key has it, else `wanted-2`,
 * `wanted-3`… (cut to the name length). `undefined` only if all of those are taken.
 *
 * @example
 * ```ts
 * import { freeLabel } from "./invites.ts";
 * const bob = { key: new Uint8Array(32).fill(1), label: "bob", line: 1 };
 * freeLabel([bob], "bob", new Uint8Array(32).fill(2)); // "bob-2"
 * ```
 */
export function freeLabel(
  entries: readonly AllowEntry[],
  wanted: string,
  key: Uint8Array,
): string | undefined {
  const taken = new Set(
    entries.filter((entry) => !sameKey(entry.key, key)).map((entry) => entry.label),
  );
  if (!taken.has(wanted)) return wanted;
  for (let n = 2; n < 1000; n++) {
    const suffix = `-${n}`;
    const label = wanted.slice(0, MAX_LABEL_LENGTH - suffix.length) + suffix;
    if (!taken.has(label)) return label;
  }
  return undefined;
}

/** The lines of `invites` once `entry` was used once: one use less, or the line gone at 0. */
export function useInviteLines(file: ParsedFile<InviteEntry>, entry: InviteEntry): string[] {
  if (entry.uses <= 1) return file.lines.filter((_, index) => index !== entry.line - 1);
  const lines = [...file.lines];
  lines[entry.line - 1] = formatInviteLine({ ...entry, uses: entry.uses - 1 });
  return lines;
}
