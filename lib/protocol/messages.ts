/**
 * The message vocabulary of `chat/1` (docs/PROTOCOL.md sections 4.4 and 7): every message type,
 * field, error, notice and leave code, with one exact parser per direction and the codecs a
 * Channel uses. A message type is spelt as a string here and nowhere else: the rest of the
 * program uses `MessageType` and the constructors below.
 * @module
 */
import {
  KEEPALIVE_INTERVAL_MS,
  MAX_KEEPALIVE_MS,
  MAX_PLAINTEXT_BYTES,
  MIN_KEEPALIVE_MS,
  NAME_PATTERN,
} from "./constants.ts";
import { ProtocolError } from "../errors.ts";
import { isValidName } from "./names.ts";
import { hexOf } from "./bytes.ts";
import {
  type Chunk,
  decodeChunk,
  type FileClientMessage,
  type FileServerMessage,
  isBinary,
  parseFileClientMessage,
  parseFileServerMessage,
} from "./file_messages.ts";

// --- Names of things ----------------------------------------------------------------------

/** Every message type of `chat/1` (section 7.2). */
export const MessageType = {
  port: "port",
  join: "join",
  welcome: "welcome",
  msg: "msg",
  presence: "presence",
  who: "who",
  keepalive: "keepalive",
  bye: "bye",
  notice: "notice",
  error: "error",
  private: "private",
} as const;

/**
 * What a server or client can do beyond `chat/1`'s core, announced in `welcome.features` and
 * `join.features` (section 7.10). A peer sends a feature's messages only to one that has it.
 */
export const Feature = {
  /** `private` messages. */
  private: "private",
  /** `action` lines (`/me`). */
  action: "action",
  /** replayed history after the welcome. */
  history: "history",
  /** `kicked` removals and `muted` notices. */
  moderation: "moderation",
  /** file transfers: the file messages and binary chunks (file_messages.ts). */
  files: "files",
} as const;

/** The codes of `error` (section 7.3). A client must accept codes it does not know. */
export const ErrorCode = {
  notAllowed: "not-allowed",
  busy: "busy",
  closing: "closing",
  revoked: "revoked",
  replaced: "replaced",
  nameConfusable: "name-confusable",
  kicked: "kicked",
  badInvite: "bad-invite",
} as const;

/** The codes of `notice` (section 7.4). */
export const NoticeCode = {
  slowDown: "slow-down",
  badLine: "bad-line",
  noSuchMember: "no-such-member",
  unsupported: "unsupported",
  muted: "muted",
  moderation: "moderation",
} as const;

/** Why a member left, as `presence` says (section 7.9). A client must accept other strings. */
export type LeaveReason = "left" | "lost" | "revoked" | "replaced" | "dropped" | "kicked";

// --- Messages -----------------------------------------------------------------------------

/** Any transport message as JSON gives it: an object with a string `type` (section 7.1). */
export type Message = { type: string; [field: string]: unknown };

/** `error` (section 7.3): the session ends. */
export interface ErrorMessage {
  type: typeof MessageType.error;
  code: string;
  message: string;
}

/** `welcome` (section 6.1 step 7), the server's first message on the data connection. */
export interface WelcomeMessage {
  type: typeof MessageType.welcome;
  name: string;
  server: string;
  members: string[];
  max_line_bytes: number;
  keepalive_ms: number;
  /** What the server can do beyond the core (Feature); [] from a server that says nothing. */
  features: string[];
}

/** A line said to the room, as relayed (s->c `msg`). */
export interface RoomLine {
  type: typeof MessageType.msg;
  from: string;
  text: string;
  /** The speaker's key fingerprint (absent for the operator of an older server). */
  fingerprint?: string;
  /** `/me`: an action, shown as `* from text`. */
  action?: boolean;
  /** A line from before the client joined, replayed from the server's history. */
  replay?: boolean;
  /** When it was said (ISO 8601; set on replayed lines). */
  time?: string;
}

/** A line to one member (s->c `private`). */
export interface PrivateLine {
  type: typeof MessageType.private;
  from: string;
  to: string;
  text: string;
  fingerprint?: string;
  action?: boolean;
}

/** The server's one message on the control connection: where to join, or why not. */
export type ControlMessage = { type: typeof MessageType.port; port: number } | ErrorMessage;

/** What a client sends on the data connection. */
export type ClientMessage =
  | { type: typeof MessageType.join; features?: string[] }
  /** `text` is null when the client sent no string: a bad line (section 7.7). */
  | { type: typeof MessageType.msg; text: string | null; action?: boolean }
  | { type: typeof MessageType.private; to: string; text: string | null; action?: boolean }
  | { type: typeof MessageType.who }
  | { type: typeof MessageType.keepalive }
  | { type: typeof MessageType.bye }
  | FileClientMessage;

/** What a server reads from a client: its JSON messages, and chunks (section 7.11). */
export type FromClient = ClientMessage | Chunk;

/** What a client sends that a server may find in its read loop (everything but `join`). */
export type ClientLine = Exclude<ClientMessage, { type: typeof MessageType.join }>;

/** What the server sends on the data connection. */
export type ServerMessage =
  | WelcomeMessage
  | RoomLine
  | PrivateLine
  | { type: typeof MessageType.presence; event: "join"; name: string; fingerprint: string }
  | { type: typeof MessageType.presence; event: "leave"; name: string; reason: string }
  | { type: typeof MessageType.who; members: string[] }
  | { type: typeof MessageType.notice; code: string; message: string }
  | ErrorMessage
  | { type: typeof MessageType.keepalive }
  | { type: typeof MessageType.bye }
  | FileServerMessage;

/** What a client reads from the server: its JSON messages, and chunks (section 7.11). */
export type FromServer = ServerMessage | Chunk;

/** The handshake payload of m2 and m3 (section 4.4). */
export interface HandshakePayload {
  name: string;
  /**
   * m3 only, optional: an invite's secret, as lowercase hex (section 4.4). A server that does
   * not know invites ignores it, as any unknown field.
   */
  invite?: string;
}

/** An invite secret in the m3 payload: 16 to 64 bytes as lowercase hex (section 4.4). */
const INVITE_HEX = /^(?:[0-9a-f]{2}){16,64}$/;

// --- Constructors (the server's and client's words) --------------------------------------

/** `{"type":"error",…}`. */
export function errorMessage(code: string, message: string): ErrorMessage {
  return { type: MessageType.error, code, message };
}

/** `{"type":"notice",…}`. */
export function noticeMessage(code: string, message: string): ServerMessage {
  return { type: MessageType.notice, code, message };
}

/** A message with no fields: `join`, `who`, `keepalive` or `bye`. */
export function bare<T extends "join" | "who" | "keepalive" | "bye">(type: T): { type: T } {
  return { type };
}

// --- Field rules ---------------------------------------------------------------------------

/**
 * A display name (section 8): a name or label, alone or followed by `~` and 4 to 16 lowercase
 * hex digits of a fingerprint.
 */
const DISPLAY_NAME = new RegExp(`^${NAME_PATTERN.source.slice(1, -1)}(?:~[0-9a-f]{4,16})?$`);
/** An error or notice code (sections 7.3 and 7.4): a short lowercase token. */
const CODE = /^[a-z][a-z0-9-]{0,31}$/;
/** A key fingerprint (section 3.5): four groups of four lowercase hex digits. */
const FINGERPRINT = /^[0-9a-f]{4}(?::[0-9a-f]{4}){3}$/;

/** Whether `value` is a display name a server may give (section 8). */
export function isDisplayName(value: unknown): value is string {
  return typeof value === "string" && DISPLAY_NAME.test(value);
}

/** Whether `value` is a code (an `error`'s, a `notice`'s). */
export function isCode(value: unknown): value is string {
  return typeof value === "string" && CODE.test(value);
}

const isString = (value: unknown): value is string => typeof value === "string";
const isFingerprint = (v: unknown): v is string => isString(v) && FINGERPRINT.test(v);
const isPort = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
const isDisplayNames = (value: unknown): value is string[] =>
  Array.isArray(value) && value.every(isDisplayName);
const NAME = "a display name";
const NAMES = "a list of display names";

/**
 * Field `name` of `message`, checked with `valid`: a field the peer got wrong is a
 * ProtocolError that says which (never its value: that could be anything).
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

/** The optional fields of a relayed line: the speaker's fingerprint, and `/me`. */
function lineExtras(message: Message): { fingerprint?: string; action?: boolean } {
  return {
    ...(message.fingerprint === undefined
      ? {}
      : { fingerprint: field(message, "fingerprint", isFingerprint, "a fingerprint") }),
    ...(message.action === true ? { action: true } : {}),
  };
}

/** How a received type is named in an error: itself if it is a plain token, else not at all. */
export function describeType(type: string): string {
  return CODE.test(type) ? `"${type}"` : "a message of another type";
}

// --- Parsers, one per direction ------------------------------------------------------------

function parseError(message: Message): ErrorMessage {
  return errorMessage(
    field(message, "code", isCode, "a code"),
    field(message, "message", isString, "a string"),
  );
}

/**
 * Parses the server's one message on the control connection (`port` or `error`). Anything else
 * is a protocol error: that connection carries exactly one message (sections 1.1 and 6.1).
 */
export function parseControlMessage(message: Message): ControlMessage {
  if (message.type === MessageType.error) return parseError(message);
  if (message.type === MessageType.port) {
    return { type: MessageType.port, port: field(message, "port", isPort, "a port number") };
  }
  throw new ProtocolError(`expected a port message, got ${describeType(message.type)}`);
}

/** Parses a `welcome`; throws ProtocolError for a bad field (sections 6.1 and 7.2). */
export function parseWelcome(message: Message): WelcomeMessage {
  return {
    type: MessageType.welcome,
    name: field(message, "name", isDisplayName, NAME),
    server: field(message, "server", isDisplayName, NAME),
    members: field(message, "members", isDisplayNames, NAMES),
    // sections 7.5 and 7.7: an absent or odd value falls back instead of failing
    max_line_bytes: Number.isSafeInteger(message.max_line_bytes) &&
        (message.max_line_bytes as number) >= 1
      ? message.max_line_bytes as number
      : Infinity,
    keepalive_ms: keepaliveInterval(message.keepalive_ms),
    // section 7.10: a server that does not say has none; names a client does not know are kept
    features: Array.isArray(message.features) ? message.features.filter(isCode) : [],
  };
}

/**
 * The keepalive interval to use for a server's announced `keepalive_ms` (section 7.5): at
 * least 1 s (a keepalive storm helps nobody, and a server may not ask for less), at most
 * MAX_KEEPALIVE_MS (so three of them stay a valid timer), 15 s when it said nothing usable.
 */
export function keepaliveInterval(announced: unknown): number {
  if (typeof announced !== "number" || !(announced > 0) || !Number.isFinite(announced)) {
    return KEEPALIVE_INTERVAL_MS;
  }
  return Math.min(MAX_KEEPALIVE_MS, Math.max(MIN_KEEPALIVE_MS, Math.round(announced)));
}

/**
 * Parses what the server sent on the data connection: the message, or undefined for a type
 * `chat/1` does not define (section 7.1: ignored). Throws ProtocolError when a field is missing
 * or of the wrong type, or a name is not a display name.
 */
export function parseServerMessage(message: Message): ServerMessage | undefined {
  switch (message.type) {
    case MessageType.welcome:
      return parseWelcome(message);
    case MessageType.msg:
      return {
        type: MessageType.msg,
        from: field(message, "from", isDisplayName, NAME),
        text: field(message, "text", isString, "a string"),
        ...lineExtras(message),
        ...(message.replay === true ? { replay: true } : {}),
        ...(isString(message.time) && !Number.isNaN(Date.parse(message.time))
          ? { time: message.time }
          : {}),
      };
    case MessageType.private:
      return {
        type: MessageType.private,
        from: field(message, "from", isDisplayName, NAME),
        to: field(message, "to", isDisplayName, NAME),
        text: field(message, "text", isString, "a string"),
        ...lineExtras(message),
      };
    case MessageType.presence: {
      const name = field(message, "name", isDisplayName, NAME);
      if (message.event === "join") {
        const fingerprint = field(message, "fingerprint", isFingerprint, "a fingerprint");
        return { type: MessageType.presence, event: "join", name, fingerprint };
      }
      if (message.event === "leave") {
        const reason = field(message, "reason", isString, "a string");
        return { type: MessageType.presence, event: "leave", name, reason };
      }
      throw new ProtocolError('the server sent a bad presence: "event" is not join or leave');
    }
    case MessageType.who:
      return { type: MessageType.who, members: field(message, "members", isDisplayNames, NAMES) };
    case MessageType.notice:
      return { ...parseError(message), type: MessageType.notice };
    case MessageType.error:
      return parseError(message);
    case MessageType.keepalive:
    case MessageType.bye:
      return { type: message.type };
    default:
      return parseFileServerMessage(message, isDisplayName);
  }
}

/**
 * Parses what a client sent on the data connection: the message, or undefined for a type the
 * server does not know (section 7.1: ignored, though hearing it resets the silence timer). A
 * `msg` whose `text` is not a string comes back with `text: null` (section 7.7: a bad line).
 */
export function parseClientMessage(message: Message): ClientMessage | undefined {
  switch (message.type) {
    case MessageType.msg:
      return {
        type: MessageType.msg,
        text: isString(message.text) ? message.text : null,
        ...(message.action === true ? { action: true } : {}),
      };
    case MessageType.private:
      return {
        type: MessageType.private,
        // a `to` that names nobody is answered with a notice, so any string is taken here
        to: isString(message.to) ? message.to : "",
        text: isString(message.text) ? message.text : null,
        ...(message.action === true ? { action: true } : {}),
      };
    case MessageType.join:
      return {
        type: MessageType.join,
        features: Array.isArray(message.features) ? message.features.filter(isCode) : [],
      };
    case MessageType.who:
    case MessageType.keepalive:
    case MessageType.bye:
      return { type: message.type };
    default:
      return parseFileClientMessage(message);
  }
}

// --- Bytes ---------------------------------------------------------------------------------

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");

/**
 * Decodes UTF-8, throwing on invalid input. The lenient decoder is ~9x faster here than the
 * fatal one on 64 KB; it replaces invalid sequences with U+FFFD, so text without U+FFFD proves
 * the input was valid, and only text that has one is decoded again strictly.
 */
export function decodeUtf8Strict(bytes: Uint8Array): string {
  const text = lenientUtf8.decode(bytes);
  return text.includes("\ufffd") ? strictUtf8.decode(bytes) : text;
}

/**
 * The plaintext of `message`: `JSON.stringify` (ECMA-262) as UTF-8, the serialisation section
 * 7.7's size rule counts. Throws RangeError if it cannot fit one frame.
 */
export function encodeMessage(message: Message | ServerMessage | ClientMessage): Uint8Array {
  const plaintext = utf8.encode(JSON.stringify(message));
  if (plaintext.length > MAX_PLAINTEXT_BYTES) {
    throw new RangeError(
      `message of ${plaintext.length} bytes exceeds the ${MAX_PLAINTEXT_BYTES}-byte limit`,
    );
  }
  return plaintext;
}

/**
 * Parses a decrypted plaintext into a JSON object with a string `type`; throws ProtocolError
 * otherwise. With duplicate member names the last one wins, as in JSON.parse (section 7.1).
 */
export function decodeMessage(plaintext: Uint8Array): Message {
  let value: unknown;
  try {
    value = JSON.parse(decodeUtf8Strict(plaintext));
  } catch {
    throw new ProtocolError("message is not UTF-8 JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("message is not a JSON object");
  }
  if (typeof (value as { type?: unknown }).type !== "string") {
    throw new ProtocolError('message has no string "type"');
  }
  return value as Message;
}

// --- Handshake payloads (section 4.4) ------------------------------------------------------

/**
 * The m2/m3 payload: `{"name": "<display name>"}`, with `"invite"` when an invite's secret is
 * presented (m3 only).
 *
 * @example
 * ```ts
 * import { decodeHandshakePayload, encodeNamePayload } from "./messages.ts";
 * const secret = new Uint8Array(16).fill(0xab);
 * decodeHandshakePayload(encodeNamePayload("bob", secret), "client").invite; // "abab…ab"
 * ```
 */
export function encodeNamePayload(name: string, invite?: Uint8Array): Uint8Array {
  const payload: HandshakePayload = { name };
  if (invite !== undefined) payload.invite = hexOf(invite);
  return utf8.encode(JSON.stringify(payload));
}

/** Parses an m2/m3 payload; throws ProtocolError unless it is a JSON object with a valid name. */
export function decodeNamePayload(payload: Uint8Array, whose: string): string {
  return decodeHandshakePayload(payload, whose).name;
}

/**
 * Parses an m2/m3 payload: its `name`, and its `invite` if it has one. Throws ProtocolError
 * unless it is a JSON object with a valid name, and for an `invite` that is not 16 to 64 bytes
 * of lowercase hex; other fields are ignored (section 4.4).
 */
export function decodeHandshakePayload(payload: Uint8Array, whose: string): HandshakePayload {
  let value: unknown;
  try {
    value = JSON.parse(decodeUtf8Strict(payload));
  } catch {
    throw new ProtocolError(`the ${whose}'s handshake payload is not UTF-8 JSON`);
  }
  const object = value as { name?: unknown; invite?: unknown } | null;
  const name = object?.name;
  if (typeof name !== "string" || !isValidName(name)) {
    throw new ProtocolError(`the ${whose}'s handshake payload has no valid "name"`);
  }
  const invite = object?.invite;
  if (invite === undefined) return { name };
  if (typeof invite !== "string" || !INVITE_HEX.test(invite)) {
    throw new ProtocolError(`the ${whose}'s handshake payload has a bad "invite"`);
  }
  return { name, invite };
}

// --- Codecs: what a Channel sends and receives on each side --------------------------------

/**
 * How a Channel turns its messages into plaintexts and back. `decode` returns undefined for a
 * message to skip (an unknown type) and throws ProtocolError for a malformed one.
 */
export interface Codec<In, Out> {
  encode(message: Out): Uint8Array;
  decode(plaintext: Uint8Array): In | undefined;
}

/**
 * The server's side of a data connection: JSON messages, and chunks (section 7.11), which a
 * client sends only to a server whose welcome lists `files`.
 */
export const SERVER_SIDE: Codec<FromClient, ServerMessage> = {
  encode: encodeMessage,
  decode: (plaintext) =>
    isBinary(plaintext) ? decodeChunk(plaintext) : parseClientMessage(decodeMessage(plaintext)),
};

/** The client's side of a data connection (chunks only come after its join listed `files`). */
export const CLIENT_SIDE: Codec<FromServer, ClientMessage> = {
  encode: encodeMessage,
  decode: (plaintext) =>
    isBinary(plaintext) ? decodeChunk(plaintext) : parseServerMessage(decodeMessage(plaintext)),
};

/** The server's side of a control connection: it sends one message and reads none. */
export const CONTROL_SERVER_SIDE: Codec<never, ControlMessage> = {
  encode: encodeMessage,
  decode: () => undefined,
};

/** The client's side of a control connection: one `port` or `error` to read. */
export const CONTROL_CLIENT_SIDE: Codec<ControlMessage, never> = {
  encode: encodeMessage,
  decode: (plaintext) => parseControlMessage(decodeMessage(plaintext)),
};

/** Any JSON message either way, unchecked: for tests and tools that play a hostile peer. */
export const ANY_MESSAGE: Codec<Message, Message> = {
  encode: encodeMessage,
  decode: decodeMessage,
};
