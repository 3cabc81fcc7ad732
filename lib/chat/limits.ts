/**
 * The server's limits: each a default here, a `chat serve` flag, and a row in the README's
 * limits table. They are ours to tune; the protocol's own constants are in
 * lib/protocol/constants.ts.
 * @module
 */
import { KEEPALIVE_INTERVAL_MS, silenceLimit } from "../protocol/constants.ts";

/** Handshake deadline, from TCP accept to a verified m3. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Join deadline, from sending the port message to a decrypted join. */
export const JOIN_TIMEOUT_MS = 10_000;
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
/** The longest handshake or join deadline a server may set. */
export const MAX_DEADLINE_MS = 3_600_000;

/**
 * Lines of the room a server keeps, in memory only, and replays to each newcomer: enough to
 * catch up on a conversation (a screenful or two), few enough that joining stays instant.
 * Private lines are never kept.
 */
export const HISTORY_LINES = 50;

/**
 * How long the server waits for a member that reads more slowly than the room talks: while more
 * than half its queue limit waits to be written to it, each speaker's next line waits (the
 * speaker is paced, not the member dropped); a member that takes nothing in this time is dropped.
 */
export const SLOW_READER_WAIT_MS = 10_000;

/** The largest file a member may offer (`--max-file-bytes`): 1 GiB. */
export const MAX_FILE_BYTES = 1 << 30;
/** Transfers one member may take part in at once, offered or running, sending or receiving. */
export const MAX_TRANSFERS_PER_MEMBER = 4;
/**
 * Transfers one member may have going to one other member at once: so that one member cannot
 * take all of another's MAX_TRANSFERS_PER_MEMBER.
 */
export const MAX_TRANSFERS_PER_PAIR = 2;
/**
 * The least a running transfer must move (chunks relayed plus bytes acknowledged) in each
 * silence limit (45 s by default), about 1.5 kB/s: less ends it as `stalled`, so a byte now and
 * then does not keep another member's transfer slot.
 */
export const MIN_TRANSFER_PROGRESS_BYTES = 64 * 1024;
/** How long an offer waits for its receiver's accept before it expires. */
export const OFFER_TTL_MS = 10 * 60_000;
/**
 * Chunk bytes the server queues towards one receiver before it stops reading the sender(s)
 * feeding it: the server relays a file only as fast as its receiver drains, and holds at most
 * this much of it (plus one chunk) per receiver.
 */
export const RELAY_BACKLOG_BYTES = 256 * 1024;
/**
 * How far past a receiver's last `file-ack` the server relays a transfer: what it lets sit in
 * the receiver's socket buffers, ahead of any chat line to it (~20 ms of data at 100 MB/s). The
 * rest of the sender's window waits on the sender's side. Well above FILE_ACK_BYTES, so a
 * receiver that acks as it must never waits for itself. 1 MiB streamed 89-97 MB/s, 2 MiB 99-105
 * and 3 MiB 98-106 (256 MiB, 4 runs each); with downloads flushed as they arrive, 1 MiB 119-129
 * and 2 MiB 126-140. More only adds to a line's wait behind chunks.
 */
export const RELAY_AHEAD_BYTES = 2 * 1024 * 1024;

/** Limits a server runs with; every one has a default (DEFAULT_LIMITS) and a flag. */
export interface ServerLimits {
  handshakeTimeoutMs: number;
  joinTimeoutMs: number;
  keepaliveMs: number;
  /** How long a client may be silent: three keepalive intervals (silenceLimit). */
  peerSilenceMs: number;
  revokeCheckMs: number;
  maxHandshakes: number;
  maxHandshakesPerAddress: number;
  maxQueuedBytes: number;
  /** The longest line (UTF-8 bytes of its text) relayed; told to clients in the welcome. */
  maxLineBytes: number;
  maxMembers: number;
  /** Sessions that have a data port but no join yet, server-wide (the oldest is shed). */
  maxPendingSessions: number;
  /** Such sessions per key (a newer one ends the oldest). */
  maxPendingSessionsPerKey: number;
  /** Unproven connections on all data ports together (the oldest is closed). */
  maxUnprovenConnections: number;
  rateLinesPerSecond: number;
  rateBurstLines: number;
  /** New control connections per second per source address, applied under load. */
  connectRatePerSecond: number;
  connectBurst: number;
  /** Lines of the room kept and replayed to each newcomer (0: none). */
  historyLines: number;
  /** The largest file a member may offer. */
  maxFileBytes: number;
  /** Transfers one member may take part in at once. */
  maxTransfersPerMember: number;
  /** How long an offer waits for its accept. */
  offerTtlMs: number;
}

/** The defaults of ServerLimits. */
export const DEFAULT_LIMITS: ServerLimits = {
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  joinTimeoutMs: JOIN_TIMEOUT_MS,
  keepaliveMs: KEEPALIVE_INTERVAL_MS,
  peerSilenceMs: silenceLimit(KEEPALIVE_INTERVAL_MS),
  revokeCheckMs: REVOKE_CHECK_MS,
  maxHandshakes: MAX_HANDSHAKES,
  maxHandshakesPerAddress: MAX_HANDSHAKES_PER_ADDRESS,
  maxQueuedBytes: MAX_QUEUED_BYTES,
  maxLineBytes: MAX_LINE_BYTES,
  maxMembers: MAX_MEMBERS,
  maxPendingSessions: MAX_PENDING_SESSIONS,
  maxPendingSessionsPerKey: MAX_PENDING_SESSIONS_PER_KEY,
  maxUnprovenConnections: MAX_UNPROVEN_CONNECTIONS,
  rateLinesPerSecond: RATE_LINES_PER_SECOND,
  rateBurstLines: RATE_BURST_LINES,
  connectRatePerSecond: CONNECT_RATE_PER_SECOND,
  connectBurst: CONNECT_BURST,
  historyLines: HISTORY_LINES,
  maxFileBytes: MAX_FILE_BYTES,
  maxTransfersPerMember: MAX_TRANSFERS_PER_MEMBER,
  offerTtlMs: OFFER_TTL_MS,
};

/** `limits` over the defaults, with the silence limit following the keepalive interval. */
export function withDefaults(limits: Partial<ServerLimits> = {}): ServerLimits {
  const merged = { ...DEFAULT_LIMITS, ...limits };
  return { ...merged, peerSilenceMs: silenceLimit(merged.keepaliveMs) };
}
