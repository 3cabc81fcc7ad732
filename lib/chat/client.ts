/**
 * The chat client: connect, authenticate the server (pinning its key the way SSH does), follow
 * it to the data port, join, and then carry the conversation as events.
 *
 * No printing and no exiting here: what happens is reported through the errors below and the
 * ChatHandlers callbacks, and the command glue decides what the user sees and the exit code.
 * @module
 */
import { Channel, type Message } from "../protocol/channel.ts";
import {
  HANDSHAKE_TIMEOUT_MS,
  JOIN_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  KEEPALIVE_MISSES,
  MAX_KEEPALIVE_MS,
  MIN_KEEPALIVE_MS,
  NAME_PATTERN,
} from "../protocol/constants.ts";
import type { KeyPair } from "../protocol/crypto.ts";
import { ProtocolError, TimeoutError, withDeadline } from "../errors.ts";
import { canonicalHost, isIPv6 } from "../keys/address.ts";
import { sameKey } from "../keys/key_text.ts";
import { initiateHandshake } from "../protocol/handshake_io.ts";

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
 * keepalive storm helps nobody, and a server may not ask for less), at most MAX_KEEPALIVE_MS,
 * 15 s when it said nothing.
 */
export function keepaliveInterval(announced: unknown): number {
  if (typeof announced !== "number" || !(announced > 0) || !Number.isFinite(announced)) {
    return KEEPALIVE_INTERVAL_MS;
  }
  return Math.min(MAX_KEEPALIVE_MS, Math.max(MIN_KEEPALIVE_MS, Math.round(announced)));
}

/** A positive integer field of a message, or `fallback`. */
function positiveInteger(value: unknown, fallback: number, minimum = 1): number {
  return Number.isSafeInteger(value) && (value as number) >= minimum ? value as number : fallback;
}

// --- What the server sends, parsed exactly (PROTOCOL.md section 7.2) -----------------------

/**
 * A display name (PROTOCOL.md section 8): a name or label, alone or followed by `~` and 4 to 16
 * lowercase hex digits of a fingerprint.
 */
const DISPLAY_NAME = new RegExp(`^${NAME_PATTERN.source.slice(1, -1)}(?:~[0-9a-f]{4,16})?$`);
/** An error or notice code (sections 7.3 and 7.4): a short lowercase token. */
const CODE = /^[a-z][a-z0-9-]{0,31}$/;
/** A key fingerprint (section 3.5): four groups of four lowercase hex digits. */
const FINGERPRINT = /^[0-9a-f]{4}(?::[0-9a-f]{4}){3}$/;

/** Whether `value` is a display name the server may give (PROTOCOL.md section 8). */
export function isDisplayName(value: unknown): value is string {
  return typeof value === "string" && DISPLAY_NAME.test(value);
}

const isString = (value: unknown): value is string => typeof value === "string";
const isCode = (value: unknown): value is string => isString(value) && CODE.test(value);
const isFingerprint = (v: unknown): v is string => isString(v) && FINGERPRINT.test(v);
const isPort = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
const isDisplayNames = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every(isDisplayName);

/**
 * Field `name` of a message of a known type, checked with `valid`: a field the server got wrong
 * is a ProtocolError that says which (never its value: that could be anything).
 */
function field<T>(
  message: Message,
  name: string,
  valid: (value: unknown) => value is T,
  what: string,
): T {
  const value = message[name];
  if (!valid(value)) {
    throw new ProtocolError(`the server sent a bad ${message.type}: "${name}" is not ${what}`);
  }
  return value;
}

const NAME = "a display name";
const NAMES = "a list of display names";

/** A message the server may send on the data connection, parsed exactly (section 7.2). */
export type ServerMessage =
  | { type: "msg"; from: string; text: string }
  | { type: "presence"; event: "join"; name: string; fingerprint: string }
  | { type: "presence"; event: "leave"; name: string; reason: string }
  | { type: "who"; members: string[] }
  | { type: "notice" | "error"; code: string; message: string }
  | { type: "keepalive" | "bye" };

/** A refusal or removal: `{type: "error", code, message}` with a code and a string message. */
function parseError(message: Message): { type: "error"; code: string; message: string } {
  return {
    type: "error",
    code: field(message, "code", isCode, "a code"),
    message: field(message, "message", isString, "a string"),
  };
}

/**
 * Parses what the server sent on the data connection after its welcome: the message, or
 * undefined for a type `chat/1` does not define (section 7.1: ignored). Throws ProtocolError
 * when a field is missing or of the wrong type, or a name is not a display name.
 */
export function parseServerMessage(message: Message): ServerMessage | undefined {
  switch (message.type) {
    case "msg":
      return {
        type: "msg",
        from: field(message, "from", isDisplayName, NAME),
        text: field(message, "text", isString, "a string"),
      };
    case "presence": {
      const name = field(message, "name", isDisplayName, NAME);
      if (message.event === "join") {
        const fingerprint = field(message, "fingerprint", isFingerprint, "a fingerprint");
        return { type: "presence", event: "join", name, fingerprint };
      }
      if (message.event === "leave") {
        // section 7.2: a client MUST accept reasons it does not know
        return {
          type: "presence",
          event: "leave",
          name,
          reason: field(message, "reason", isString, "a string"),
        };
      }
      throw new ProtocolError('the server sent a bad presence: "event" is not join or leave');
    }
    case "who":
      return { type: "who", members: field(message, "members", isDisplayNames, NAMES) };
    case "notice":
      return { ...parseError(message), type: "notice" };
    case "error":
      return parseError(message);
    case "keepalive":
    case "bye":
      return { type: message.type };
    default:
      return undefined;
  }
}

/** How a received type is named in an error: itself if it is a plain token, else not at all. */
function describeType(type: string): string {
  return CODE.test(type) ? `"${type}"` : "a message of another type";
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
  let controlChannel: Channel | undefined, channel: Channel | undefined;
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
    controlChannel = new Channel(control, handshake.send, handshake.receive, {
      reader: handshake.reader,
      ownsCiphers: true,
    });
    const first = await controlChannel.receive(timeoutMs);
    if (first === null) {
      throw new ProtocolError("the server closed the connection after the handshake");
    }
    if (first.type === "error") {
      const refusal = parseError(first);
      throw new ServerRefusedError(refusal.code, refusal.message);
    }
    if (first.type !== "port") {
      throw new ProtocolError(`expected a port message, got ${describeType(first.type)}`);
    }
    const port = field(first, "port", isPort, "a port number");

    // follow it to the data port; the same CipherStates carry on there
    const data = await dial(config.hostname, port, timeoutMs);
    channel = new Channel(data, handshake.send, handshake.receive, { ownsCiphers: true });
    await channel.send({ type: "join" });
    controlChannel.close(); // the data channel owns the ciphers now: they are not wiped
    const welcome = await channel.receive(JOIN_TIMEOUT_MS);
    if (welcome === null) {
      throw new ProtocolError("the server closed the data connection before welcoming us");
    }
    if (welcome.type === "error") {
      const refusal = parseError(welcome);
      throw new ServerRefusedError(refusal.code, refusal.message);
    }
    if (welcome.type === "bye") {
      throw new ServerRefusedError("closing", "the server is shutting down");
    }
    if (welcome.type !== "welcome") {
      throw new ProtocolError(`expected a welcome message, got ${describeType(welcome.type)}`);
    }
    return {
      channel,
      serverKey: handshake.remoteStaticKey,
      name: field(welcome, "name", isDisplayName, NAME),
      serverName: field(welcome, "server", isDisplayName, NAME),
      members: field(welcome, "members", isDisplayNames, NAMES),
      // section 7.7: without a positive integer limit, only the frame limit applies
      maxLineBytes: positiveInteger(welcome.max_line_bytes, Infinity),
      // section 7.5: between 1 s and 1 hour, whatever a server says
      keepaliveMs: keepaliveInterval(welcome.keepalive_ms),
    };
  } catch (error) {
    // The deadline, or controlChannel.close() after the join, may have closed it already: a
    // second close would throw BadResource and hide the real error.
    try {
      control.close();
    } catch { /* already closed */ }
    // the last owner to close wipes the transport keys
    controlChannel?.close();
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
        const parsed = parseServerMessage(message);
        switch (parsed?.type) {
          case "msg":
            handlers.message(parsed.from, parsed.text);
            break;
          case "presence":
            handlers.presence(
              parsed.event,
              parsed.name,
              parsed.event === "join" ? parsed.fingerprint : parsed.reason,
            );
            break;
          case "who":
            handlers.who(parsed.members);
            break;
          case "notice":
            handlers.notice(parsed.code, parsed.message);
            break;
          case "bye":
            return { kind: "server-ended" };
          case "error":
            return { kind: "removed", code: parsed.code, message: parsed.message };
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
