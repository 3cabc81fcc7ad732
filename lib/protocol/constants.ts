/**
 * Wire constants, fixed by docs/PROTOCOL.md: changing one breaks compatibility. The limits that
 * are ours to tune live in lib/chat/limits.ts, the exit codes in lib/cli/exit.ts.
 * @module
 */

// --- Wire constants -------------------------------------------------------

/** The Noise protocol name; exactly 32 bytes, so it is used as h without hashing (Noise §5.2). */
export const PROTOCOL_NAME = "Noise_XX_25519_ChaChaPoly_SHA256";
/** The prologue both sides mix into the handshake: the 6 ASCII bytes `chat/1`. */
export const PROLOGUE: Uint8Array = new TextEncoder().encode("chat/1");
/** Size of an X25519 public key, secret key and shared secret (Noise DHLEN). */
export const KEY_BYTES = 32;
/** Size of the ChaCha20-Poly1305 authentication tag. */
export const TAG_BYTES = 16;
/** Size of SHA-256 output (Noise HASHLEN). */
export const HASH_BYTES = 32;
/** Every frame starts with a 2-byte big-endian length. */
export const FRAME_HEADER_BYTES = 2;
/**
 * The largest frame body, which is also Noise's limit on any message (Noise §3: 65535 bytes);
 * a length of 0 is a protocol error.
 */
export const MAX_FRAME_BYTES = 65535;
/** The largest plaintext one transport message can carry. */
export const MAX_PLAINTEXT_BYTES = MAX_FRAME_BYTES - TAG_BYTES;
/** Noise §5.1: nonce 2^64-1 is reserved (Rekey uses it); a CipherState stops before it. */
export const MAX_NONCE = 0xffff_ffff_ffff_ffffn;
/** Each direction rekeys (Noise §11.3 Rekey()) after carrying this many transport messages. */
export const REKEY_INTERVAL = 65536;

/** Human-readable part of the bech32 public key text: `chat1` + 58 characters. */
export const PUBLIC_KEY_HRP = "chat";
/** Human-readable part of the bech32 secret key text (written uppercase, as age does). */
export const SECRET_KEY_HRP = "chat-secret-key-";

// --- Fixed by the protocol's rules --------------------------------------------

/**
 * The largest handshake message accepted. m2, the largest, is 96 bytes plus its name payload
 * (under 100 bytes), so 1024 leaves room for fields a later version may add, and a stranger who
 * has not authenticated cannot make us buffer 64 KiB.
 */
export const MAX_HANDSHAKE_FRAME_BYTES = 1024;

/** Default control (handshake) port. */
export const DEFAULT_PORT = 7447;
/** Names (display names and allowlist labels): 1 to 32 of these characters. */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,32}$/;
/** Each side sends a keepalive this often, so a silent peer can be told from a dead one. */
export const KEEPALIVE_INTERVAL_MS = 15_000;
/** The shortest keepalive interval a server may set and a client will use. */
export const MIN_KEEPALIVE_MS = 1_000;
/** A peer that misses this many keepalive intervals in a row is taken for dead. */
export const KEEPALIVE_MISSES = 3;

/** How long a peer may be silent before it is taken for dead: three keepalive intervals. */
export function silenceLimit(keepaliveMs: number): number {
  return KEEPALIVE_MISSES * keepaliveMs;
}
/**
 * The longest keepalive interval a server may set and a client will use (three of them, the
 * silence limit, stay far below the 2^31-1 ms a timer can take: see MAX_TIMER_MS in errors.ts).
 */
export const MAX_KEEPALIVE_MS = 3_600_000;
