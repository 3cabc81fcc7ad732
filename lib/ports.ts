/**
 * Data-port negotiation, the server side: open a session's own data listener and take, on it,
 * the first connection whose first frame decrypts to a join.
 *
 * Anything else that connects (garbage, replays, other keys) is closed and costs the session
 * nothing: a frame that fails to decrypt does not advance the receive nonce (Noise §5.1), so the
 * real client's join still opens afterwards.
 * @module
 */
import { decodeMessage, type MessageCipher } from "./channel.ts";
import { TimeoutError } from "./errors.ts";
import { FrameReader } from "./frame.ts";

/** An inclusive range of TCP ports for data listeners (`--data-ports A-B`). */
export interface PortRange {
  first: number;
  last: number;
}

/** Parses `A-B` (1 <= A <= B <= 65535); throws SyntaxError saying what is wrong. */
export function parsePortRange(text: string): PortRange {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  if (!match) throw new SyntaxError(`Invalid port range "${text}": expected A-B, e.g. 7500-7599`);
  const [first, last] = [Number(match[1]), Number(match[2])];
  if (first < 1 || last > 65535 || first > last) {
    throw new SyntaxError(`Invalid port range "${text}": need 1 <= A <= B <= 65535`);
  }
  return { first, last };
}

/** Parses a TCP port number 1..65535 (0 only when `allowZero`, meaning "any free port"). */
export function parsePort(text: string, allowZero = false): number {
  const port = /^\d{1,5}$/.test(text.trim()) ? Number(text) : NaN;
  if (!(port >= (allowZero ? 0 : 1) && port <= 65535)) {
    throw new SyntaxError(`Invalid port "${text}": expected a number from 1 to 65535`);
  }
  return port;
}

/** No port of the range could be opened. */
export class NoFreePortError extends Error {
  constructor(range: PortRange) {
    super(`no free data port in ${range.first}-${range.last}`);
    this.name = "NoFreePortError";
  }
}

/**
 * Opens a data listener on `hostname`: a random free port, or a free one from `range` tried in
 * random order (so concurrent sessions rarely collide). Throws NoFreePortError when none is free.
 */
export function listenForData(hostname: string, range?: PortRange): Deno.TcpListener {
  if (!range) return Deno.listen({ hostname, port: 0, transport: "tcp" });
  const ports = Array.from({ length: range.last - range.first + 1 }, (_, i) => range.first + i);
  for (let i = ports.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [ports[i], ports[j]] = [ports[j], ports[i]];
  }
  for (const port of ports) {
    try {
      return Deno.listen({ hostname, port, transport: "tcp" });
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
    }
  }
  throw new NoFreePortError(range);
}

/** The connection that joined, with the reader that may already hold its next frames. */
export interface JoinedConnection {
  connection: Deno.TcpConn;
  reader: FrameReader;
}

/** Options for awaitJoin. */
export interface AwaitJoinOptions {
  /** How long to wait for a join, from now (the port message was just sent). */
  timeoutMs: number;
  /** At most this many unproven connections are held at once; past it the oldest is closed. */
  maxPending?: number;
  /** Told about each connection that was closed without joining (for the operator's log). */
  onRejected?: (remote: string, reason: string) => void;
}

/**
 * Waits on `listener` for the first connection whose first frame decrypts (with `receiver`, the
 * session's client-to-server CipherState) to `{"type":"join"}`. Closes the listener and every
 * other connection before returning. Throws TimeoutError if no join arrives in time.
 */
export function awaitJoin(
  listener: Deno.TcpListener,
  receiver: MessageCipher,
  options: AwaitJoinOptions,
): Promise<JoinedConnection> {
  const maxPending = options.maxPending ?? 32;
  const pending = new Set<Deno.TcpConn>();
  let settled = false;

  return new Promise<JoinedConnection>((resolve, reject) => {
    const finish = (winner?: JoinedConnection, error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const connection of pending) {
        if (connection !== winner?.connection) connection.close();
      }
      pending.clear();
      if (winner) resolve(winner);
      else reject(error);
    };
    const timer = setTimeout(
      () => finish(undefined, new TimeoutError("no join on the data port in time")),
      options.timeoutMs,
    );

    const tryConnection = async (connection: Deno.TcpConn) => {
      const remote = describe(connection.remoteAddr);
      const reader = new FrameReader(connection);
      let reason = "closed before a join";
      try {
        const frame = await reader.readFrame();
        if (frame && !settled) {
          // decryptWithAd is synchronous: two connections can never both consume nonce 0.
          const message = decodeMessage(receiver.decryptWithAd(new Uint8Array(0), frame));
          if (message.type === "join") {
            pending.delete(connection);
            connection.setNoDelay(true);
            return finish({ connection, reader });
          }
          reason = `first message was "${message.type}", not a join`;
        }
      } catch (error) {
        reason = (error as Error).message;
      }
      if (pending.delete(connection)) {
        connection.close();
        if (!settled) options.onRejected?.(remote, reason);
      }
    };

    (async () => {
      try {
        for await (const connection of listener) {
          if (settled) {
            connection.close();
            continue;
          }
          if (pending.size >= maxPending) {
            // Shed the oldest, not the newcomer: idle connections cannot keep the client out.
            const oldest: Deno.TcpConn = pending.values().next().value!;
            pending.delete(oldest);
            oldest.close();
          }
          pending.add(connection);
          tryConnection(connection);
        }
      } catch (error) {
        // The listener closes when we finish; anything else is a real failure.
        if (!settled) finish(undefined, error as Error);
      }
    })();
  });
}

/** `host:port` of an address, for logs. */
export function describe(address: Deno.Addr): string {
  if (address.transport === "tcp" || address.transport === "udp") {
    return address.hostname.includes(":")
      ? `[${address.hostname}]:${address.port}`
      : `${address.hostname}:${address.port}`;
  }
  return address.transport;
}
