/**
 * Data-port negotiation, the server side: open a session's own data listener and take, on it,
 * the first connection whose first frame decrypts to a join.
 *
 * Anything else that connects (garbage, replays, other keys) is closed and costs the session
 * nothing: a frame that fails to decrypt does not advance the receive nonce (Noise §5.1), so the
 * real client's join still opens afterwards.
 * @module
 */
import { acceptLoop, closeQuietly } from "./accept.ts";
import type { MessageCipher } from "../protocol/channel.ts";
import { MAX_FRAME_BYTES } from "../protocol/constants.ts";
import { NoFreePortError, TimeoutError } from "../errors.ts";
import { FrameReader } from "../protocol/frame.ts";
import { decodeMessage, MessageType, parseClientMessage } from "../protocol/messages.ts";
import { type Conn, describe, type Listener, type Network } from "./network.ts";
import { quoteUntrusted } from "./untrusted.ts";

/** Unproven connections held on one data port (docs/PROTOCOL.md section 6.3). */
export const MAX_UNPROVEN_PER_PORT = 32;
/**
 * The largest frame read from a data-port connection before it has proven itself: a join is
 * `{"type":"join"}` plus the tag (31 bytes), so a stranger cannot make us buffer 64 KiB.
 */
export const MAX_JOIN_FRAME_BYTES = 1024;

/** An inclusive range of TCP ports for data listeners (`--data-ports A-B`). */
export interface PortRange {
  first: number;
  last: number;
}

/**
 * Opens a data listener on `hostname`: a random free port, or a free one from `range` tried in
 * random order (so concurrent sessions rarely collide). Throws NoFreePortError when none is free.
 */
export function listenForData(network: Network, hostname: string, range?: PortRange): Listener {
  if (!range) return network.listen({ hostname, port: 0 });
  const ports = Array.from({ length: range.last - range.first + 1 }, (_, i) => range.first + i);
  for (let i = ports.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [ports[i], ports[j]] = [ports[j], ports[i]];
  }
  for (const port of ports) {
    try {
      return network.listen({ hostname, port });
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  throw new NoFreePortError(range.first, range.last);
}

/** The connection that joined, with the reader that may already hold its next frames. */
export interface JoinedConnection {
  connection: Conn;
  reader: FrameReader;
  /** What the client's `join` says it can do (section 7.10). */
  features: string[];
}

/**
 * Every data port's unproven connections together, under one cap: past it the oldest, on
 * whichever port, is closed. Idle connections parked on many sessions' ports then cost a
 * bounded number of descriptors, and a newcomer (the real client) is never the one turned away.
 */
export class UnprovenConnections {
  readonly #open = new Map<Conn, () => void>();

  constructor(readonly max: number) {}

  /** How many are held now. */
  get size(): number {
    return this.#open.size;
  }

  /** Holds `connection`; `shed` closes it when the pool must make room. */
  add(connection: Conn, shed: () => void): void {
    while (this.#open.size >= this.max) {
      const [oldest, close] = this.#open.entries().next().value!;
      this.#open.delete(oldest);
      close();
    }
    this.#open.set(connection, shed);
  }

  /** Lets go of `connection` (it joined or was closed); says whether it was held. */
  delete(connection: Conn): boolean {
    return this.#open.delete(connection);
  }
}

/** Options for awaitJoin. */
export interface AwaitJoinOptions {
  /** How long to wait for a join, from now (the port message was just sent). */
  timeoutMs: number;
  /** At most this many unproven connections are held on this port; past it the oldest is closed. */
  maxPending?: number;
  /** The server-wide cap on unproven connections, shared by every data port. */
  unproven?: UnprovenConnections;
  /** Aborting ends the wait at once (revoked, or shed for a newer session): rejects with its reason. */
  signal?: AbortSignal;
  /** Told about each connection that was closed without joining (for the operator's log). */
  onRejected?: (remote: string, reason: string) => void;
}

/**
 * Waits on `listener` for the first connection whose first frame decrypts (with `receiver`, the
 * session's client-to-server CipherState) to `{"type":"join"}`. Closes the listener and every
 * other connection before returning, and returns only once the port is free again. Throws
 * TimeoutError if no join arrives in time, and the signal's reason if it is aborted.
 */
export function awaitJoin(
  listener: Listener,
  receiver: MessageCipher,
  options: AwaitJoinOptions,
): Promise<JoinedConnection> {
  if (options.signal?.aborted) {
    closeQuietly(listener);
    return Promise.reject(options.signal.reason);
  }
  return new JoinWait(listener, receiver, options).result;
}

/** One session's wait on its data port (awaitJoin). */
class JoinWait {
  readonly result: Promise<JoinedConnection>;
  readonly #listener: Listener;
  readonly #receiver: MessageCipher;
  readonly #options: AwaitJoinOptions;
  readonly #maxPending: number;
  readonly #unproven: UnprovenConnections;
  readonly #pending = new Set<Conn>();
  readonly #timer: ReturnType<typeof setTimeout>;
  readonly #onAbort = () => this.#finish(undefined, this.#options.signal?.reason);
  #outcome: { winner?: JoinedConnection; error?: unknown } | undefined;

  constructor(listener: Listener, receiver: MessageCipher, options: AwaitJoinOptions) {
    this.#listener = listener;
    this.#receiver = receiver;
    this.#options = options;
    this.#maxPending = options.maxPending ?? MAX_UNPROVEN_PER_PORT;
    this.#unproven = options.unproven ?? new UnprovenConnections(this.#maxPending);
    this.#timer = setTimeout(
      () => this.#finish(undefined, new TimeoutError("no join on the data port in time")),
      options.timeoutMs,
    );
    options.signal?.addEventListener("abort", this.#onAbort);
    this.result = acceptLoop(listener, {
      closing: () => this.#outcome !== undefined,
      onConnection: (connection) => this.#hold(connection),
    })
      .catch((error) => this.#finish(undefined, error)) // the listener broke: the session fails
      // settle only once the loop has ended: until its accept() returns, the port stays bound
      .then(() => {
        const { winner, error } = this.#outcome!;
        if (winner) return winner;
        throw error;
      });
  }

  /** A new connection: held (within the caps, shedding the oldest) until its first frame. */
  #hold(connection: Conn): void {
    if (this.#pending.size >= this.#maxPending) {
      // Shed the oldest, not the newcomer: idle connections cannot keep the client out.
      const oldest: Conn = this.#pending.values().next().value!;
      this.#release(oldest);
      closeQuietly(oldest);
    }
    this.#pending.add(connection);
    this.#unproven.add(connection, () => {
      if (this.#pending.delete(connection)) closeQuietly(connection);
    });
    this.#try(connection, describe(connection.remoteAddr));
  }

  /** Reads a connection's first frame: the join wins; anything else is closed. */
  async #try(connection: Conn, remote: string): Promise<void> {
    const reader = new FrameReader(connection, MAX_JOIN_FRAME_BYTES);
    let reason = "closed before a join";
    try {
      const frame = await reader.readFrame();
      if (frame && !this.#outcome) {
        // decryptWithAd is synchronous: two connections can never both consume nonce 0.
        const message = decodeMessage(this.#receiver.decryptWithAd(new Uint8Array(0), frame));
        const join = parseClientMessage(message);
        if (join?.type === MessageType.join) {
          this.#release(connection);
          reader.maxFrameBytes = MAX_FRAME_BYTES; // proven: the session's frames may follow
          try {
            connection.setNoDelay?.(true);
          } catch { /* reset already: the session's first read will say so */ }
          return this.#finish({ connection, reader, features: join.features ?? [] });
        }
        reason = `first message was ${quoteUntrusted(message.type)}, not a join`;
      }
    } catch (error) {
      reason = (error as Error).message;
    }
    if (this.#release(connection)) {
      closeQuietly(connection);
      if (!this.#outcome) this.#options.onRejected?.(remote, reason);
    }
  }

  #release(connection: Conn): boolean {
    this.#unproven.delete(connection);
    return this.#pending.delete(connection);
  }

  /** Ends the wait (once): the listener and every other connection close. */
  #finish(winner?: JoinedConnection, error?: unknown): void {
    if (this.#outcome) return;
    this.#outcome = { winner, error };
    clearTimeout(this.#timer);
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
    closeQuietly(this.#listener);
    for (const connection of this.#pending) {
      this.#unproven.delete(connection);
      if (connection !== winner?.connection) closeQuietly(connection);
    }
    this.#pending.clear();
  }
}
