/**
 * Wire constants (fixed by docs/PROTOCOL.md; changing one breaks compatibility) and
 * implementation limits (ours to tune; documented in the README).
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
/** The largest frame body; a length of 0 is a protocol error. */
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

// --- Defaults and limits ------------------------------------------------------

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
/** Handshake deadline, from TCP accept to a verified m3. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Join deadline, from sending the port message to a decrypted join. */
export const JOIN_TIMEOUT_MS = 10_000;
/** Each side sends a keepalive this often, so a silent peer can be told from a dead one. */
export const KEEPALIVE_INTERVAL_MS = 15_000;
/** The shortest keepalive interval a server may set and a client will use. */
export const MIN_KEEPALIVE_MS = 1_000;
/** A peer that misses this many keepalive intervals in a row is taken for dead. */
export const KEEPALIVE_MISSES = 3;
/** A peer silent for this long (three keepalives missed) is taken for dead. */
export const PEER_SILENCE_MS = KEEPALIVE_MISSES * KEEPALIVE_INTERVAL_MS;
/** How often a running server re-reads the allowlist to end revoked sessions. */
export const REVOKE_CHECK_MS = 1_000;
/** Handshakes in flight at once; past it the oldest pending one is shed for the newcomer. */
export const MAX_HANDSHAKES = 512;
/** Handshakes in flight from one IP address; past it that address's oldest is shed. */
export const MAX_HANDSHAKES_PER_ADDRESS = 128;
/** Bytes queued towards one client; a client that stops reading past this is dropped. */
export const MAX_QUEUED_BYTES = 1024 * 1024;
/** Lines per second a client may say in the long run; faster lines wait (nothing is lost). */
export const RATE_LINES_PER_SECOND = 20;
/** Lines a client may say at once before the rate applies. */
export const RATE_BURST_LINES = 100;
/**
 * The longest chat line the server relays by default (UTF-8 bytes of the text): a screenful,
 * far below the frame limit, so one member cannot make every other member receive 64 KiB a line.
 */
export const MAX_LINE_BYTES = 16 * 1024;
/** Members of one room (clients; the operator does not count). */
export const MAX_MEMBERS = 1000;
/**
 * The most `--max-members` may be: a `welcome` or `who` lists every member (up to 49
 * characters of name, quotes and a comma each), and it must fit one frame.
 */
export const MAX_MEMBERS_LIMIT = 1200;
/** Sessions that got a data port but have not joined yet, server-wide; past it the oldest goes. */
export const MAX_PENDING_SESSIONS = 64;
/** Sessions of one key that got a data port but have not joined; a newer one ends the oldest. */
export const MAX_PENDING_SESSIONS_PER_KEY = 2;
/** Unproven connections on all data ports together; past it the oldest is closed. */
export const MAX_UNPROVEN_CONNECTIONS = 256;
/** New control connections per second from one source address, while the server is under load. */
export const CONNECT_RATE_PER_SECOND = 20;
/** New control connections at once from one source address before the rate applies. */
export const CONNECT_BURST = 5;
/**
 * The longest keepalive interval a server may set and a client will use (three of them, the
 * silence limit, stay far below the 2^31-1 ms a timer can take: see MAX_TIMER_MS in errors.ts).
 */
export const MAX_KEEPALIVE_MS = 3_600_000;
/** The longest handshake or join deadline a server may set. */
export const MAX_DEADLINE_MS = 3_600_000;

// --- Exit codes (documented in the README; scripts rely on them) --------------

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
} as const;
