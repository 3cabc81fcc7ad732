/**
 * A client's side of file transfers (docs/PROTOCOL.md section 7.11): offering a file and
 * sending it within the receiver's window, and taking an offered file into the downloads
 * folder, acknowledging what is written and checking the SHA-256 at the end.
 *
 * Transport-agnostic: it talks through a FileLink (a client's channel), and reports through
 * FileEvents; it never prints. Nothing is written to disk before the user accepts.
 * @module
 */
import {
  type Chunk,
  CHUNK_HEADER_BYTES,
  chunkPlaintextIn,
  FILE_ACK_BYTES,
  FILE_WINDOW_BYTES,
  type FileClientMessage,
  fileEnd,
  FileEndCode,
  FileMessageType,
  type FileOffer,
  type FileServerMessage,
  MAX_CHUNK_DATA_BYTES,
  newTransferId,
} from "../protocol/file_messages.ts";
import { bytesOfHex, hexOf } from "../protocol/bytes.ts";
import { MAX_PLAINTEXT_BYTES } from "../protocol/constants.ts";
import { type FileDigest, hashFile, readFully } from "./file_io.ts";
import type { DownloadFolder, PartialDownload } from "./downloads.ts";

/** How transfers reach the server. */
export interface FileLink {
  /** Sends a file message (JSON), ahead of any chunk; a failure shows as the chat ending. */
  send(message: FileClientMessage): void;
  /** Sends a chunk below every other message; resolves once written. */
  sendChunk(plaintext: Uint8Array): Promise<void>;
}

/** A transfer as the UI sees it. */
export interface TransferInfo {
  id: string;
  direction: "in" | "out";
  /** The other side's display name. */
  peer: string;
  /** The file's name: as offered (untrusted: sanitize before showing) for "in". */
  name: string;
  size: number;
  sha256: string;
  /** Bytes the receiver has (acknowledged, for "out"; written, for "in"). */
  done: number;
  /** Where it started: what the receiver had already (a resumed transfer). */
  startedAt: number;
}

/** How a transfer ended: `done`, or a file-end code and its message (`by`: who ended it). */
export interface TransferEnd {
  code: string;
  message: string;
  by: "us" | "peer";
  /** Where the file was saved (a received file, `done`). */
  path?: string;
}

/** What transfers report. */
export interface FileEvents {
  /**
   * Someone offers us a file: accept(id) or decline(id) it (or let it expire). `transfer` is
   * what later events report about it.
   */
  offered(offer: FileOffer, transfer: TransferInfo): void;
  /** The receiver accepted (from `startedAt`), or we did. */
  started?(transfer: TransferInfo): void;
  /** More bytes arrived (in) or were acknowledged (out); called often: throttle it. */
  progress?(transfer: TransferInfo): void;
  /** The transfer is over. */
  ended(transfer: TransferInfo, end: TransferEnd): void;
}

/** A file to offer, read and hashed. */
interface Outgoing {
  info: TransferInfo;
  path: string;
  file?: Deno.FsFile;
  /** Bytes handed to the link. */
  sent: number;
  /** Chunks handed to the link. */
  chunks: number;
  /** Chunk buffers written and free for the next chunks (a few, reused). */
  buffers: Uint8Array[];
  pumping: boolean;
  settle: (end: TransferEnd) => void;
}

/** An offer to us, and once accepted, its download. */
interface Incoming {
  info: TransferInfo;
  offer: FileOffer;
  part?: PartialDownload;
  /** Writes are chained in order: the receive loop hands chunks on without waiting for disk. */
  writing: Promise<void>;
  /** Bytes queued for writing (ahead of `info.done`). */
  queued: number;
  acked: number;
  failed: boolean;
}

/** The transfers of one client. */
export class FileTransfers {
  readonly #link: FileLink;
  readonly #events: FileEvents;
  readonly #outgoing = new Map<string, Outgoing>();
  readonly #incoming = new Map<string, Incoming>();
  #closed = false;

  constructor(link: FileLink, events: FileEvents) {
    this.#link = link;
    this.#events = events;
  }

  /** The offers to us not yet accepted or declined. */
  get pendingOffers(): FileOffer[] {
    return [...this.#incoming.values()].filter((t) => !t.part).map((t) => t.offer);
  }

  /** Every transfer going on (offered or running), both ways. */
  get active(): TransferInfo[] {
    return [...this.#outgoing.values(), ...this.#incoming.values()].map((t) => t.info);
  }

  /**
   * Offers the file at `path` to `to` under `name` (its base name by default). Resolves when
   * the transfer has ended, with how; rejects (sending nothing) if the file cannot be read.
   * `onOffered` hears the transfer once the offer is sent.
   */
  async offer(
    path: string,
    to: string,
    options: {
      name?: string;
      onOffered?: (info: TransferInfo) => void;
      /** The file's digest, if already computed (hashFile): `chat send` hashes while it joins. */
      digest?: Promise<FileDigest>;
    } = {},
  ): Promise<TransferEnd> {
    const { size, sha256 } = await (options.digest ?? hashFile(path));
    if (this.#closed) return { code: FileEndCode.cancelled, message: "the chat ended", by: "us" };
    const name = options.name ?? path.split(/[\\/]/).filter(Boolean).pop() ?? "file";
    const id = newTransferId();
    const info: TransferInfo = {
      id,
      direction: "out",
      peer: to,
      name,
      size,
      sha256: hexOf(sha256),
      done: 0,
      startedAt: 0,
    };
    const ended = Promise.withResolvers<TransferEnd>();
    this.#outgoing.set(id, {
      info,
      path,
      sent: 0,
      chunks: 0,
      buffers: [],
      pumping: false,
      settle: ended.resolve,
    });
    // told first: an in-process link (the operator's) may answer before send() returns
    options.onOffered?.(info);
    this.#link.send({
      type: FileMessageType.offer,
      id,
      to,
      name,
      size,
      sha256: info.sha256,
    });
    return await ended.promise;
  }

  /**
   * Accepts the offer `id` into `folder`: resumes from what the folder already has of it.
   * Returns false if there is no such offer. Throws if the part file cannot be opened (the
   * offer is declined then).
   */
  async accept(id: string, folder: DownloadFolder): Promise<boolean> {
    const incoming = this.#incoming.get(id);
    if (!incoming || incoming.part) return false;
    const { offer } = incoming;
    let part: PartialDownload;
    try {
      part = await folder.open({
        name: offer.name,
        size: offer.size,
        sha256: bytesOfHex(offer.sha256),
        sender: offer.fingerprint,
      });
    } catch (error) {
      this.#endIncoming(
        incoming,
        FileEndCode.cancelled,
        `cannot save the file: ${(error as Error).message}`,
      );
      throw error;
    }
    if (this.#incoming.get(id) !== incoming) {
      await release(part); // it ended while the part was opened
      return false;
    }
    incoming.part = part;
    incoming.info.done = incoming.info.startedAt = incoming.acked = part.received;
    this.#link.send({ type: FileMessageType.accept, id, offset: part.received });
    this.#events.started?.(incoming.info);
    if (part.received === offer.size) this.#queueFinish(incoming);
    return true;
  }

  /** Declines the offer `id`; false if there is none. */
  decline(id: string): boolean {
    const incoming = this.#incoming.get(id);
    if (!incoming || incoming.part) return false;
    this.#endIncoming(incoming, FileEndCode.declined, "the receiver declined the file");
    return true;
  }

  /**
   * Cancels every transfer (Ctrl-C, leaving): the other sides are told; what was received is
   * kept for a later resume.
   */
  cancelAll(message = "cancelled"): void {
    for (const outgoing of [...this.#outgoing.values()]) {
      this.#endOutgoing(outgoing, { code: FileEndCode.cancelled, message, by: "us" }, true);
    }
    for (const incoming of [...this.#incoming.values()]) {
      this.#endIncoming(incoming, FileEndCode.cancelled, message);
    }
  }

  /** The connection is gone: every transfer ends here, parts are kept for a resume. */
  connectionLost(why: string): void {
    this.#closed = true;
    for (const outgoing of [...this.#outgoing.values()]) {
      this.#endOutgoing(outgoing, { code: FileEndCode.cancelled, message: why, by: "us" }, false);
    }
    for (const incoming of [...this.#incoming.values()]) {
      this.#forgetIncoming(incoming);
      this.#events.ended(incoming.info, { code: FileEndCode.cancelled, message: why, by: "us" });
    }
  }

  /** A file message from the server. */
  handle(message: FileServerMessage): void {
    switch (message.type) {
      case FileMessageType.offer:
        return this.#offered(message);
      case FileMessageType.accept: {
        const outgoing = this.#outgoing.get(message.id);
        if (!outgoing || outgoing.file) return;
        outgoing.sent = outgoing.info.done = outgoing.info.startedAt = Math.min(
          message.offset,
          outgoing.info.size,
        );
        this.#events.started?.(outgoing.info);
        void this.#start(outgoing);
        return;
      }
      case FileMessageType.ack: {
        const outgoing = this.#outgoing.get(message.id);
        if (!outgoing || message.offset <= outgoing.info.done) return;
        outgoing.info.done = Math.min(message.offset, outgoing.sent);
        this.#events.progress?.(outgoing.info);
        void this.#pump(outgoing);
        return;
      }
      case FileMessageType.end: {
        const outgoing = this.#outgoing.get(message.id);
        if (outgoing) {
          if (message.code === FileEndCode.done) outgoing.info.done = outgoing.info.size;
          return this.#endOutgoing(outgoing, { ...message, by: "peer" }, false);
        }
        const incoming = this.#incoming.get(message.id);
        if (incoming) {
          this.#forgetIncoming(incoming);
          this.#events.ended(incoming.info, {
            code: message.code,
            message: message.message,
            by: "peer",
          });
        }
      }
    }
  }

  /** A chunk from the server: queued for writing, in order. */
  handleChunk(chunk: Chunk): void {
    const incoming = this.#incoming.get(chunk.id);
    if (!incoming?.part || incoming.failed) return;
    const part = incoming.part;
    const expected = incoming.info.done + incoming.queued;
    if (chunk.offset !== expected || expected + chunk.data.length > incoming.offer.size) {
      return this.#endIncoming(incoming, FileEndCode.badOffer, "a chunk came out of order");
    }
    incoming.queued += chunk.data.length;
    incoming.writing = incoming.writing.then(async () => {
      if (incoming.failed) return;
      await part.write(chunk.offset, chunk.data);
      incoming.queued -= chunk.data.length;
      incoming.info.done += chunk.data.length;
      this.#events.progress?.(incoming.info);
      const done = incoming.info.done;
      if (done - incoming.acked >= FILE_ACK_BYTES || done === incoming.offer.size) {
        incoming.acked = done;
        this.#link.send({ type: FileMessageType.ack, id: incoming.info.id, offset: done });
      }
      if (done === incoming.offer.size) await this.#finish(incoming);
    }).catch((error) => this.#failIncoming(incoming, error));
  }

  #offered(offer: FileOffer): void {
    if (this.#incoming.has(offer.id) || this.#outgoing.has(offer.id)) return;
    const info: TransferInfo = {
      id: offer.id,
      direction: "in",
      peer: offer.from,
      name: offer.name,
      size: offer.size,
      sha256: offer.sha256,
      done: 0,
      startedAt: 0,
    };
    this.#incoming.set(offer.id, {
      info,
      offer,
      writing: Promise.resolve(),
      queued: 0,
      acked: 0,
      failed: false,
    });
    this.#events.offered(offer, info);
  }

  #queueFinish(incoming: Incoming): void {
    incoming.writing = incoming.writing.then(() => this.#finish(incoming))
      .catch((error) => this.#failIncoming(incoming, error));
  }

  /** All bytes are written: check the hash, move the file into place, tell the sender. */
  async #finish(incoming: Incoming): Promise<void> {
    const part = incoming.part!;
    let path: string;
    try {
      path = await part.finish();
    } catch (error) {
      const code = (error as { code?: string }).code === "FILE_HASH"
        ? FileEndCode.badHash
        : FileEndCode.cancelled;
      incoming.failed = true;
      this.#forgetIncoming(incoming);
      const message = code === FileEndCode.badHash
        ? "the file received does not have the offered SHA-256; it was deleted"
        : `cannot save the file: ${(error as Error).message}`;
      this.#link.send(fileEnd(incoming.info.id, code, message));
      this.#events.ended(incoming.info, { code, message, by: "us" });
      return;
    }
    this.#incoming.delete(incoming.info.id);
    this.#link.send(fileEnd(incoming.info.id, FileEndCode.done, "received and verified"));
    this.#events.ended(incoming.info, {
      code: FileEndCode.done,
      message: "received and verified",
      by: "us",
      path,
    });
  }

  #failIncoming(incoming: Incoming, error: unknown): void {
    if (incoming.failed || !this.#incoming.has(incoming.info.id)) return;
    this.#endIncoming(
      incoming,
      FileEndCode.cancelled,
      `cannot save the file: ${(error as Error).message}`,
    );
  }

  /** Ends an incoming transfer from our side: the sender is told, the part kept (or not). */
  #endIncoming(incoming: Incoming, code: string, message: string): void {
    if (!this.#incoming.has(incoming.info.id)) return;
    incoming.failed = true;
    this.#forgetIncoming(incoming);
    this.#link.send(fileEnd(incoming.info.id, code, message));
    this.#events.ended(incoming.info, { code, message, by: "us" });
  }

  /** Forgets an incoming transfer; its part file stays for a resume once its writes are done. */
  #forgetIncoming(incoming: Incoming): void {
    incoming.failed = true;
    this.#incoming.delete(incoming.info.id);
    const part = incoming.part;
    if (!part) return;
    incoming.writing = incoming.writing.finally(() => release(part)).catch(() => {});
  }

  async #start(outgoing: Outgoing): Promise<void> {
    try {
      outgoing.file = await Deno.open(outgoing.path, { read: true });
      await outgoing.file.seek(outgoing.sent, Deno.SeekMode.Start);
    } catch (error) {
      return this.#endOutgoing(outgoing, {
        code: FileEndCode.cancelled,
        message: `cannot read ${outgoing.path}: ${(error as Error).message}`,
        by: "us",
      }, true);
    }
    await this.#pump(outgoing);
  }

  /** Sends chunks while the window allows: at most FILE_WINDOW_BYTES past the last ack. */
  async #pump(outgoing: Outgoing): Promise<void> {
    if (outgoing.pumping || !outgoing.file) return;
    outgoing.pumping = true;
    try {
      const { size } = outgoing.info;
      while (
        this.#outgoing.get(outgoing.info.id) === outgoing && outgoing.sent < size &&
        outgoing.sent - outgoing.info.done < FILE_WINDOW_BYTES
      ) {
        const length = Math.min(MAX_CHUNK_DATA_BYTES, size - outgoing.sent);
        const buffer = outgoing.buffers.pop() ?? new Uint8Array(MAX_PLAINTEXT_BYTES);
        const plaintext = chunkPlaintextIn(buffer, outgoing.info.id, outgoing.sent, length);
        readFully(outgoing.file, plaintext.subarray(CHUNK_HEADER_BYTES));
        outgoing.sent += length;
        // the channel keeps the plaintext until it is written; then the buffer is free again
        const written = this.#link.sendChunk(plaintext)
          .finally(() => outgoing.buffers.push(buffer));
        // wait for every other chunk's write: at most two sit in the channel's queue
        if (++outgoing.chunks % 2 === 0) await written;
        else written.catch(() => {});
      }
    } catch (error) {
      this.#endOutgoing(outgoing, {
        code: FileEndCode.cancelled,
        message: `cannot send ${outgoing.path}: ${(error as Error).message}`,
        by: "us",
      }, true);
    } finally {
      outgoing.pumping = false;
    }
  }

  #endOutgoing(outgoing: Outgoing, end: TransferEnd, tellPeer: boolean): void {
    if (this.#outgoing.get(outgoing.info.id) !== outgoing) return;
    this.#outgoing.delete(outgoing.info.id);
    try {
      outgoing.file?.close();
    } catch { /* closed already */ }
    if (tellPeer) this.#link.send(fileEnd(outgoing.info.id, end.code, end.message));
    this.#events.ended(outgoing.info, end);
    outgoing.settle(end);
  }
}

/**
 * Closes a part that will not be written any more: kept for a resume if it holds anything,
 * removed if empty (cancelled offers must leave no litter in the downloads folder).
 */
async function release(part: PartialDownload): Promise<void> {
  if (part.received === 0) await part.discard();
  else part.close();
}
