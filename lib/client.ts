/**
 * The chat client: connect, authenticate the server (pinning its key the way SSH does), follow
 * it to the data port, join, and then carry the conversation as events.
 *
 * No printing and no exiting here: what happens is reported through the errors below and the
 * ChatHandlers callbacks, and the command glue decides what the user sees and the exit code.
 * @module
 */
import { Channel, type Message } from "./channel.ts";
import {
  HANDSHAKE_TIMEOUT_MS,
  JOIN_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_MISSES,
  MIN_KEEPALIVE_MS,
} from "./constants.ts";
import type { KeyPair } from "./crypto.ts";
import { ProtocolError, TimeoutError, withDeadline } from "./errors.ts";
import { canonicalHost, isIPv6 } from "./address.ts";
import { sameKey } from "./keys.ts";
import { initiateHandshake } from "./secure.ts";

/** The server presented a key other than the pinned or expected one. */
export class ServerKeyChangedError extends Error {
  constructor(
    readonly address: string,
    readonly expected: Uint8Array,
    readonly presented: Uint8Array,
    readonly explicit: boolean,
  ) {
    super(
      `the server at ${address} presented a different key than the one ${
        explicit ? "given with --server-key" : "pinned"
      }`,
    );
    this.name = "ServerKeyChangedError";
  }
}

/** The server refused us or removed us, with one of the protocol's error codes. */
export class ServerRefusedError extends Error {
  constructor(readonly code: string, readonly serverMessage: string) {
    super(`the server refused: ${serverMessage} (${code})`);
    this.name = "ServerRefusedError";
  }
}

/** The server could not be reached, or the connection failed before the chat began. */
export class ConnectError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectError";
  }
}

/** Where pinned server keys live (the keystore's known_servers is one). */
export interface ServerPins {
  /** The key pinned for `address` (`host:port`), if any. */
  lookupServer(address: string): Promise<Uint8Array | undefined>;
  /**
   * Pins `key` for every address at once and returns the key pinned before, if any. Without
   * `replace` it only adds: if another key is pinned (a racing first contact may have pinned
   * since the lookup), that key is returned and nothing changes. With `replace` the key
   * replaces every older pin (see `Keystore.pinServer`).
   */
  pinServer(
    addresses: string | readonly string[],
    key: Uint8Array,
    options?: { replace?: boolean },
  ): Promise<Uint8Array | undefined>;
}

/** How to reach and join a server. */
export interface ConnectConfig {
  hostname: string;
  port: number;
  identity: KeyPair;
  /** Our declared display name. */
  name: string;
  pins: ServerPins;
  /** An explicit expected server key (`--server-key`); it is pinned when it matches. */
  serverKey?: Uint8Array;
  /** Told when a server key is pinned for the first time. */
  onPinned?: (address: string, key: Uint8Array) => void;
  timeoutMs?: number;
}

/** A joined session. */
export interface ClientSession {
  channel: Channel;
  serverKey: Uint8Array;
  serverName: string;
  /** Our display name in the room (the server decides it). */
  name: string;
  /** Who else was present when we joined. */
  members: string[];
  /** The longest line the server relays (from its welcome; unlimited if it did not say). */
  maxLineBytes: number;
  /** How often to send keepalives: the server's interval from its welcome, else the default. */
  keepaliveMs: number;
}

/**
 * The keepalive interval to use for a server's announced `keepalive_ms`: at least 1 s (a
 * keepalive storm helps nobody, and a server may not ask for less), 15 s when it said nothing.
 */
export function keepaliveInterval(announced: unknown): number {
  if (typeof announced !== "number" || !(announced > 0) || !Number.isFinite(announced)) {
    return KEEPALIVE_INTERVAL_MS;
  }
  return Math.max(MIN_KEEPALIVE_MS, Math.round(announced));
}

/** A positive integer field of a message, or `fallback`. */
function positiveInteger(value: unknown, fallback: number, minimum = 1): number {
  return Number.isSafeInteger(value) && (value as number) >= minimum ? value as number : fallback;
}

/**
 * `host:port` as pins are keyed: the host in canonical form (`canonicalHost`: `127.1` and
 * `[::ffff:127.0.0.1]` are `127.0.0.1`, names lower case), IPv6 in brackets.
 */
export function addressOf(hostname: string, port: number): string {
  const host = hostOf(hostname);
  return isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The canonical form of a host, or the host as given if it is no valid address at all. */
function hostOf(hostname: string): string {
  try {
    return canonicalHost(hostname);
  } catch {
    return hostname; // the connection will fail and say so
  }
}

async function dial(hostname: string, port: number, timeoutMs: number): Promise<Deno.TcpConn> {
  const address = addressOf(hostname, port);
  // the address pins are keyed by is the address dialled, whatever the resolver makes of the rest
  const attempt = Deno.connect({ hostname: hostOf(hostname), port });
  try {
    const connection = await withDeadline(attempt, timeoutMs, "connect timed out", () => {
      attempt.then((late) => late.close(), () => {});
    });
    connection.setNoDelay(true);
    return connection;
  } catch (error) {
    const why = error instanceof Deno.errors.ConnectionRefused
      ? "connection refused (is `chat serve` running there?)"
      : error instanceof TimeoutError
      ? `no answer within ${timeoutMs / 1000} s`
      : (error as Error).message;
    throw new ConnectError(`cannot reach ${address}: ${why}`, { cause: error });
  }
}

/**
 * Checks the server's key against `--server-key` or the pins, pinning it on first contact.
 *
 * Like ssh's CheckHostIP, the key is pinned and checked both for the address as given and for
 * the IP address connected to (`remote`): one server reached as `localhost` and as `127.0.0.1`
 * is one first contact, and a name that now leads to an address pinned with another key is a
 * changed key. A first contact is "pin if absent, otherwise compare", decided under the pins'
 * lock, so of two racing first contacts shown different keys only one pins.
 */
async function verifyServerKey(
  config: ConnectConfig,
  presented: Uint8Array,
  remote?: Deno.Addr,
): Promise<void> {
  const address = addressOf(config.hostname, config.port);
  let connected = address;
  if (remote?.transport === "tcp") {
    try {
      connected = addressOf(canonicalHost(remote.hostname), config.port);
    } catch { /* no IP literal we can key a pin by (an IPv6 zone): the name alone */ }
  }
  const addresses = connected === address ? [address] : [address, connected];
  if (config.serverKey) {
    if (!sameKey(config.serverKey, presented)) {
      throw new ServerKeyChangedError(address, config.serverKey, presented, true);
    }
    const replaced = await config.pins.pinServer(addresses, presented, { replace: true });
    if (!replaced || !sameKey(replaced, presented)) config.onPinned?.(address, presented);
    return;
  }
  const refuseChanged = (pins: (Uint8Array | undefined)[]) => {
    pins.forEach((pinned, index) => {
      if (pinned && !sameKey(pinned, presented)) {
        throw new ServerKeyChangedError(addresses[index], pinned, presented, false);
      }
    });
  };
  const lookup = () => Promise.all(addresses.map((a) => config.pins.lookupServer(a)));
  const known = await lookup();
  refuseChanged(known);
  if (known.every((pinned) => pinned !== undefined)) return;
  // pin what is missing; a first contact racing us may have pinned another key meanwhile
  const before = await config.pins.pinServer(addresses, presented);
  if (before && !sameKey(before, presented)) {
    refuseChanged(await lookup());
    throw new ServerKeyChangedError(address, before, presented, false);
  }
  // a new name for an address pinned with this key, or the reverse, is no first contact
  if (!before && known.every((pinned) => pinned === undefined)) {
    config.onPinned?.(address, presented);
  }
}

/**
 * Connects, authenticates the server, and joins the room. Throws ConnectError,
 * ServerKeyChangedError, ServerRefusedError, ProtocolError or TimeoutError.
 */
export async function joinServer(config: ConnectConfig): Promise<ClientSession> {
  const timeoutMs = config.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const control = await dial(config.hostname, config.port, timeoutMs);
  let channel: Channel | undefined;
  try {
    // the pin is checked after m2, before m3 reveals our key and name to the server
    const handshake = await withDeadline(
      initiateHandshake(
        control,
        config.identity,
        config.name,
        (key) => verifyServerKey(config, key, control.remoteAddr),
      ),
      timeoutMs,
      "the server did not complete the handshake in time",
      () => control.close(),
    );

    // the first transport message: the data port, or why we are refused
    const controlChannel = new Channel(control, handshake.send, handshake.receive, {
      reader: handshake.reader,
    });
    const first = await controlChannel.receive(timeoutMs);
    if (first === null) {
      throw new ProtocolError("the server closed the connection after the handshake");
    }
    if (first.type === "error") {
      throw new ServerRefusedError(String(first.code), String(first.message ?? ""));
    }
    const port = first.port;
    if (
      first.type !== "port" || !Number.isInteger(port) || (port as number) < 1 ||
      (port as number) > 65535
    ) {
      throw new ProtocolError(`expected a port message, got "${first.type}"`);
    }

    // follow it to the data port; the same CipherStates carry on there
    const data = await dial(config.hostname, port as number, timeoutMs);
    channel = new Channel(data, handshake.send, handshake.receive);
    await channel.send({ type: "join" });
    controlChannel.close();
    const welcome = await channel.receive(JOIN_TIMEOUT_MS);
    if (welcome === null) {
      throw new ProtocolError("the server closed the data connection before welcoming us");
    }
    if (welcome.type === "error") {
      throw new ServerRefusedError(String(welcome.code), String(welcome.message ?? ""));
    }
    if (welcome.type === "bye") {
      throw new ServerRefusedError("closing", "the server is shutting down");
    }
    if (welcome.type !== "welcome" || typeof welcome.name !== "string") {
      throw new ProtocolError(`expected a welcome message, got "${welcome.type}"`);
    }
    return {
      channel,
      serverKey: handshake.remoteStaticKey,
      serverName: typeof welcome.server === "string" ? welcome.server : "server",
      name: welcome.name,
      members: Array.isArray(welcome.members) ? welcome.members.map(String) : [],
      maxLineBytes: positiveInteger(welcome.max_line_bytes, Infinity),
      // never below 1 s, whatever a server says: a keepalive storm helps nobody
      keepaliveMs: keepaliveInterval(welcome.keepalive_ms),
    };
  } catch (error) {
    // The deadline, or controlChannel.close() after the join, may have closed it already: a
    // second close would throw BadResource and hide the real error.
    try {
      control.close();
    } catch { /* already closed */ }
    channel?.close();
    throw error;
  }
}

/** How a chat ended, as the client saw it. */
export type ChatEnd =
  | { kind: "left" } // we said bye
  | { kind: "server-ended" } // the server said bye
  | { kind: "removed"; code: string; message: string } // the server sent an error and closed
  | { kind: "lost"; reason: string }; // the connection failed or fell silent

/** What the client reports while chatting. */
export interface ChatHandlers {
  message(from: string, text: string): void;
  presence(event: string, name: string, detail: string): void;
  who(members: string[]): void;
  notice(code: string, message: string): void;
}

/** A joined chat: send lines, ask who is here, leave; `ended` resolves with how it ended. */
export class ClientChat {
  readonly session: ClientSession;
  readonly ended: Promise<ChatEnd>;
  #leaving = false;
  readonly #silenceMs: number;
  readonly #keepalive: ReturnType<typeof setInterval>;

  constructor(session: ClientSession, handlers: ChatHandlers) {
    this.session = session;
    // three missed keepalives of the server's interval (45 s with the default 15 s)
    this.#silenceMs = KEEPALIVE_MISSES * session.keepaliveMs;
    this.#keepalive = setInterval(() => {
      session.channel.send({ type: "keepalive" }).catch(() => {});
    }, session.keepaliveMs);
    this.ended = this.#receiveLoop(handlers).finally(() => {
      clearInterval(this.#keepalive);
      session.channel.close();
    });
  }

  /** Sends one line. Throws RangeError (sending nothing) if it cannot fit one frame. */
  say(text: string): Promise<void> {
    return this.session.channel.send({ type: "msg", text });
  }

  /** Asks the server who is present (answered through handlers.who). */
  askWho(): void {
    this.session.channel.send({ type: "who" }).catch(() => {});
  }

  /**
   * Says bye, then waits (at most 2 s) for the server to close the connection: closing first
   * could reset it with unread input and destroy the bye before the server reads it.
   */
  async leave(): Promise<ChatEnd> {
    if (!this.#leaving) {
      this.#leaving = true;
      this.session.channel.send({ type: "bye" }).catch(() => {});
      await withDeadline(this.ended, 2000, "bye", () => this.session.channel.close())
        .catch(() => {});
    }
    return this.ended;
  }

  async #receiveLoop(handlers: ChatHandlers): Promise<ChatEnd> {
    const channel = this.session.channel;
    try {
      while (true) {
        const message: Message | null = await channel.receive(this.#silenceMs);
        if (message === null) {
          return this.#leaving
            ? { kind: "left" }
            : { kind: "lost", reason: "the server closed the connection without a bye" };
        }
        switch (message.type) {
          case "msg":
            handlers.message(String(message.from), String(message.text));
            break;
          case "presence":
            handlers.presence(
              String(message.event),
              String(message.name),
              String(message.event === "join" ? message.fingerprint : message.reason),
            );
            break;
          case "who":
            handlers.who(Array.isArray(message.members) ? message.members.map(String) : []);
            break;
          case "notice":
            handlers.notice(String(message.code), String(message.message ?? ""));
            break;
          case "bye":
            return { kind: "server-ended" };
          case "error":
            return {
              kind: "removed",
              code: String(message.code),
              message: String(message.message ?? ""),
            };
          default: // keepalive and unknown types
        }
      }
    } catch (error) {
      if (this.#leaving) return { kind: "left" };
      if (error instanceof TimeoutError) {
        return { kind: "lost", reason: `the server was silent for ${this.#silenceMs / 1000} s` };
      }
      return { kind: "lost", reason: (error as Error).message };
    }
  }
}
