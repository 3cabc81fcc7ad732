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
import { decodeMessage, MessageType } from "../protocol/messages.ts";
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
  const maxPending = options.maxPending ?? MAX_UNPROVEN_PER_PORT;
  const unproven = options.unproven ?? new UnprovenConnections(maxPending);
  const pending = new Set<Conn>();
  let settled = false;

  return new Promise<JoinedConnection>((resolve, reject) => {
    if (options.signal?.aborted) {
      closeQuietly(listener);
      return reject(options.signal.reason);
    }
    const release = (connection: Conn) => {
      unproven.delete(connection);
      return pending.delete(connection);
    };
    let outcome: (() => void) | undefined;
    const finish = (winner?: JoinedConnection, error?: unknown) => {
      if (settled) return;
      settled = true;
      outcome = winner ? () => resolve(winner) : () => reject(error);
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      closeQuietly(listener);
      for (const connection of pending) {
        unproven.delete(connection);
        if (connection !== winner?.connection) closeQuietly(connection);
      }
      pending.clear();
    };
    const timer = setTimeout(
      () => finish(undefined, new TimeoutError("no join on the data port in time")),
      options.timeoutMs,
    );
    const onAbort = () => finish(undefined, options.signal?.reason);
    options.signal?.addEventListener("abort", onAbort);

    const tryConnection = async (connection: Conn, remote: string) => {
      const reader = new FrameReader(connection, MAX_JOIN_FRAME_BYTES);
      let reason = "closed before a join";
      try {
        const frame = await reader.readFrame();
        if (frame && !settled) {
          // decryptWithAd is synchronous: two connections can never both consume nonce 0.
          const message = decodeMessage(receiver.decryptWithAd(new Uint8Array(0), frame));
          if (message.type === MessageType.join) {
            release(connection);
            reader.maxFrameBytes = MAX_FRAME_BYTES; // proven: the session's frames may follow
            try {
              connection.setNoDelay?.(true);
            } catch { /* reset already: the session's first read will say so */ }
            return finish({ connection, reader });
          }
          reason = `first message was ${quoteUntrusted(message.type)}, not a join`;
        }
      } catch (error) {
        reason = (error as Error).message;
      }
      if (release(connection)) {
        closeQuietly(connection);
        if (!settled) options.onRejected?.(remote, reason);
      }
    };

    acceptLoop(listener, {
      closing: () => settled,
      onConnection(connection) {
        const remote = describe(connection.remoteAddr);
        if (pending.size >= maxPending) {
          // Shed the oldest, not the newcomer: idle connections cannot keep the client out.
          const oldest: Conn = pending.values().next().value!;
          release(oldest);
          closeQuietly(oldest);
        }
        pending.add(connection);
        unproven.add(connection, () => {
          if (pending.delete(connection)) closeQuietly(connection);
        });
        tryConnection(connection, remote);
      },
    })
      .catch((error) => finish(undefined, error)) // the listener broke: this session fails
      // settle only once the loop has ended: until its accept() returns, the port stays bound
      .then(() => outcome?.());
  });
}
