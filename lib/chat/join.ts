/**
 * Joining a server: connect, authenticate the server (pinning its key the way SSH does), follow
 * it to the data port and join. What comes after the welcome is client.ts's.
 *
 * No printing and no exiting here: what happens is reported through the errors below, and the
 * command glue decides what the user sees and the exit code.
 * @module
 */
import { Channel } from "../protocol/channel.ts";
import type { KeyPair } from "../protocol/crypto.ts";
import { withDeadline } from "../protocol/deadline.ts";
import { initiateHandshake } from "../protocol/handshake_io.ts";
import {
  CLIENT_SIDE,
  type ClientMessage,
  CONTROL_CLIENT_SIDE,
  type ControlMessage,
  describeType,
  ErrorCode,
  Feature,
  type FromServer,
  MessageType,
  type WelcomeMessage,
} from "../protocol/messages.ts";
import type { FrameReader } from "../protocol/frame.ts";
import {
  ConnectError,
  ProtocolError,
  ServerKeyChangedError,
  ServerRefusedError,
  TimeoutError,
  UnknownServerError,
} from "../errors.ts";
import { canonicalHost, isIPv6 } from "../keys/address.ts";
import { sameKey } from "../keys/key_text.ts";
import { HANDSHAKE_TIMEOUT_MS, JOIN_TIMEOUT_MS } from "./limits.ts";
import { type Conn, type Network, TCP } from "./network.ts";

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
  /**
   * What a first contact (no pin for the address, no `serverKey`) does: `pin` the key presented
   * (trust on first use, the default), or `refuse` it with UnknownServerError, writing nothing
   * (for scripts, like ssh's StrictHostKeyChecking=yes; `pin` is its accept-new).
   */
  firstContact?: "pin" | "refuse";
  /**
   * Asked on a first contact that would pin (the person at a terminal, like ssh): true trusts
   * and pins the key, false refuses it (UnknownServerError). Absent: trust on first use.
   */
  confirmFirstContact?: (address: string, presented: Uint8Array) => Promise<boolean>;
  /**
   * An invite's secret, presented in m3 (section 4.4) so that a server that does not allow our
   * key yet lets it in. Only after the server's key was checked, so give `serverKey` with it.
   */
  invite?: Uint8Array;
  /**
   * Whether this client takes files (it then lists `files` in its join, and the server may
   * offer it files and send it chunks: section 7.11).
   */
  acceptsFiles?: boolean;
  /** Told when a server key is pinned for the first time. */
  onPinned?: (address: string, key: Uint8Array) => void;
  timeoutMs?: number;
  /** TCP unless given (tests pass an in-memory network). */
  network?: Network;
}

/**
 * The largest frame read on the control connection after the handshake: its one message is a
 * `port` or an `error` (section 6.1), never more than a few hundred bytes.
 */
const MAX_CONTROL_FRAME_BYTES = 1024;
/** A joined session. */
export interface ClientSession {
  channel: Channel<FromServer, ClientMessage>;
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
  /** What the server can do beyond the core (from its welcome). */
  features: ReadonlySet<string>;
}

/** What this client can show, told to the server in its join. */
export const CLIENT_FEATURES: readonly string[] = [
  Feature.private,
  Feature.action,
  Feature.history,
  Feature.moderation,
];

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

async function dial(
  network: Network,
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<Conn> {
  const address = addressOf(hostname, port);
  // the address pins are keyed by is the address dialled, whatever the resolver makes of the rest
  const attempt = network.connect({ hostname: hostOf(hostname), port });
  try {
    const connection = await withDeadline(attempt, timeoutMs, "connect timed out", () => {
      attempt.then((late) => late.close(), () => {});
    });
    connection.setNoDelay?.(true);
    return connection;
  } catch (error) {
    const [failure, why] = error instanceof Deno.errors.ConnectionRefused
      ? ["refused", "connection refused"] as const
      : error instanceof TimeoutError
      ? ["timeout", `no answer within ${timeoutMs / 1000} s`] as const
      : ["failed", (error as Error).message] as const;
    throw new ConnectError(address, failure, `cannot reach ${address}: ${why}`, { cause: error });
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
  const firstContact = known.every((pinned) => pinned === undefined);
  if (firstContact && config.firstContact === "refuse") {
    throw new UnknownServerError(address, presented);
  }
  // at a terminal, the person decides, as ssh asks (bounded by the handshake's deadline)
  if (firstContact && config.confirmFirstContact) {
    if (!await config.confirmFirstContact(address, presented)) {
      throw new UnknownServerError(address, presented, "you did not trust its key");
    }
  }
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
 * ServerKeyChangedError, UnknownServerError, ServerRefusedError, ProtocolError or TimeoutError.
 */
export async function joinServer(config: ConnectConfig): Promise<ClientSession> {
  const network = config.network ?? TCP;
  const timeoutMs = config.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const control = await dial(network, config.hostname, config.port, timeoutMs);
  const opened: { close(): void }[] = [];
  try {
    // the pin is checked after m2, before m3 reveals our key and name to the server
    const handshake = await withDeadline(
      initiateHandshake(
        control,
        config.identity,
        config.name,
        (key) => verifyServerKey(config, key, control.remoteAddr),
        { invite: config.invite },
      ),
      timeoutMs,
      "the server did not complete the handshake in time",
      () => control.close(),
    );
    const controlSide = new Channel(control, handshake.send, handshake.receive, {
      codec: CONTROL_CLIENT_SIDE,
      reader: handshake.reader,
      ownsCiphers: true,
    });
    opened.push(controlSide);
    const port = await readPort(controlSide, handshake.reader, timeoutMs);

    // follow it to the data port; the same CipherStates carry on there
    const data = await dial(network, config.hostname, port, timeoutMs);
    const channel = new Channel(data, handshake.send, handshake.receive, {
      codec: CLIENT_SIDE,
      ownsCiphers: true,
    });
    opened.push(channel);
    // section 7.10: what this client can show, so the server sends it only what it can
    const features = [...CLIENT_FEATURES, ...(config.acceptsFiles ? [Feature.files] : [])];
    await channel.send({ type: MessageType.join, features });
    controlSide.close(); // the data channel owns the ciphers now: they are not wiped
    const welcome = await readWelcome(channel);
    return {
      channel,
      serverKey: handshake.remoteStaticKey,
      name: welcome.name,
      serverName: welcome.server,
      members: welcome.members,
      maxLineBytes: welcome.max_line_bytes,
      keepaliveMs: welcome.keepalive_ms,
      features: new Set(welcome.features),
    };
  } catch (error) {
    // The deadline, or the control channel's close after the join, may have closed it already:
    // a second close would throw BadResource and hide the real error.
    try {
      control.close();
    } catch { /* already closed */ }
    opened.forEach((channel) => channel.close()); // the last owner to close wipes the keys
    throw error;
  }
}

/** The first transport message: the data port, or why we are refused (section 6.1 step 3). */
async function readPort(
  control: Channel<ControlMessage, never>,
  reader: FrameReader,
  timeoutMs: number,
): Promise<number> {
  reader.maxFrameBytes = MAX_CONTROL_FRAME_BYTES;
  const first = await control.receive(timeoutMs);
  if (first === null) {
    throw new ProtocolError("the server closed the connection after the handshake");
  }
  if (first.type === MessageType.error) throw new ServerRefusedError(first.code, first.message);
  return first.port;
}

/** The server's answer to our join: its welcome, or a refusal (section 6.1 step 7). */
async function readWelcome(channel: ClientSession["channel"]): Promise<WelcomeMessage> {
  const welcome = await channel.receive(JOIN_TIMEOUT_MS);
  if (welcome === null) {
    throw new ProtocolError("the server closed the data connection before welcoming us");
  }
  if (welcome.type === MessageType.error) {
    throw new ServerRefusedError(welcome.code, welcome.message);
  }
  if (welcome.type === MessageType.bye) {
    throw new ServerRefusedError(ErrorCode.closing, "the server is shutting down");
  }
  if (welcome.type !== MessageType.welcome) {
    throw new ProtocolError(`expected a welcome message, got ${describeType(welcome.type)}`);
  }
  return welcome;
}
