/**
 * Invite tokens: one line a server's operator pastes to a newcomer, holding where the server is,
 * the server's public key, and a fresh secret that lets one key in. Written `chatinvite1…`
 * (bech32m, BIP 350, lowercase letters and digits only): safe in a shell, an email or a chat,
 * and checksummed, so a mistyped character is caught here, before any network traffic. Pure: no
 * files, no output.
 * @module
 */
import { bech32m } from "@scure/base";
import { KEY_BYTES } from "../protocol/constants.ts";
import { canonicalHost } from "./address.ts";
import { checkBytes } from "./key_text.ts";

/** The human-readable part of an invite token: `chatinvite1…`. */
export const INVITE_HRP = "chatinvite";
/** The layout version, the token's first byte. */
export const INVITE_TOKEN_VERSION = 1;
/** Bytes of an invite secret: 128 bits, fresh from the system's random source. */
export const INVITE_SECRET_BYTES = 16;
/** The longest host name a token carries (DNS: 253 characters). */
const MAX_HOST_BYTES = 253;
/** Characters of a host in a token: names, IPv4 and IPv6 literals (no brackets), zones. */
const HOST = /^[a-z0-9._:%-]+$/;
/** The bech32 alphabet (BIP 173): no 1, b, i or o. */
const CHARSET = /^[02-9ac-hj-np-z]+$/;
/** Version, key, secret, port: the bytes before the host. */
const FIXED_BYTES = 1 + KEY_BYTES + INVITE_SECRET_BYTES + 2;
/** The longest token accepted (bech32m's own 90-character limit is for shorter payloads). */
const MAX_TOKEN_LENGTH = 1023;

/** What an invite token holds. */
export interface InviteToken {
  /** The server's host, canonical (`canonicalHost`), IPv6 without brackets. */
  hostname: string;
  /** The server's control port. */
  port: number;
  /** The server's 32-byte public key: the client pins it and refuses any other. */
  serverKey: Uint8Array;
  /** The secret the client presents in its handshake (INVITE_SECRET_BYTES). */
  secret: Uint8Array;
}

/**
 * Encodes an invite token: `chatinvite1` and bech32m of version (1 byte), server key (32),
 * secret (16), port (2, big-endian) and host (UTF-8). Throws RangeError or SyntaxError for a bad
 * value.
 *
 * @example
 * ```ts
 * import { encodeInviteToken, parseInviteToken } from "./invite_token.ts";
 * const token = encodeInviteToken({
 *   hostname: "127.0.0.1",
 *   port: 7447,
 *   serverKey: new Uint8Array(32).fill(1),
 *   secret: new Uint8Array(16).fill(2),
 * });
 * token.startsWith("chatinvite1"); // true
 * parseInviteToken(token).port; // 7447
 * ```
 */
export function encodeInviteToken(token: InviteToken): string {
  checkBytes("server key", token.serverKey);
  checkBytes("invite secret", token.secret, INVITE_SECRET_BYTES);
  if (!Number.isInteger(token.port) || token.port < 1 || token.port > 65535) {
    throw new RangeError(`invite port must be 1 to 65535, got ${token.port}`);
  }
  const host = new TextEncoder().encode(checkHost(canonicalHost(token.hostname)));
  const bytes = new Uint8Array(FIXED_BYTES + host.length);
  bytes[0] = INVITE_TOKEN_VERSION;
  bytes.set(token.serverKey, 1);
  bytes.set(token.secret, 1 + KEY_BYTES);
  bytes[FIXED_BYTES - 2] = token.port >> 8;
  bytes[FIXED_BYTES - 1] = token.port & 0xff;
  bytes.set(host, FIXED_BYTES);
  return bech32m.encode(INVITE_HRP, bech32m.toWords(bytes), MAX_TOKEN_LENGTH);
}

/** Why a token could not be read; `checksum` means a character was changed, added or lost. */
export type InviteTokenProblem = "prefix" | "characters" | "checksum" | "content";

/** A token that is not a valid invite; `problem` says which kind of wrong. */
export class InviteTokenError extends SyntaxError {
  constructor(readonly problem: InviteTokenProblem, message: string) {
    super(message);
    this.name = "InviteTokenError";
  }
}

/**
 * Parses an invite token (white space around it, as left by copy and paste, is ignored). Throws
 * InviteTokenError: `checksum` for a token whose checksum fails (a typo), others for text that is
 * no token at all or holds something it must not.
 */
export function parseInviteToken(text: string): InviteToken {
  const token = text.trim();
  const shown = token.length > 24 ? `${token.slice(0, 20)}…` : token;
  const fail = (problem: InviteTokenProblem, why: string) =>
    new InviteTokenError(problem, `Cannot parse invite token "${shown}": ${why}`);
  const lower = token.toLowerCase();
  if (!lower.startsWith(INVITE_HRP + "1")) {
    throw fail("prefix", `it does not start with ${INVITE_HRP}1`);
  }
  if (token !== lower && token !== token.toUpperCase()) throw fail("characters", "mixed case");
  const data = lower.slice(INVITE_HRP.length + 1);
  if (!CHARSET.test(data)) {
    throw fail("characters", "it has characters no token has (only a-z and 0-9, no 1 b i o)");
  }
  if (lower.length > MAX_TOKEN_LENGTH) throw fail("content", "it is too long");
  const decoded = bech32m.decodeUnsafe(lower, MAX_TOKEN_LENGTH);
  if (!decoded) {
    throw fail("checksum", "bad checksum: a character was mistyped, added or lost");
  }
  const bytes = bech32m.fromWordsUnsafe(decoded.words);
  if (!bytes || bytes.length < FIXED_BYTES + 1) throw fail("content", "it is too short");
  if (bytes[0] !== INVITE_TOKEN_VERSION) {
    throw fail("content", `it is of version ${bytes[0]}; this chat reads version 1`);
  }
  const port = (bytes[FIXED_BYTES - 2] << 8) | bytes[FIXED_BYTES - 1];
  if (port === 0) throw fail("content", "its port is 0");
  let hostname: string;
  try {
    const host = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(FIXED_BYTES));
    hostname = checkHost(canonicalHost(host));
  } catch (error) {
    throw fail("content", `its host is not valid (${(error as Error).message})`);
  }
  return {
    hostname,
    port,
    serverKey: bytes.slice(1, 1 + KEY_BYTES),
    secret: bytes.slice(1 + KEY_BYTES, 1 + KEY_BYTES + INVITE_SECRET_BYTES),
  };
}

/** Returns `host` if a token may carry it; throws SyntaxError otherwise. */
function checkHost(host: string): string {
  if (host.length === 0 || host.length > MAX_HOST_BYTES || !HOST.test(host)) {
    throw new SyntaxError(
      `${
        JSON.stringify(host.slice(0, 40))
      } is not a host a token can carry (1-253 of a-z 0-9 . - : _ %)`,
    );
  }
  return host;
}
