/**
 * Length-prefixed frames: a 2-byte big-endian length N (1..65535), then N bytes.
 *
 * This is the only place frames are cut. The reader keeps one fixed buffer (bounded memory
 * whatever the peer sends) and reads as much as the socket offers, so a burst of small frames
 * costs one read, not two per frame.
 * @module
 */
import { FRAME_HEADER_BYTES, MAX_FRAME_BYTES } from "./constants.ts";
import { ProtocolError } from "../errors.ts";

/** Something frames can be read from (a `Deno.Conn` is one). */
export interface ByteReader {
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Something frames can be written to (a `Deno.Conn` is one). */
export interface ByteWriter {
  write(bytes: Uint8Array): Promise<number>;
}

/** A violation of the framing rules: the connection cannot be trusted any further. */
export class FrameError extends ProtocolError {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

/**
 * Returns the frame for `body`: its 2-byte big-endian length, then the body.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./frame.ts";
 * const frame = encodeFrame(new Uint8Array([7, 8, 9]));
 * if (frame.join(",") !== "0,3,7,8,9") throw new Error("unexpected frame");
 * ```
 */
export function encodeFrame(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  writeFrameHeader(frame, 0, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Writes the 2-byte big-endian header of a `length`-byte frame body at `offset`, for a caller
 * that writes the body itself (the channel seals straight after it). Throws FrameError for a
 * length outside 1..65535.
 */
export function writeFrameHeader(buffer: Uint8Array, offset: number, length: number): void {
  checkFrameLength(length);
  buffer[offset] = length >>> 8;
  buffer[offset + 1] = length & 0xff;
}

/** Throws FrameError unless `length` is a valid frame body length (1..65535). */
export function checkFrameLength(length: number): void {
  if (length === 0) throw new FrameError("zero-length frame");
  if (length > MAX_FRAME_BYTES) {
    throw new FrameError(`frame of ${length} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`);
  }
}

/** Writes every byte of `bytes`, looping over short writes. */
export async function writeAll(writer: ByteWriter, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await writer.write(bytes.subarray(offset));
  }
}

function checkLimit(limit: number): number {
  if (!(Number.isInteger(limit) && limit >= 1 && limit <= MAX_FRAME_BYTES)) {
    throw new RangeError(`maxFrameBytes must be 1..${MAX_FRAME_BYTES}, got ${limit}`);
  }
  return limit;
}

/** The most the buffer grows to: two whole frames of up to `limit` bytes (see #fill). */
function bufferBytes(limit: number): number {
  return 2 * (FRAME_HEADER_BYTES + limit);
}

/** Where the buffer starts: enough for a handshake or a chat line without growing. */
const INITIAL_BUFFER_BYTES = 4096;

/**
 * Reads frames from a byte stream with one buffer that starts at 4 KiB and grows (doubling,
 * never shrinking) only when a frame needs it, up to 2 x (header + limit). An idle session or a
 * stranger's half-open connection must stay cheap: a buffer sized for the protocol maximum cost
 * 128 KiB per connection (2,000 garbage connections grew the server by ~47 MiB; 1,000 idle
 * sessions took ~340 KiB each).
 */
export class FrameReader {
  readonly #source: ByteReader;
  #maxFrameBytes: number;
  #buffer: Uint8Array;
  #start = 0;
  #end = 0;

  /** `maxFrameBytes` may lower the limit (never raise it above 65535). */
  constructor(source: ByteReader, maxFrameBytes = MAX_FRAME_BYTES) {
    this.#source = source;
    this.#maxFrameBytes = checkLimit(maxFrameBytes);
    this.#buffer = new Uint8Array(Math.min(INITIAL_BUFFER_BYTES, bufferBytes(maxFrameBytes)));
  }

  /** The largest frame body accepted now (the handshake runs with a lower one). */
  get maxFrameBytes(): number {
    return this.#maxFrameBytes;
  }

  /** Raising the limit allocates nothing: the buffer grows when a larger frame arrives. */
  set maxFrameBytes(limit: number) {
    this.#maxFrameBytes = checkLimit(limit);
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /**
   * The next frame's body, or null when the peer closed cleanly between frames.
   * The returned view is valid until the next call (it points into the reader's buffer).
   * Throws FrameError on a zero length, a length over the limit, or a close mid-frame.
   */
  async readFrame(): Promise<Uint8Array | null> {
    if (!await this.#fill(FRAME_HEADER_BYTES)) {
      if (this.buffered === 0) return null;
      throw new FrameError("connection closed in the middle of a frame header");
    }
    const length = (this.#buffer[this.#start] << 8) | this.#buffer[this.#start + 1];
    checkFrameLength(length);
    if (length > this.#maxFrameBytes) {
      throw new FrameError(
        `frame of ${length} bytes exceeds the ${this.#maxFrameBytes}-byte limit`,
      );
    }
    if (!await this.#fill(FRAME_HEADER_BYTES + length)) {
      throw new FrameError(
        `connection closed in the middle of a frame (${
          this.buffered - FRAME_HEADER_BYTES
        } of ${length} bytes)`,
      );
    }
    const bodyStart = this.#start + FRAME_HEADER_BYTES;
    this.#start = bodyStart + length;
    return this.#buffer.subarray(bodyStart, this.#start);
  }

  /** Ensures `count` bytes are buffered; false if the source ended first. */
  async #fill(count: number): Promise<boolean> {
    if (this.buffered >= count) return true;
    if (this.#buffer.length - this.#start < count) {
      if (this.#buffer.length >= count) {
        // move the partial frame to the front
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        // grow; count <= header + limit, so the cap (two whole frames) always fits it
        const size = Math.min(
          bufferBytes(this.#maxFrameBytes),
          Math.max(count, 2 * this.#buffer.length),
        );
        const grown = new Uint8Array(size);
        grown.set(this.#buffer.subarray(this.#start, this.#end));
        this.#buffer = grown;
      }
      this.#end -= this.#start;
      this.#start = 0;
    }
    while (this.buffered < count) {
      const n = await this.#source.read(this.#buffer.subarray(this.#end));
      if (n === null) return false;
      this.#end += n;
    }
    return true;
  }
}
