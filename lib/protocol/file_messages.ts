/**
 * The file-transfer vocabulary of `chat/1` (docs/PROTOCOL.md section 7.11): the four JSON
 * messages that offer, accept, acknowledge and end a transfer, and the one binary message that
 * carries its bytes (a chunk). Spelt here and nowhere else; messages.ts folds them into the
 * parsers of each direction.
 *
 * A chunk is told apart from the JSON messages by its first byte: a JSON plaintext starts with
 * `{` (or JSON white space), a binary one with 0x00, which no JSON text can start with.
 * @module
 */
import { MAX_PLAINTEXT_BYTES } from "./constants.ts";
import { bytesOfHex, hexOf } from "./bytes.ts";
import { ProtocolError } from "../errors.ts";

/** The file messages' `type`s. */
export const FileMessageType = {
  offer: "file-offer",
  accept: "file-accept",
  ack: "file-ack",
  end: "file-end",
} as const;

/**
 * The codes of `file-end`: how a transfer ended. A peer must accept codes it does not know (a
 * failure, worded by `message`).
 */
export const FileEndCode = {
  /** The receiver has the whole file and its SHA-256 matched. */
  done: "done",
  /** The receiver said no. */
  declined: "declined",
  /** Either side gave up (Ctrl-C, a local error). */
  cancelled: "cancelled",
  /** The bytes received do not have the offered SHA-256. */
  badHash: "bad-hash",
  /** Server: the file is over its `--max-file-bytes`. */
  tooLarge: "too-large",
  /** Server: the sender or the receiver has as many transfers as the server allows. */
  busy: "busy",
  /** Server: nobody of that name is here. */
  noSuchMember: "no-such-member",
  /** Server: the receiver's client cannot take files. */
  unsupported: "unsupported",
  /** Server: the offer was not accepted in time. */
  expired: "expired",
  /** Server: the other side left the room. */
  gone: "gone",
  /** Server: the offer or a chunk broke the rules (an id in use, a gap, past the size). */
  badOffer: "bad-offer",
  /** Server: the receiver took nothing for the silence limit (45 s by default). */
  stalled: "stalled",
} as const;

/** A transfer's id: 8 random bytes chosen by the sender, as 16 lowercase hex digits in JSON. */
export const TRANSFER_ID_BYTES = 8;
/** The first byte of every binary plaintext: no JSON text starts with it. */
export const BINARY_MARKER = 0x00;
/** The second byte of a chunk (other values are binary kinds a later version may add). */
export const CHUNK_KIND = 0x01;
/** marker (1) + kind (1) + transfer id (8) + offset (8, big-endian). */
export const CHUNK_HEADER_BYTES = 2 + TRANSFER_ID_BYTES + 8;
/** The most file bytes one chunk carries: what fills the largest plaintext (65519 bytes). */
export const MAX_CHUNK_DATA_BYTES = MAX_PLAINTEXT_BYTES - CHUNK_HEADER_BYTES;
/**
 * How many bytes a sender may have sent beyond the receiver's last `file-ack` (section 7.11):
 * the end-to-end window that keeps the bytes in flight, and so the wait of a chat line queued
 * behind them, small.
 */
export const FILE_WINDOW_BYTES = 4 << 20;
/** A receiver acknowledges at least every this many bytes written (and at the end). */
export const FILE_ACK_BYTES = 128 << 10;
/** The longest file name an offer may carry, in UTF-8 bytes. */
export const MAX_FILE_NAME_BYTES = 1024;
/** The largest size an offer may give: 2^53 - 1, the largest exact integer in JSON here. */
export const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;

/** c->s `file-offer`: the sender offers a file to the member `to`. */
export interface FileOfferRequest {
  type: typeof FileMessageType.offer;
  id: string;
  to: string;
  name: string;
  size: number;
  sha256: string;
}

/** s->c `file-offer`: an offer to this client, from `from`, good for `expires_ms`. */
export interface FileOffer {
  type: typeof FileMessageType.offer;
  id: string;
  from: string;
  fingerprint: string;
  name: string;
  size: number;
  sha256: string;
  expires_ms: number;
}

/** `file-accept` (both ways): the receiver takes the file from `offset` (what it already has). */
export interface FileAccept {
  type: typeof FileMessageType.accept;
  id: string;
  offset: number;
}

/** `file-ack` (both ways): the receiver has written the file's first `offset` bytes. */
export interface FileAck {
  type: typeof FileMessageType.ack;
  id: string;
  offset: number;
}

/** `file-end` (both ways): the transfer is over, and how. */
export interface FileEnd {
  type: typeof FileMessageType.end;
  id: string;
  code: string;
  message: string;
}

/** A chunk as received: `data` are the file's bytes at `offset`; `plaintext` the whole message. */
export interface Chunk {
  type: "chunk";
  id: string;
  offset: number;
  data: Uint8Array;
  plaintext: Uint8Array;
}

/** The JSON file messages a client sends (chunks travel as bytes: chunkPlaintext). */
export type FileClientMessage = FileOfferRequest | FileAccept | FileAck | FileEnd;
/** The JSON file messages a server sends. */
export type FileServerMessage = FileOffer | FileAccept | FileAck | FileEnd;

const TRANSFER_ID = /^[0-9a-f]{16}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const CODE = /^[a-z][a-z0-9-]{0,31}$/;
const FINGERPRINT = /^[0-9a-f]{4}(?::[0-9a-f]{4}){3}$/;
const utf8 = new TextEncoder();

type Json = { type: string; [field: string]: unknown };
type Check = (value: unknown) => boolean;

const isString: Check = (value) => typeof value === "string";
const isId: Check = (value) => isString(value) && TRANSFER_ID.test(value as string);
const isSha256: Check = (value) => isString(value) && SHA256_HEX.test(value as string);
const isCode: Check = (value) => isString(value) && CODE.test(value as string);
const isFingerprint: Check = (value) => isString(value) && FINGERPRINT.test(value as string);
const isSize: Check = (value) =>
  Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_FILE_SIZE;
/** An offered name: any non-empty string of at most 1024 UTF-8 bytes (made safe by whoever saves it). */
const isFileName: Check = (value) =>
  isString(value) && (value as string).length > 0 &&
  utf8.encode(value as string).length <= MAX_FILE_NAME_BYTES;

/** Field `name` of `message`, checked; a field the peer got wrong is a ProtocolError naming it. */
function field<T>(message: Json, name: string, valid: Check, what: string): T {
  const value = message[name];
  if (!valid(value)) {
    throw new ProtocolError(`bad ${message.type}: "${name}" is not ${what}`);
  }
  return value as T;
}

const ID = "a transfer id (16 hex digits)";
const SIZE = "a size in bytes";

function parseAcceptOrAck(message: Json): FileAccept | FileAck {
  return {
    type: message.type as "file-accept",
    id: field(message, "id", isId, ID),
    offset: field(message, "offset", isSize, SIZE),
  };
}

function parseEnd(message: Json): FileEnd {
  return {
    type: FileMessageType.end,
    id: field(message, "id", isId, ID),
    code: field(message, "code", isCode, "a code"),
    message: isString(message.message) ? message.message as string : "",
  };
}

/** The fields every offer has, both ways: the id and the file's name, size and hash. */
function parseFileFields(message: Json) {
  return {
    id: field<string>(message, "id", isId, ID),
    name: field<string>(message, "name", isFileName, "a file name of 1 to 1024 bytes"),
    size: field<number>(message, "size", isSize, SIZE),
    sha256: field<string>(message, "sha256", isSha256, "a SHA-256 in hex"),
  };
}

/**
 * A file message, or undefined when `message` is not one: `parseOffer` reads an offer as this
 * direction has it; accept, ack and end are the same both ways.
 */
function parseFileMessage<Offer>(
  message: Json,
  parseOffer: (message: Json) => Offer,
): Offer | FileAccept | FileAck | FileEnd | undefined {
  switch (message.type) {
    case FileMessageType.offer:
      return parseOffer(message);
    case FileMessageType.accept:
    case FileMessageType.ack:
      return parseAcceptOrAck(message);
    case FileMessageType.end:
      return parseEnd(message);
    default:
      return undefined;
  }
}

/**
 * A file message from a client, or undefined when `message` is not one. Throws ProtocolError
 * for a file message with a bad field.
 */
export function parseFileClientMessage(message: Json): FileClientMessage | undefined {
  return parseFileMessage(message, (offer): FileOfferRequest => ({
    type: FileMessageType.offer,
    ...parseFileFields(offer),
    // a name that names nobody is answered with no-such-member, so any string is taken
    to: field(offer, "to", isString, "a string"),
  }));
}

/**
 * A file message from the server, or undefined when `message` is not one. Throws ProtocolError
 * for a file message with a bad field. `isName` checks a display name (messages.ts).
 */
export function parseFileServerMessage(
  message: Json,
  isName: (value: unknown) => boolean,
): FileServerMessage | undefined {
  return parseFileMessage(message, (offer): FileOffer => ({
    type: FileMessageType.offer,
    ...parseFileFields(offer),
    from: field(offer, "from", isName, "a display name"),
    fingerprint: field(offer, "fingerprint", isFingerprint, "a fingerprint"),
    expires_ms: field(offer, "expires_ms", isSize, "a time in milliseconds"),
  }));
}

// --- Chunks (binary) ------------------------------------------------------------------------

/** Whether a plaintext is binary (a chunk, or a later binary kind) rather than JSON. */
export function isBinary(plaintext: Uint8Array): boolean {
  return plaintext.length > 0 && plaintext[0] === BINARY_MARKER;
}

/**
 * A chunk's plaintext with room for `dataBytes` of file data after its header: the caller reads
 * the file straight into `plaintext.subarray(CHUNK_HEADER_BYTES)`, saving a copy per chunk.
 */
export function chunkPlaintext(id: string, offset: number, dataBytes: number): Uint8Array {
  return chunkPlaintextIn(new Uint8Array(MAX_PLAINTEXT_BYTES), id, offset, dataBytes);
}

/**
 * chunkPlaintext() in a buffer of the caller's (at least MAX_PLAINTEXT_BYTES long, reused
 * once the chunk is written: a fresh zeroed 64 KiB buffer per chunk showed in a profile).
 * Returns the chunk's view of `buffer`.
 */
export function chunkPlaintextIn(
  buffer: Uint8Array,
  id: string,
  offset: number,
  dataBytes: number,
): Uint8Array {
  if (!TRANSFER_ID.test(id)) throw new RangeError(`bad transfer id "${id}"`);
  if (!(Number.isInteger(dataBytes) && dataBytes >= 1 && dataBytes <= MAX_CHUNK_DATA_BYTES)) {
    throw new RangeError(`a chunk carries 1 to ${MAX_CHUNK_DATA_BYTES} bytes, not ${dataBytes}`);
  }
  if (!isSize(offset)) throw new RangeError(`bad chunk offset ${offset}`);
  const plaintext = buffer.subarray(0, CHUNK_HEADER_BYTES + dataBytes);
  plaintext[0] = BINARY_MARKER;
  plaintext[1] = CHUNK_KIND;
  plaintext.set(bytesOfHex(id), 2);
  new DataView(plaintext.buffer, plaintext.byteOffset).setBigUint64(
    2 + TRANSFER_ID_BYTES,
    BigInt(offset),
  );
  return plaintext;
}

/**
 * Reads a binary plaintext: a chunk, or undefined for a binary kind this version does not know
 * (ignored, as unknown JSON types are). Throws ProtocolError for a chunk with no data, or an
 * offset past 2^53 - 1.
 *
 * @example
 * ```ts
 * import { chunkPlaintext, decodeChunk } from "./file_messages.ts";
 * const plaintext = chunkPlaintext("00112233aabbccdd", 65536, 3);
 * plaintext.set([1, 2, 3], plaintext.length - 3);
 * decodeChunk(plaintext)?.offset; // 65536
 * ```
 */
export function decodeChunk(plaintext: Uint8Array): Chunk | undefined {
  if (plaintext.length < 2 || plaintext[1] !== CHUNK_KIND) return undefined;
  if (plaintext.length <= CHUNK_HEADER_BYTES) {
    throw new ProtocolError("a chunk with no data");
  }
  const view = new DataView(plaintext.buffer, plaintext.byteOffset, plaintext.length);
  const offset = view.getBigUint64(2 + TRANSFER_ID_BYTES);
  if (offset > BigInt(MAX_FILE_SIZE)) throw new ProtocolError("a chunk offset past 2^53 - 1");
  return {
    type: "chunk",
    id: hexOf(plaintext.subarray(2, 2 + TRANSFER_ID_BYTES)),
    offset: Number(offset),
    data: plaintext.subarray(CHUNK_HEADER_BYTES),
    plaintext,
  };
}

/** `{"type":"file-end",…}`. */
export function fileEnd(id: string, code: string, message: string): FileEnd {
  return { type: FileMessageType.end, id, code, message };
}

/** A fresh random transfer id. */
export function newTransferId(): string {
  return hexOf(crypto.getRandomValues(new Uint8Array(TRANSFER_ID_BYTES)));
}
