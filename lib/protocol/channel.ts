/**
 * A channel: typed messages, each sealed as one Noise transport message in one frame.
 *
 * The channel owns ordering: sends are queued in call order, and one drain loop seals each
 * message (taking its nonce) and writes it, in that same order, so concurrent senders can never
 * put frames on the wire out of nonce order. It knows nothing of chat semantics; callers ignore
 * types they do not know.
 * @module
 */
import { FRAME_HEADER_BYTES, MAX_PLAINTEXT_BYTES, TAG_BYTES } from "./constants.ts";
import { DecryptError, ProtocolError } from "../errors.ts";
import type { Codec } from "./messages.ts";
import {
  type ByteReader,
  type ByteWriter,
  FrameReader,
  writeAll,
  writeFrameHeader,
} from "./frame.ts";
import { withDeadline } from "./deadline.ts";

/** One direction of a Noise transport (a CipherState after Split()). */
export interface MessageCipher {
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** encryptWithAd into `output` at `offset`; returns the bytes written. */
  encryptWithAdInto(
    ad: Uint8Array,
    plaintext: Uint8Array,
    output: Uint8Array,
    offset: number,
  ): number;
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
  /** Zeroes the key; every later use throws (CipherState.wipe). */
  wipe?(): void;
}

/** A connection a channel can run over (a `Deno.Conn` is one). */
export interface Connection extends ByteReader, ByteWriter {
  close(): void;
}

const NO_AD = new Uint8Array(0);

/** The bytes a plaintext takes on the wire: the frame header, the ciphertext and the tag. */
function frameBytes(plaintext: Uint8Array): number {
  return FRAME_HEADER_BYTES + plaintext.length + TAG_BYTES;
}

/**
 * What one queued message costs beyond its frame's bytes, counted against `maxQueuedBytes`: its
 * typed array and the caller's promise and handler (~370 bytes of heap per queued 64-byte frame,
 * measured with 100,000 queued lines). Without it, 1 MiB "queued" of small frames took ~12 MiB.
 */
const QUEUED_FRAME_OVERHEAD_BYTES = 384;

function queuedCost(plaintext: Uint8Array): number {
  return frameBytes(plaintext) + QUEUED_FRAME_OVERHEAD_BYTES;
}

/** Bulk frames (file chunks) are joined into writes of at most this many bytes. */
const BULK_WRITE_BYTES = 256 * 1024;

/** Queued frames are joined into writes of at most this many bytes (a larger frame goes alone). */
const COALESCE_BYTES = 64 * 1024;

/**
 * The run of queued messages from `start` that fits one write: its end (exclusive) and its
 * size in bytes on the wire.
 */
function coalesce(plaintexts: Uint8Array[], start: number): { end: number; size: number } {
  let end = start + 1;
  let size = frameBytes(plaintexts[start]);
  while (end < plaintexts.length && size + frameBytes(plaintexts[end]) <= COALESCE_BYTES) {
    size += frameBytes(plaintexts[end++]);
  }
  return { end, size };
}

/** Options for a Channel. */
export interface ChannelOptions<In, Out> {
  /** What the channel carries: how its messages become plaintexts and back (messages.ts). */
  codec: Codec<In, Out>;
  /** A FrameReader already reading `connection` (it may hold buffered bytes). */
  reader?: FrameReader;
  /**
   * The most bytes that may wait to be written; a send beyond it closes the channel and throws.
   * A peer that stops reading must not make our memory grow.
   */
  maxQueuedBytes?: number;
  /**
   * Whether this channel owns its ciphers: they are wiped when the last owning channel closes.
   * The control and data channels of one session share the ciphers (the transport moves to the
   * data port), so both may own them, provided the data channel is made before the control one
   * closes. Off by default: a channel whose ciphers live on after it must not wipe them.
   */
  ownsCiphers?: boolean;
}

// How many open owning channels hold each cipher (see ChannelOptions.ownsCiphers).
const owners = new WeakMap<MessageCipher, number>();

function own(cipher: MessageCipher): void {
  owners.set(cipher, (owners.get(cipher) ?? 0) + 1);
}

function disown(cipher: MessageCipher): void {
  const left = (owners.get(cipher) ?? 1) - 1;
  if (left > 0) return void owners.set(cipher, left);
  owners.delete(cipher);
  cipher.wipe?.();
}

/**
 * Typed, encrypted messages over one connection: `Out` is what this side sends, `In` what it
 * receives, turned into plaintexts and back by the codec (messages.ts). The channel itself
 * knows only bytes: it seals, frames, orders and bounds them.
 */
export class Channel<In, Out> {
  readonly connection: Connection;
  readonly #sender: MessageCipher;
  readonly #receiver: MessageCipher;
  readonly #reader: FrameReader;
  readonly #codec: Codec<In, Out>;
  readonly #maxQueuedBytes: number;
  // The send queue: plaintexts not yet sealed and written, and the one promise they all settle
  // with. A promise chain link per frame cost ~780 bytes of heap per queued 64-byte frame (measured
  // with 100,000 queued lines), so a capped queue of small frames could still take ~12x its cap.
  // Sealing waits for the drain loop so that each frame is sealed straight into the buffer that
  // is written: sealing at send time cost two more 64 KiB allocations and copies per frame.
  #queue: Uint8Array[] = [];
  #batch: PromiseWithResolvers<void> | undefined;
  #drained: Promise<void> = Promise.resolve();
  #draining = false;
  #queuedBytes = 0;
  // Bulk frames (file chunks): written only when #queue is empty, each with its own promise
  // (they are few and large, so a promise each costs nothing next to their bytes).
  #bulk: { plaintext: Uint8Array; written: PromiseWithResolvers<void> }[] = [];
  #bulkQueuedBytes = 0;
  /** Bytes of messages (not bulk) written so far: progress a slow reader does make. */
  #writtenBytes = 0;
  /** Who waits for the message queue to shrink (whenQueuedAtMost), and to what. */
  #drainWaiters: { bytes: number; resolve: () => void }[] = [];
  #closed = false;
  readonly #ownsCiphers: boolean;

  constructor(
    connection: Connection,
    sender: MessageCipher,
    receiver: MessageCipher,
    options: ChannelOptions<In, Out>,
  ) {
    this.#codec = options.codec;
    this.connection = connection;
    this.#sender = sender;
    this.#receiver = receiver;
    this.#reader = options.reader ?? new FrameReader(connection);
    this.#maxQueuedBytes = options.maxQueuedBytes ?? Infinity;
    this.#ownsCiphers = options.ownsCiphers ?? false;
    if (this.#ownsCiphers) [sender, receiver].forEach(own);
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
   * Seals `message` and writes it as one frame; call order is nonce order and wire order. Throws
   * RangeError for a message too large for one frame (nothing is sent then).
   */
  send(message: Out): Promise<void> {
    return this.sendPlaintext(this.#codec.encode(message));
  }

  /**
   * Seals an already encoded message (the codec's encoding) and writes it as one frame. The channel
   * keeps `plaintext` until it is sealed, so the caller must not change it afterwards (sharing one
   * plaintext between channels is fine). Frames queued together settle together: if a write
   * fails, every send still queued with it fails too. Throws RangeError for a plaintext over
   * MAX_PLAINTEXT_BYTES (nothing is sent then).
   */
  sendPlaintext(plaintext: Uint8Array): Promise<void> {
    if (plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new RangeError(
        `message of ${plaintext.length} bytes exceeds the ${MAX_PLAINTEXT_BYTES}-byte limit`,
      );
    }
    if (this.#closed) return Promise.reject(new ProtocolError("channel is closed"));
    if (this.#queuedBytes + queuedCost(plaintext) > this.#maxQueuedBytes) {
      this.close();
      return Promise.reject(
        new ProtocolError(`peer is not reading: over ${this.#maxQueuedBytes} bytes queued`),
      );
    }
    this.#queuedBytes += queuedCost(plaintext);
    this.#queue.push(plaintext);
    this.#batch ??= Promise.withResolvers<void>();
    this.#startDrain();
    return this.#batch.promise;
  }

  /**
   * Sends bulk data (a file's chunk) at the lowest priority: it is sealed and written only when
   * no message of `send`/`sendPlaintext` waits, so a chat line queued after a run of chunks
   * still goes out before them. Resolves once written. Bulk bytes are not counted against
   * `maxQueuedBytes` (a transfer must never get its receiver dropped): the caller bounds them,
   * waiting on the promise or on `bulkQueuedBytes`. Throws RangeError for a plaintext over
   * MAX_PLAINTEXT_BYTES.
   */
  sendBulk(plaintext: Uint8Array): Promise<void> {
    if (plaintext.length > MAX_PLAINTEXT_BYTES) {
      throw new RangeError(
        `message of ${plaintext.length} bytes exceeds the ${MAX_PLAINTEXT_BYTES}-byte limit`,
      );
    }
    if (this.#closed) return Promise.reject(new ProtocolError("channel is closed"));
    const written = Promise.withResolvers<void>();
    this.#bulk.push({ plaintext, written });
    this.#bulkQueuedBytes += frameBytes(plaintext);
    this.#startDrain();
    return written.promise;
  }

  /**
   * Resolves once at most `bytes` of messages (as queuedBytes counts them) wait to be written,
   * at once if that is so now, or when the channel closes. The server paces a speaker this way
   * to a member that reads more slowly than the room talks.
   */
  whenQueuedAtMost(bytes: number): Promise<void> {
    if (this.#queuedBytes <= bytes || this.#closed) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#drainWaiters.push({ bytes, resolve });
    return promise;
  }

  /** Wakes the waiters whose mark the queue is at or below now (all of them once closed). */
  #wakeDrainWaiters(): void {
    if (this.#drainWaiters.length === 0) return;
    const waiting = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const waiter of waiting) {
      if (this.#closed || this.#queuedBytes <= waiter.bytes) waiter.resolve();
      else this.#drainWaiters.push(waiter);
    }
  }

  /** Bytes of messages (send/sendPlaintext, not bulk) written since the channel opened. */
  get writtenBytes(): number {
    return this.#writtenBytes;
  }

  /** Bytes handed to sendBulk() and not yet written. */
  get bulkQueuedBytes(): number {
    return this.#bulkQueuedBytes;
  }

  #startDrain(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#drained = Promise.resolve().then(() => this.#drain());
  }

  /**
   * Seals and writes queued messages in order until both queues are empty: every message of
   * `send` first, then one bulk frame, then the messages queued meanwhile, and so on.
   */
  async #drain(): Promise<void> {
    const buffer = { bytes: new Uint8Array(0) };
    while (this.#queue.length > 0 || this.#bulk.length > 0) {
      if (this.#queue.length > 0) await this.#drainMessages(buffer);
      else await this.#drainBulkFrames(buffer);
    }
    this.#draining = false;
  }

  /**
   * Writes the messages queued now. Small frames queued together go out in one write (up to
   * COALESCE_BYTES): a room's fan-out queues many ~100-byte frames per client, and one syscall
   * each would cost more than sealing them. Each write's frames are sealed straight into one
   * buffer, reused for the whole drain: the write has completed before the buffer is filled
   * again.
   */
  async #drainMessages(buffer: { bytes: Uint8Array }): Promise<void> {
    const plaintexts = this.#queue;
    const batch = this.#batch!;
    this.#queue = [];
    this.#batch = undefined;
    let written = 0;
    try {
      while (written < plaintexts.length) {
        if (this.#closed) throw new ProtocolError("channel is closed");
        const { end, size } = coalesce(plaintexts, written);
        if (buffer.bytes.length < size) buffer.bytes = new Uint8Array(size);
        this.#sealInto(plaintexts, written, end, buffer.bytes);
        await writeAll(this.connection, buffer.bytes.subarray(0, size));
        this.#writtenBytes += size;
        for (; written < end; written++) this.#queuedBytes -= queuedCost(plaintexts[written]);
        this.#wakeDrainWaiters();
      }
      batch.resolve();
    } catch (error) {
      // A failed write fails this batch; later sends fail on their own (the socket is gone).
      for (; written < plaintexts.length; written++) {
        this.#queuedBytes -= queuedCost(plaintexts[written]);
      }
      this.#wakeDrainWaiters();
      batch.reject(error);
    }
  }

  /**
   * Writes the oldest bulk frames, as many as fit BULK_WRITE_BYTES, in one write: a write per
   * 64 KiB chunk cost more CPU than sealing it. A message queued meanwhile waits for at most
   * this one write.
   */
  async #drainBulkFrames(buffer: { bytes: Uint8Array }): Promise<void> {
    const items = [this.#bulk.shift()!];
    let size = frameBytes(items[0].plaintext);
    while (
      this.#bulk.length > 0 && size + frameBytes(this.#bulk[0].plaintext) <= BULK_WRITE_BYTES
    ) {
      const next = this.#bulk.shift()!;
      size += frameBytes(next.plaintext);
      items.push(next);
    }
    try {
      if (this.#closed) throw new ProtocolError("channel is closed");
      if (buffer.bytes.length < size) buffer.bytes = new Uint8Array(size);
      this.#sealInto(items.map((item) => item.plaintext), 0, items.length, buffer.bytes);
      await writeAll(this.connection, buffer.bytes.subarray(0, size));
      for (const item of items) item.written.resolve();
    } catch (error) {
      for (const item of items) item.written.reject(error);
    } finally {
      this.#bulkQueuedBytes -= size;
    }
  }

  /** Seals plaintexts[start..end) as consecutive frames at the start of `buffer`. */
  #sealInto(plaintexts: Uint8Array[], start: number, end: number, buffer: Uint8Array): void {
    let offset = 0;
    for (let i = start; i < end; i++) {
      const bodyStart = offset + FRAME_HEADER_BYTES;
      writeFrameHeader(buffer, offset, plaintexts[i].length + TAG_BYTES);
      try {
        offset = bodyStart +
          this.#sender.encryptWithAdInto(NO_AD, plaintexts[i], buffer, bodyStart);
      } catch (error) {
        // A send CipherState that cannot seal (its nonces used up) ends the channel: a frame
        // skipped here would leave the peer's nonce behind ours for good.
        this.close();
        throw error;
      }
    }
  }

  /**
   * The next message, or null when the peer closed (or reset) the connection; messages the
   * codec skips (unknown types) are read past, each restarting the wait. Waits at most
   * `timeoutMs` for a frame, then closes the channel and throws TimeoutError. Throws
   * ProtocolError on a bad frame, a frame that fails to decrypt (the receive nonce does not
   * advance) or a malformed message.
   */
  async receive(timeoutMs = Infinity): Promise<In | null> {
    while (true) {
      const plaintext = await this.receivePlaintext(timeoutMs);
      if (plaintext === null) return null;
      const message = this.#codec.decode(plaintext);
      if (message !== undefined) return message;
    }
  }

  /** The next decrypted plaintext, or null when the peer closed; bounded as `receive`. */
  receivePlaintext(timeoutMs = Infinity): Promise<Uint8Array | null> {
    return withDeadline(
      this.#receive(),
      timeoutMs,
      "timed out waiting for a message",
      () => this.close(),
    );
  }

  async #receive(): Promise<Uint8Array | null> {
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
    // closed while the frame was read: its ciphers may be wiped, and nobody waits for it
    if (frame === null || this.#closed) return null;
    try {
      return this.#receiver.decryptWithAd(NO_AD, frame);
    } catch (error) {
      if (error instanceof DecryptError) throw new ProtocolError(error.message);
      throw error;
    }
  }

  /** Waits until every queued frame is written (or failed). */
  flush(): Promise<void> {
    return this.#drained;
  }

  /**
   * Closes the connection, and wipes the ciphers if this was their last owning channel;
   * idempotent. Pending receives end with null.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wakeDrainWaiters();
    if (this.#ownsCiphers) [this.#sender, this.#receiver].forEach(disown);
    try {
      this.connection.close();
    } catch {
      // already closed by the peer or the runtime
    }
  }
}
