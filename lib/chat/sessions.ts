/**
 * The joined sessions: naming a newcomer and seating it in the room, reading each client's
 * messages under the room's policy (line rules, rate, relay), and ending sessions (a bye, a
 * removal, a revocation, silence), each end reported once.
 * @module
 */
import type { Channel } from "../protocol/channel.ts";
import {
  bare,
  type ClientMessage,
  ErrorCode,
  errorMessage,
  Feature,
  type FromClient,
  type LeaveReason,
  MessageType,
  NoticeCode,
  noticeMessage,
  type ServerMessage,
} from "../protocol/messages.ts";
import { TimeoutError } from "../errors.ts";
import type { Allowlist } from "../keys/allowlist.ts";
import type { NameBook } from "../keys/name_book.ts";
import type { Admitted } from "./admission.ts";
import { farewell, reason } from "./endings.ts";
import { RELAY_BACKLOG_BYTES, type ServerLimits, SLOW_READER_WAIT_MS } from "./limits.ts";
import { withDeadline } from "../protocol/deadline.ts";
import { lineProblem } from "./lines.ts";
import type { LogLimiter } from "./log_limit.ts";
import { FileMessageType } from "../protocol/file_messages.ts";
import type { TransferRelay } from "./transfers.ts";
import { TokenBucket } from "./rate.ts";
import { chooseName, type Member, type Room } from "./room.ts";

/** A client in the room. */
interface Session {
  id: number;
  key: Uint8Array;
  keyText: string;
  name: string;
  channel: Channel<FromClient, ServerMessage>;
  /** Set by whoever ends the session first; the receive loop reports it. */
  leaveReason?: LeaveReason;
  /** What went wrong, when something did (for the one report of the session's end). */
  leaveDetail?: string;
  /** Until when (performance.now()) the operator muted it. */
  mutedUntil?: number;
}

/** What this server can do beyond the core, told in every welcome. */
export const SERVER_FEATURES: readonly string[] = [
  Feature.private,
  Feature.action,
  Feature.history,
  Feature.moderation,
  Feature.files,
];

/** What the sessions need from the server. */
export interface SessionsConfig {
  serverName: string;
  limits: ServerLimits;
  log: LogLimiter;
  room: Room;
  names: NameBook;
  transfers: TransferRelay;
  closing(): boolean;
  /** Runs `task` as one of the server's (errors are logged, close() waits for it). */
  track(task: Promise<void>): void;
}

/** The sessions of the clients in the room. */
export class Sessions {
  readonly #config: SessionsConfig;
  readonly #sessions = new Map<number, Session>();
  #nextId: number;

  /** `firstId`: ids below it belong to others (the operator). */
  constructor(config: SessionsConfig, firstId: number) {
    this.#config = config;
    this.#nextId = firstId;
  }

  /** How many clients are in the room. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Names a newly admitted client, welcomes it, seats it, and starts reading it. */
  async seat(admitted: Admitted): Promise<void> {
    const { channel, key, keyText, remote } = admitted;
    // the same key joining again replaces its older session
    for (const old of this.#sessions.values()) {
      if (old.keyText === keyText) {
        this.end(
          old,
          "replaced",
          errorMessage(ErrorCode.replaced, "your key joined again from elsewhere"),
        );
      }
    }
    const name = await this.#name(admitted);
    if (name === undefined) return;
    if (this.#config.closing() || this.#config.room.byName(name)) {
      // the server began closing, or another session took the name, while we wrote it down
      return farewell(channel, bare(MessageType.bye));
    }
    const session: Session = { id: this.#nextId++, key, keyText, name, channel };
    this.#sessions.set(session.id, session);
    const { limits, room, serverName } = this.#config;
    channel.send({
      type: MessageType.welcome,
      name,
      server: serverName,
      members: room.names(),
      max_line_bytes: limits.maxLineBytes,
      keepalive_ms: limits.keepaliveMs,
      features: [...SERVER_FEATURES],
    }).catch(() => {});
    // the history first, marked as replays, then the live room (section 7.10)
    for (const line of room.history()) channel.sendPlaintext(line).catch(() => {});
    room.join(this.#member(session, admitted.fingerprint, admitted.features));
    this.#config.log.report({ kind: "joined", name, fingerprint: admitted.fingerprint, remote });
    this.#config.track(this.#serve(session));
  }

  /** The display name for an admitted client, or undefined when it is refused (look-alike). */
  async #name(admitted: Admitted): Promise<string | undefined> {
    const { allowlist, key, keyText, fingerprint, declared } = admitted;
    const choice = chooseName(
      keyText,
      allowlist.labelOf(key),
      declared,
      fingerprint.replaceAll(":", ""),
      {
        serverName: this.#config.serverName,
        labels: allowlist.labelsExcept(key),
        present: this.#config.room.names(),
        boundTo: (name) => this.#config.names.keyOf(name),
        bound: () => this.#config.names.entries(),
      },
    );
    if ("confusableWith" in choice) {
      const lookalike = choice.confusableWith;
      this.#config.log.report({
        kind: "refused",
        reason: "name-confusable",
        declared,
        key: keyText,
        fingerprint,
        remote: admitted.remote,
        detail: lookalike,
      });
      const message = `the name "${declared}" could be mistaken for "${lookalike}", who is ` +
        "known here; choose another name";
      farewell(admitted.channel, errorMessage(ErrorCode.nameConfusable, message));
      return undefined;
    }
    if (choice.bind) {
      try {
        await this.#config.names.bind(choice.name, keyText);
      } catch (error) {
        // a name that cannot be recorded is still unique now; say so and carry on
        this.#config.log.report({
          kind: "name-not-recorded",
          name: choice.name,
          reason: reason(error),
        });
      }
    }
    return choice.name;
  }

  /** The room's view of a session: deliveries go to its channel, a failed one drops it. */
  #member(session: Session, fingerprint: string, features: string[]): Member {
    return {
      id: session.id,
      name: session.name,
      fingerprint,
      features: new Set(features),
      deliver: (_message, plaintext) => {
        session.channel.sendPlaintext(plaintext).catch((error) =>
          this.end(session, "dropped", undefined, reason(error))
        );
      },
      ...(features.includes(Feature.files)
        ? { deliverChunk: (plaintext: Uint8Array) => this.#deliverChunk(session, plaintext) }
        : {}),
    };
  }

  /**
   * Queues a chunk to a member below its lines. While little is queued there is nothing to wait
   * for (undefined); past RELAY_BACKLOG_BYTES, a promise of this chunk's write: the relay reads
   * the sender's next message only then.
   */
  #deliverChunk(session: Session, plaintext: Uint8Array): Promise<void> | undefined {
    const written = session.channel.sendBulk(plaintext)
      .catch((error) => this.end(session, "dropped", undefined, reason(error)));
    return session.channel.bulkQueuedBytes > RELAY_BACKLOG_BYTES ? written : undefined;
  }

  /** Reads one client's messages until it leaves, is removed, or falls silent. */
  async #serve(session: Session): Promise<void> {
    const { channel } = session;
    const pace = this.#pacer(session);
    try {
      while (true) {
        const message = await channel.receive(this.#config.limits.peerSilenceMs);
        if (message === null) break;
        if (message.type === MessageType.bye) {
          session.leaveReason ??= "left";
          break;
        }
        if (message.type === MessageType.who) {
          channel.send({ type: MessageType.who, members: this.#config.room.names() })
            .catch(() => {});
        } else if (message.type === MessageType.msg || message.type === MessageType.private) {
          await this.#relay(session, message, pace);
        } else {
          await this.#file(session, message, pace);
        }
        // keepalive: nothing to do (hearing it resets the silence timer)
      }
      session.leaveReason ??= "lost";
    } catch (error) {
      if (!session.leaveReason) {
        session.leaveReason = error instanceof TimeoutError ? "lost" : "dropped";
        session.leaveDetail = reason(error);
      }
    } finally {
      this.#detach(session);
      session.channel.close();
    }
  }

  /**
   * A file message or chunk (section 7.11): the transfer relay routes it. Chunks, acks and the
   * like take no line tokens; an offer takes one (each is shown to its receiver like a line, and
   * an offer-and-cancel flood must not outrun the line rate). Every file message other than a
   * chunk is then paced to slow readers as a line is: a flood of them backs up on its sender,
   * never on the queue of the member it is for.
   */
  async #file(session: Session, message: FromClient, pace: () => Promise<void>): Promise<void> {
    const { transfers } = this.#config;
    switch (message.type) {
      case "chunk":
        return await transfers.chunk(session.id, message);
      case FileMessageType.offer:
        await pace();
        if (!this.#sessions.has(session.id)) return;
        transfers.offer(session.id, message);
        break;
      case FileMessageType.accept:
        transfers.accept(session.id, message);
        break;
      case FileMessageType.ack:
        transfers.ack(session.id, message);
        break;
      case FileMessageType.end:
        transfers.end(session.id, message);
        break;
    }
    await this.#paceToSlowReaders(session);
  }

  /**
   * The rate of one member: a wait for each line past its burst, and one `slow-down` notice
   * each time it starts being slowed. Not reading is the throttle: TCP pushes back on the
   * flooder, and no one else waits.
   */
  #pacer(session: Session): () => Promise<void> {
    const { rateLinesPerSecond, rateBurstLines } = this.#config.limits;
    const bucket = new TokenBucket(rateLinesPerSecond, rateBurstLines);
    let throttled = false;
    return async () => {
      const wait = bucket.take();
      if (wait <= 0) return void (throttled = false);
      if (!throttled) {
        throttled = true;
        const message = `you are sending faster than ${rateLinesPerSecond} lines per second; ` +
          "your lines are delayed, not lost";
        session.channel.send(noticeMessage(NoticeCode.slowDown, message)).catch(() => {});
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    };
  }

  /**
   * One line of a member, to the room or to one member: checked (section 7.7), refused while
   * muted, paced, then delivered.
   */
  async #relay(
    session: Session,
    line: Extract<ClientMessage, { type: "msg" | "private" }>,
    pace: () => Promise<void>,
  ): Promise<void> {
    const { text } = line;
    const problem = text === null
      ? "the message has no text"
      : lineProblem(text, this.#config.limits.maxLineBytes);
    if (problem || text === null) {
      session.channel.send(noticeMessage(NoticeCode.badLine, problem!)).catch(() => {});
      return;
    }
    const muted = (session.mutedUntil ?? 0) - performance.now();
    if (muted > 0) {
      const message = `you are muted for ${Math.ceil(muted / 1000)} s more; the line was not sent`;
      session.channel.send(noticeMessage(NoticeCode.muted, message)).catch(() => {});
      return;
    }
    await pace();
    if (!this.#sessions.has(session.id)) return;
    const action = line.action === true;
    if (line.type === MessageType.msg) {
      this.#config.room.say(session.id, text, action);
      return await this.#paceToSlowReaders(session);
    }
    const outcome = this.#config.room.tell(session.id, line.to, text, action);
    if (outcome === "sent") return;
    const why = outcome === "unsupported"
      ? noticeMessage(NoticeCode.unsupported, `${line.to}'s client cannot show private lines`)
      : noticeMessage(NoticeCode.noSuchMember, `nobody here is called "${line.to.slice(0, 49)}"`);
    session.channel.send(why).catch(() => {});
  }

  /**
   * Backpressure for lines: while a member has more than half its queue limit waiting, the
   * speaker's next line is not read until that member has taken enough of it, so a fast speaker
   * goes at the pace of the slowest reader instead of getting it dropped. A member that takes
   * nothing at all for SLOW_READER_WAIT_MS is dropped (it stopped reading), and the room goes
   * on; one that takes some, however slowly, is waited for.
   */
  async #paceToSlowReaders(speaker: Session): Promise<void> {
    const mark = this.#config.limits.maxQueuedBytes / 2;
    for (const reader of this.#sessions.values()) {
      if (reader === speaker) continue;
      while (reader.channel.queuedBytes > mark && !reader.channel.closed) {
        const written = reader.channel.writtenBytes;
        try {
          await withDeadline(
            reader.channel.whenQueuedAtMost(mark),
            SLOW_READER_WAIT_MS,
            "",
            () => {},
          );
        } catch {
          if (reader.channel.writtenBytes > written) continue; // slow, not stopped: wait on
          this.end(
            reader,
            "dropped",
            undefined,
            `its connection took none of its lines for ${SLOW_READER_WAIT_MS / 1000} s`,
          );
        }
      }
    }
  }

  /** The session of the member called `name`, if one is here. */
  #byName(name: string): Session | undefined {
    return [...this.#sessions.values()].find((session) => session.name === name);
  }

  /** The operator removes `name`: it and the room are told why. Says whether it was here. */
  kick(name: string, reason: string): boolean {
    const session = this.#byName(name);
    if (!session) return false;
    const because = reason ? `: ${reason}` : "";
    this.#config.room.announce(
      noticeMessage(NoticeCode.moderation, `${name} was removed by the operator${because}`),
    );
    const message = `the operator removed you${because}`;
    this.end(session, "kicked", errorMessage(ErrorCode.kicked, message), reason || undefined);
    return true;
  }

  /** The operator mutes `name` for `ms`: it and the room are told. Says whether it was here. */
  mute(name: string, ms: number): boolean {
    const session = this.#byName(name);
    if (!session) return false;
    session.mutedUntil = performance.now() + ms;
    const span = describeSpan(ms);
    session.channel.send(
      noticeMessage(NoticeCode.muted, `the operator muted you for ${span}`),
    ).catch(() => {});
    this.#config.room.announce(
      noticeMessage(NoticeCode.moderation, `${name} was muted by the operator for ${span}`),
    );
    return true;
  }

  /**
   * Ends a session from the server side (once: later calls change nothing): it leaves the room
   * at once, and `message` (a bye or an error), if any, is sent before the connection closes.
   */
  end(session: Session, why: LeaveReason, message?: ServerMessage, detail?: string): void {
    if (session.leaveReason) return;
    session.leaveReason = why;
    session.leaveDetail = detail;
    this.#detach(session);
    if (message) farewell(session.channel, message);
    else session.channel.close();
  }

  /** Takes a session out of the room (once) and reports its end, once. */
  #detach(session: Session): void {
    if (!this.#sessions.delete(session.id)) return;
    const reason = session.leaveReason ?? "lost";
    this.#config.transfers.left(session.id);
    this.#config.room.leave(session.id, reason);
    if (this.#config.closing()) return;
    this.#config.log.report({
      kind: "left",
      name: session.name,
      reason,
      detail: session.leaveDetail,
    });
  }

  /** Ends the sessions whose key left the allowlist. */
  sweep(allowlist: Allowlist): void {
    for (const session of this.#sessions.values()) {
      if (!allowlist.has(session.key)) {
        const message = errorMessage(ErrorCode.revoked, "your key was removed from the allowlist");
        this.end(session, "revoked", message);
      }
    }
  }

  /** A keepalive to every member (section 7.5). */
  sendKeepalives(): void {
    for (const session of this.#sessions.values()) {
      session.channel.send(bare(MessageType.keepalive)).catch(() => {});
    }
  }

  /** A bye to every member: the chat is over. */
  closeAll(): void {
    for (const session of this.#sessions.values()) {
      this.end(session, "left", bare(MessageType.bye));
    }
  }
}

/** `ms` for people: `90 s`, `10 min`, `2 h`. */
export function describeSpan(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}
