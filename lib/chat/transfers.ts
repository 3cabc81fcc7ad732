/**
 * The server's side of file transfers (docs/PROTOCOL.md section 7.11): which offers and
 * transfers exist, who may send what to whom, and the relay of chunks from a sender to its
 * receiver at the receiver's pace.
 *
 * The server never looks into a file: it checks the offer against its limits, routes each
 * message between the two members of a transfer, checks that chunks arrive in order and within
 * the size, and waits on the receiver before reading the sender's next message. That wait is the
 * backpressure: a receiver that drains slowly slows its sender, holds at most
 * RELAY_BACKLOG_BYTES of the file in the server, and never gets anyone dropped.
 * @module
 */
import {
  type Chunk,
  type FileAccept,
  type FileAck,
  type FileEnd,
  fileEnd,
  FileEndCode,
  FileMessageType,
  type FileOffer,
  type FileOfferRequest,
} from "../protocol/file_messages.ts";
import { encodeMessage, Feature } from "../protocol/messages.ts";
import { TimeoutError } from "../errors.ts";
import { withDeadline } from "../protocol/deadline.ts";
import type { Member, Room } from "./room.ts";
import {
  MAX_TRANSFERS_PER_PAIR,
  MIN_TRANSFER_PROGRESS_BYTES,
  RELAY_AHEAD_BYTES,
} from "./limits.ts";

/** The limits the relay keeps (from ServerLimits). */
export interface TransferLimits {
  maxFileBytes: number;
  maxTransfersPerMember: number;
  offerTtlMs: number;
  /** How long a chunk may wait for its receiver before the transfer ends as `stalled`. */
  stallMs: number;
}

/** One offer or running transfer. */
interface Transfer {
  id: string;
  from: number;
  to: number;
  size: number;
  /** Offered and not yet accepted, or running. */
  state: "offered" | "running";
  /** The offset the next chunk must have. */
  next: number;
  /** The receiver's last `file-ack` (from the accept's offset on). */
  acked: number;
  /** When the current progress window began (performance.now()); see sweep(). */
  windowStart: number;
  /** Bytes relayed or acknowledged since windowStart. */
  moved: number;
  /** Wakes a chunk waiting for the receiver to acknowledge more (see chunk()). */
  wake?: () => void;
  /** The offer's expiry (cleared by the accept). */
  expiry?: ReturnType<typeof setTimeout>;
}

/** What happened to a transfer, for the server's log (facts, worded by the command line). */
export interface TransferEvent {
  id: string;
  from: string;
  to: string;
  /** `offered`, `accepted`, or the code it ended with. */
  what: string;
  size: number;
}

/** The transfers of one room. */
export class TransferRelay {
  readonly #room: Room;
  readonly #limits: TransferLimits;
  readonly #report: (event: TransferEvent) => void;
  readonly #transfers = new Map<string, Transfer>();

  constructor(
    room: Room,
    limits: TransferLimits,
    report: (event: TransferEvent) => void = () => {},
  ) {
    this.#room = room;
    this.#limits = limits;
    this.#report = report;
  }

  /** How many transfers exist (offered or running). */
  get size(): number {
    return this.#transfers.size;
  }

  /** A member offers a file: it is checked, then shown to its receiver, or refused to the sender. */
  offer(fromId: number, request: FileOfferRequest): void {
    const sender = this.#room.member(fromId);
    if (!sender) return;
    const target = this.#room.byName(request.to);
    const refusal = this.#refusal(sender, target, request);
    if (refusal || !target) {
      const [code, message] = refusal ?? [FileEndCode.noSuchMember, "nobody is called that"];
      return this.#tell(sender, fileEnd(request.id, code, message));
    }
    const transfer: Transfer = {
      id: request.id,
      from: fromId,
      to: target.id,
      size: request.size,
      state: "offered",
      next: 0,
      acked: 0,
      windowStart: performance.now(),
      moved: 0,
    };
    transfer.expiry = setTimeout(
      () => this.#end(transfer, FileEndCode.expired, "the offer was not accepted in time"),
      this.#limits.offerTtlMs,
    );
    this.#transfers.set(transfer.id, transfer);
    const offer: FileOffer = {
      type: FileMessageType.offer,
      id: request.id,
      from: sender.name,
      fingerprint: sender.fingerprint,
      name: request.name,
      size: request.size,
      sha256: request.sha256,
      expires_ms: this.#limits.offerTtlMs,
    };
    this.#tell(target, offer);
    this.#event(transfer, "offered");
  }

  /** Why an offer is refused (its file-end code and message), in PROTOCOL.md's order. */
  #refusal(
    sender: Member,
    target: Member | undefined,
    request: FileOfferRequest,
  ): [code: string, message: string] | undefined {
    const { maxFileBytes, maxTransfersPerMember } = this.#limits;
    if (this.#transfers.has(request.id)) {
      return [FileEndCode.badOffer, "that transfer id is in use; offer again"];
    }
    if (target === sender) return [FileEndCode.noSuchMember, "you cannot send a file to yourself"];
    if (!target) {
      return [FileEndCode.noSuchMember, `nobody here is called "${request.to.slice(0, 49)}"`];
    }
    if (!target.features.has(Feature.files) || !target.deliverChunk) {
      return [FileEndCode.unsupported, `${target.name}'s client cannot take files`];
    }
    if (request.size > maxFileBytes) {
      return [
        FileEndCode.tooLarge,
        `the file is ${request.size} bytes; this server takes files of at most ${maxFileBytes} bytes`,
      ];
    }
    const toTarget = [...this.#transfers.values()]
      .filter((t) => t.from === sender.id && t.to === target.id).length;
    if (toTarget >= MAX_TRANSFERS_PER_PAIR) {
      return [
        FileEndCode.busy,
        `you have ${toTarget} transfers to ${target.name} going already; wait for one to end`,
      ];
    }
    const busy = [sender, target].find((m) => this.#count(m.id) >= maxTransfersPerMember);
    if (!busy) return undefined;
    const who = busy === sender ? "you have" : `${target.name} has`;
    return [
      FileEndCode.busy,
      `${who} ${maxTransfersPerMember} transfers going already; try again later`,
    ];
  }

  /** The receiver takes the file from `offset`: the sender is told, and may send chunks. */
  accept(byId: number, accept: FileAccept): void {
    const transfer = this.#transfers.get(accept.id);
    if (!transfer || transfer.to !== byId || transfer.state !== "offered") return; // late or not theirs
    if (accept.offset > transfer.size) {
      return this.#end(
        transfer,
        FileEndCode.badOffer,
        "the receiver accepted past the end of the file",
      );
    }
    clearTimeout(transfer.expiry);
    transfer.state = "running";
    transfer.next = transfer.acked = accept.offset;
    transfer.windowStart = performance.now();
    this.#tellMember(transfer.from, accept);
    this.#event(transfer, "accepted");
  }

  /** The receiver has written up to `offset`: its sender is told (its window moves on). */
  ack(byId: number, ack: FileAck): void {
    const transfer = this.#transfers.get(ack.id);
    if (!transfer || transfer.to !== byId || transfer.state !== "running") return;
    if (ack.offset <= transfer.acked) return; // no progress: nothing to tell (an ack flood stops here)
    const acked = Math.min(ack.offset, transfer.next);
    transfer.moved += acked - transfer.acked;
    transfer.acked = acked;
    transfer.wake?.();
    this.#tellMember(transfer.from, ack);
  }

  /**
   * Either side ends a transfer: the other side is told, with the same code. A receiver's
   * `done` before it was sent every byte is a lie the sender would believe: both are told so.
   */
  end(byId: number, end: FileEnd): void {
    const transfer = this.#transfers.get(end.id);
    if (!transfer || (transfer.from !== byId && transfer.to !== byId)) return;
    if (
      end.code === FileEndCode.done && (byId !== transfer.to || transfer.next !== transfer.size)
    ) {
      return this.#end(
        transfer,
        FileEndCode.badOffer,
        "done was said before the whole file was sent",
      );
    }
    this.#forget(transfer);
    this.#tellMember(byId === transfer.from ? transfer.to : transfer.from, end);
    this.#event(transfer, end.code);
  }

  /**
   * A chunk from member `fromId`: checked (its transfer is running, it is that transfer's
   * sender's, its offset is the next one, it stays within the size), then handed to the receiver.
   * Resolves when the receiver can take more (the caller reads the sender's next message only
   * then); a receiver that takes nothing for `stallMs` ends the transfer as `stalled`.
   */
  async chunk(fromId: number, chunk: Chunk): Promise<void> {
    const transfer = this.#transfers.get(chunk.id);
    // a chunk for a transfer that just ended (the receiver declined, left) is not an error
    if (!transfer || transfer.from !== fromId) return;
    if (transfer.state !== "running") {
      return this.#end(transfer, FileEndCode.badOffer, "a chunk came before the accept");
    }
    if (chunk.offset !== transfer.next || chunk.offset + chunk.data.length > transfer.size) {
      return this.#end(
        transfer,
        FileEndCode.badOffer,
        "a chunk came out of order or past the end of the file",
      );
    }
    transfer.next += chunk.data.length;
    transfer.moved += chunk.data.length;
    const receiver = this.#room.member(transfer.to);
    if (!receiver?.deliverChunk) return;
    try {
      // at most RELAY_AHEAD_BYTES past the receiver's last ack go to its socket: the rest of
      // the sender's window waits on the sender's side, not ahead of the receiver's chat lines
      if (transfer.next - transfer.acked > RELAY_AHEAD_BYTES) await this.#acked(transfer);
      if (this.#transfers.get(transfer.id) !== transfer) return; // ended meanwhile
      const backlog = receiver.deliverChunk(chunk.plaintext);
      if (backlog) await withDeadline(backlog, this.#limits.stallMs, "stalled", () => {});
    } catch (error) {
      if (error instanceof TimeoutError && this.#transfers.get(transfer.id) === transfer) {
        this.#end(
          transfer,
          FileEndCode.stalled,
          `${receiver.name} took nothing for ${this.#limits.stallMs / 1000} s`,
        );
      }
      // a failed delivery ends the receiver's session, and with it the transfer (left())
    }
  }

  /**
   * Waits until the receiver has acknowledged enough that `transfer.next` is within
   * RELAY_AHEAD_BYTES of its ack, or the transfer ended; TimeoutError after `stallMs`.
   */
  #acked(transfer: Transfer): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    transfer.wake = () => {
      const ended = this.#transfers.get(transfer.id) !== transfer;
      if (ended || transfer.next - transfer.acked <= RELAY_AHEAD_BYTES) resolve();
    };
    return withDeadline(promise, this.#limits.stallMs, "stalled", () => {})
      .finally(() => transfer.wake = undefined);
  }

  /** A member left: every transfer it was part of ends, and the other sides are told. */
  left(memberId: number): void {
    for (const transfer of [...this.#transfers.values()]) {
      if (transfer.from !== memberId && transfer.to !== memberId) continue;
      const other = transfer.from === memberId ? transfer.to : transfer.from;
      this.#forget(transfer);
      const name = this.#room.member(memberId)?.name ?? "the other side";
      this.#tellMember(other, fileEnd(transfer.id, FileEndCode.gone, `${name} left the room`));
      this.#event(transfer, FileEndCode.gone);
    }
  }

  /**
   * Ends the running transfers that moved less than MIN_TRANSFER_PROGRESS_BYTES (chunks relayed
   * plus bytes acknowledged) in a window of `stallMs`: a sender that goes quiet after the
   * accept, or trickles a byte now and then, and a receiver that stops acknowledging, must not
   * hold the other side's transfer slots. Called every second or so.
   */
  sweep(now = performance.now()): void {
    for (const transfer of [...this.#transfers.values()]) {
      if (transfer.state !== "running" || now - transfer.windowStart < this.#limits.stallMs) {
        continue;
      }
      if (transfer.wake) continue; // a chunk waits on the receiver: chunk() ends it as stalled
      if (transfer.moved >= MIN_TRANSFER_PROGRESS_BYTES) {
        transfer.windowStart = now;
        transfer.moved = 0;
        continue;
      }
      this.#end(
        transfer,
        FileEndCode.stalled,
        `less than ${MIN_TRANSFER_PROGRESS_BYTES / 1024} KiB moved in ${
          this.#limits.stallMs / 1000
        } s`,
      );
    }
  }

  /** Forgets every transfer (the server is closing). */
  close(): void {
    for (const transfer of this.#transfers.values()) clearTimeout(transfer.expiry);
    this.#transfers.clear();
  }

  /** Ends a transfer from the server: both sides are told why. */
  #end(transfer: Transfer, code: string, message: string): void {
    this.#forget(transfer);
    const end = fileEnd(transfer.id, code, message);
    this.#tellMember(transfer.from, end);
    this.#tellMember(transfer.to, end);
    this.#event(transfer, code);
  }

  #forget(transfer: Transfer): void {
    clearTimeout(transfer.expiry);
    this.#transfers.delete(transfer.id);
    transfer.wake?.();
  }

  #count(memberId: number): number {
    let count = 0;
    for (const transfer of this.#transfers.values()) {
      if (transfer.from === memberId || transfer.to === memberId) count++;
    }
    return count;
  }

  #tellMember(id: number, message: FileOffer | FileAccept | FileAck | FileEnd): void {
    const member = this.#room.member(id);
    if (member) this.#tell(member, message);
  }

  #tell(member: Member, message: FileOffer | FileAccept | FileAck | FileEnd): void {
    member.deliver(message, encodeMessage(message));
  }

  #event(transfer: Transfer, what: string): void {
    this.#report({
      id: transfer.id,
      from: this.#room.member(transfer.from)?.name ?? "",
      to: this.#room.member(transfer.to)?.name ?? "",
      what,
      size: transfer.size,
    });
  }
}
