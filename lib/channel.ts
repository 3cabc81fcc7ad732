/**
 * A channel: typed JSON messages, each sealed as one Noise transport message in one frame.
 *
 * The channel owns ordering: a message's nonce is taken when `send` is called, and frames are
 * written in that same order, so concurrent senders can never put frames on the wire out of
 * nonce order. It knows nothing of chat semantics; callers ignore types they do not know.
 * @module
 */
import { MAX_PLAINTEXT_BYTES } from "./constants.ts";
import { DecryptError } from "./crypto.ts";
import { ProtocolError, withDeadline } from "./errors.ts";
import { type ByteReader, type ByteWriter, encodeFrame, FrameReader, writeAll } from "./frame.ts";

/** A transport message: a JSON object with a string `type`. */
export type Message = { type: string; [field: string]: unknown };

/** One direction of a Noise transport (a CipherState after Split()). */
export interface MessageCipher {
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
}

/** A connection a channel can run over (a `Deno.Conn` is one). */
export interface Connection extends ByteReader, ByteWriter {
  close(): void;
}

const NO_AD = new Uint8Array(0);
const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const lenientUtf8 = new TextDecoder("utf-8");

/**
 * What one queued frame costs beyond its bytes, counted against `maxQueuedBytes`: the frame's
 * typed array and the caller's promise and handler (~370 bytes of heap per queued 64-byte frame,
 * measured with 100,000 queued lines). Without it, 1 MiB "queued" of small frames took ~12 MiB.
 */
const QUEUED_FRAME_OVERHEAD_BYTES = 384;

function queuedCost(frame: Uint8Array): number {
  return frame.length + QUEUED_FRAME_OVERHEAD_BYTES;
}

/** Queued frames are joined into writes of at most this many bytes (a larger frame goes alone). */
const COALESCE_BYTES = 64 * 1024;

/** The end (exclusive) of the run of frames from `start` that fits one coalesced write. */
function coalesceEnd(frames: Uint8Array[], start: number): number {
  let end = start + 1;
  let size = frames[start].length;
  while (end < frames.length && size + frames[end].length <= COALESCE_BYTES) {
    size += frames[end++].length;
  }
  return end;
}

/** frames[start..end) as one buffer (the frame itself when there is only one). */
function joinFrames(frames: Uint8Array[], start: number, end: number): Uint8Array {
  if (end - start === 1) return frames[start];
  let size = 0;
  for (let i = start; i < end; i++) size += frames[i].length;
  const joined = new Uint8Array(size);
  for (let i = start, offset = 0; i < end; offset += frames[i++].length) {
    joined.set(frames[i], offset);
  }
  return joined;
}

/**
 * Decodes UTF-8, throwing on invalid input. The lenient decoder is ~9x faster here than the
 * fatal one on 64 KB; it replaces invalid sequences with U+FFFD, so text without U+FFFD proves
 * the input was valid, and only text that has one is decoded again strictly.
 */
export function decodeUtf8Strict(bytes: Uint8Array): string {
  const text = lenientUtf8.decode(bytes);
  return text.includes("\ufffd") ? strictUtf8.decode(bytes) : text;
}

/** Returns the UTF-8 JSON plaintext of `message`; throws RangeError if it cannot fit one frame. */
export function encodeMessage(message: Message): Uint8Array {
  const plaintext = utf8.encode(JSON.stringify(message));
  if (plaintext.length > MAX_PLAINTEXT_BYTES) {
    throw new RangeError(
      `message of ${plaintext.length} bytes exceeds the ${MAX_PLAINTEXT_BYTES}-byte limit`,
    );
  }
  return plaintext;
}

/** Parses a decrypted plaintext; throws ProtocolError unless it is a JSON object with a string type. */
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

/** Options for a Channel. */
export interface ChannelOptions {
  /** A FrameReader already reading `connection` (it may hold buffered bytes). */
  reader?: FrameReader;
  /**
   * The most bytes that may wait to be written; a send beyond it closes the channel and throws.
   * A peer that stops reading must not make our memory grow.
   */
  maxQueuedBytes?: number;
}

/** Typed, encrypted messages over one connection. */
export class Channel {
  readonly connection: Connection;
  readonly #sender: MessageCipher;
  readonly #receiver: MessageCipher;
  readonly #reader: FrameReader;
  readonly #maxQueuedBytes: number;
  // The send queue: frames not yet handed to the writer, and the one promise they all settle
  // with. A promise chain link per frame cost ~780 bytes of heap per queued 64-byte frame (measured
  // with 100,000 queued lines), so a capped queue of small frames could still take ~12x its cap.
  #queue: Uint8Array[] = [];
  #batch: PromiseWithResolvers<void> | undefined;
  #drained: Promise<void> = Promise.resolve();
  #draining = false;
  #queuedBytes = 0;
  #closed = false;

  constructor(
    connection: Connection,
    sender: MessageCipher,
    receiver: MessageCipher,
    options: ChannelOptions = {},
  ) {
    this.connection = connection;
    this.#sender = sender;
    this.#receiver = receiver;
    this.#reader = options.reader ?? new FrameReader(connection);
    this.#maxQueuedBytes = options.maxQueuedBytes ?? Infinity;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes handed to send() and not yet written, each frame counted with its overhead (queuedCost). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Seals `message` and writes it as one frame. The nonce is taken now, so call order is wire
   * order. Throws RangeError for a message too large for one frame (nothing is sent then).
   */
  send(message: Message): Promise<void> {
    return this.sendPlaintext(encodeMessage(message));
  }

  /**
   * Seals an already encoded message (see encodeMessage) and writes it as one frame. Frames queued
   * together settle together: if a write fails, every send still queued with it fails too.
   */
  sendPlaintext(plaintext: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new ProtocolError("channel is closed"));
    const frame = encodeFrame(this.#sender.encryptWithAd(NO_AD, plaintext));
    if (this.#queuedBytes + queuedCost(frame) > this.#maxQueuedBytes) {
      this.close();
      return Promise.reject(
        new ProtocolError(`peer is not reading: over ${this.#maxQueuedBytes} bytes queued`),
      );
    }
    this.#queuedBytes += queuedCost(frame);
    this.#queue.push(frame);
    this.#batch ??= Promise.withResolvers<void>();
    if (!this.#draining) {
      this.#draining = true;
      this.#drained = Promise.resolve().then(() => this.#drain());
    }
    return this.#batch.promise;
  }

  /**
   * Writes queued frames in order until the queue is empty. Small frames queued together go out
   * in one write (up to COALESCE_BYTES): a room's fan-out queues many ~100-byte frames per
   * client, and one syscall each would cost more than sealing them.
   */
  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const frames = this.#queue;
      const batch = this.#batch!;
      this.#queue = [];
      this.#batch = undefined;
      let written = 0;
      try {
        while (written < frames.length) {
          const end = coalesceEnd(frames, written);
          await writeAll(this.connection, joinFrames(frames, written, end));
          for (; written < end; written++) this.#queuedBytes -= queuedCost(frames[written]);
        }
        batch.resolve();
      } catch (error) {
        // A failed write fails this batch; later sends fail on their own (the socket is gone).
        for (; written < frames.length; written++) this.#queuedBytes -= queuedCost(frames[written]);
        batch.reject(error);
      }
    }
    this.#draining = false;
  }

  /**
   * The next message, or null when the peer closed (or reset) the connection. Waits at most
   * `timeoutMs`, then closes the channel and throws TimeoutError. Throws ProtocolError on a bad
   * frame, a frame that fails to decrypt (the receive nonce does not advance) or a malformed
   * message.
   */
  receive(timeoutMs = Infinity): Promise<Message | null> {
    return withDeadline(
      this.#receive(),
      timeoutMs,
      "timed out waiting for a message",
      () => this.close(),
    );
  }

  async #receive(): Promise<Message | null> {
    let frame: Uint8Array | null;
    try {
      frame = await this.#reader.readFrame();
    } catch (error) {
      if (error instanceof ProtocolError) throw error;
      if (this.#closed) return null; // we closed it ourselves while a read was pending
      // A reset is the peer vanishing (a killed process with unread input resets instead of
      // closing): report it as the end of the connection, as the kernel's timing decides.
      if (error instanceof Deno.errors.ConnectionReset) return null;
      throw new ProtocolError(`connection failed: ${(error as Error).message}`, { cause: error });
    }
    if (frame === null) return null;
    let plaintext: Uint8Array;
    try {
      plaintext = this.#receiver.decryptWithAd(NO_AD, frame);
    } catch (error) {
      if (error instanceof DecryptError) throw new ProtocolError(error.message);
      throw error;
    }
    return decodeMessage(plaintext);
  }

  /** Waits until every queued frame is written (or failed). */
  flush(): Promise<void> {
    return this.#drained;
  }

  /** Closes the connection; idempotent. Pending receives end with null. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.connection.close();
    } catch {
      // already closed by the peer or the runtime
    }
  }
}
