/**
 * The chat client once joined (join.ts joins): lines, private lines, files and presence as
 * events, keepalives, and leaving with the documented farewell.
 *
 * No printing and no exiting here: what happens is reported through the ChatHandlers
 * callbacks, and the command glue decides what the user sees and the exit code.
 * @module
 */
import { silenceLimit } from "../protocol/constants.ts";
import { withDeadline } from "../protocol/deadline.ts";
import { bare, Feature, MessageType } from "../protocol/messages.ts";
import { TimeoutError } from "../errors.ts";
import { FileMessageType } from "../protocol/file_messages.ts";
import { type FileEvents, FileTransfers } from "./file_transfer.ts";

import type { ClientSession } from "./join.ts";

/** How long a client waits for the server to close after its bye (section 6.4). */
export const CLIENT_FAREWELL_MS = 2000;
/**
 * The longest a server may take to read one line: the slowest rate a server can be given is one
 * line per second (`chat serve --rate 1`), and it pauses reading to keep it (never drops).
 */
const SLOWEST_LINE_MS = 1000;

/** How a chat ended, as the client saw it. */
export type ChatEnd =
  | { kind: "left" } // we said bye
  | { kind: "server-ended" } // the server said bye
  | { kind: "removed"; code: string; message: string } // the server sent an error and closed
  | { kind: "lost"; reason: string }; // the connection failed or fell silent

/** How a line was said: `/me`, replayed from history (with its time), who exactly said it. */
export interface LineDetails {
  action?: boolean;
  replay?: boolean;
  time?: string;
  fingerprint?: string;
}

/** What the client reports while chatting. */
export interface ChatHandlers {
  message(from: string, text: string, details?: LineDetails): void;
  /** A private line to us (from a server with private messages). */
  private?(from: string, text: string, details?: LineDetails): void;
  presence(event: string, name: string, detail: string): void;
  who(members: string[]): void;
  notice(code: string, message: string): void;
  /** File transfers (to or from us), on a server that has them; absent: offers are declined. */
  files?: FileEvents;
}

/** A joined chat: send lines, ask who is here, leave; `ended` resolves with how it ended. */
export class ClientChat {
  readonly session: ClientSession;
  readonly ended: Promise<ChatEnd>;
  #leaving = false;
  /** The server closed the connection (rather than it failing or us closing it). */
  #serverClosed = false;
  readonly #silenceMs: number;
  readonly #keepalive: ReturnType<typeof setInterval>;
  /** File transfers, when the server has them (its welcome lists `files`). */
  readonly files: FileTransfers | undefined;

  constructor(session: ClientSession, handlers: ChatHandlers) {
    this.session = session;
    if (session.features.has(Feature.files)) {
      const channel = session.channel;
      this.files = new FileTransfers({
        send: (message) => void channel.send(message).catch(() => {}),
        sendChunk: (plaintext) => channel.sendBulk(plaintext),
      }, handlers.files ?? { offered: (offer) => this.files?.decline(offer.id), ended() {} });
    }
    // three missed keepalives of the server's interval (45 s with the default 15 s)
    this.#silenceMs = silenceLimit(session.keepaliveMs);
    this.#keepalive = setInterval(() => {
      session.channel.send(bare(MessageType.keepalive)).catch(() => {});
    }, session.keepaliveMs);
    this.ended = this.#receiveLoop(handlers).then((end) => {
      clearInterval(this.#keepalive);
      session.channel.close();
      this.files?.connectionLost(endReason(end));
      return end;
    });
  }

  /**
   * Sends one line (`action`: a `/me` line). Throws RangeError (sending nothing) if it cannot
   * fit one frame.
   */
  say(text: string, action = false): Promise<void> {
    return this.session.channel.send({
      type: MessageType.msg,
      text,
      ...(action ? { action } : {}),
    });
  }

  /**
   * Sends a line to the member called `to` only. Throws RangeError if the server has no private
   * messages (an old server would not know the message and drop it) or it cannot fit a frame.
   */
  tell(to: string, text: string, action = false): Promise<void> {
    if (!this.session.features.has(Feature.private)) {
      throw new RangeError("this server has no private messages (it is an older version)");
    }
    return this.session.channel.send({
      type: MessageType.private,
      to,
      text,
      ...(action ? { action } : {}),
    });
  }

  /** Asks the server who is present (answered through handlers.who). */
  askWho(): void {
    this.session.channel.send(bare(MessageType.who)).catch(() => {});
  }

  /**
   * Says bye, then waits (at most 2 s) for the server to close the connection: closing first
   * could reset it with unread input and destroy the bye before the server reads it.
   */
  async leave(): Promise<ChatEnd> {
    if (!this.#leaving) {
      this.#leaving = true;
      this.session.channel.send(bare(MessageType.bye)).catch(() => {});
      await withDeadline(this.ended, CLIENT_FAREWELL_MS, "bye", () => this.session.channel.close())
        .catch(() => {});
    }
    return this.ended;
  }

  /**
   * Sends `lines` in order, says bye, and waits for the server to close the connection: the
   * server reads a client's messages in order, so its close after the bye means it has read every
   * line. Resolves `left` only then; a chat that ends otherwise, or no close within the time a
   * server at the slowest rate needs (2 s plus 1 s a line), is that end (`lost` for no close).
   * Each line must pass `lineProblem` first (a line that fits no frame throws RangeError).
   */
  async sendAll(lines: readonly string[], to?: string): Promise<ChatEnd> {
    const budgetMs = CLIENT_FAREWELL_MS + lines.length * SLOWEST_LINE_MS;
    const sending = async () => {
      for (const text of lines) await (to === undefined ? this.say(text) : this.tell(to, text));
      this.#leaving = true;
      await this.session.channel.send(bare(MessageType.bye));
    };
    sending().catch(() => {}); // a failed send shows up as the chat ending
    let timedOut = false;
    const end = await withDeadline(this.ended, budgetMs, "no close", () => {
      timedOut = true;
      this.session.channel.close();
    }).catch(() => this.ended);
    if (this.#serverClosed || (!timedOut && end.kind !== "left")) return end;
    return {
      kind: "lost",
      reason: timedOut
        ? `the server did not close the connection within ${budgetMs / 1000} s of our bye`
        : "the connection failed before the server had read our bye",
    };
  }

  async #receiveLoop(handlers: ChatHandlers): Promise<ChatEnd> {
    const channel = this.session.channel;
    try {
      while (true) {
        const parsed = await channel.receive(this.#silenceMs);
        if (parsed === null) {
          this.#serverClosed = true;
          return this.#leaving
            ? { kind: "left" }
            : { kind: "lost", reason: "the server closed the connection without a bye" };
        }
        switch (parsed.type) {
          case MessageType.msg:
            handlers.message(parsed.from, parsed.text, parsed);
            break;
          case MessageType.private:
            handlers.private?.(parsed.from, parsed.text, parsed);
            break;
          case MessageType.presence:
            handlers.presence(
              parsed.event,
              parsed.name,
              parsed.event === "join" ? parsed.fingerprint : parsed.reason,
            );
            break;
          case MessageType.who:
            handlers.who(parsed.members);
            break;
          case MessageType.notice:
            handlers.notice(parsed.code, parsed.message);
            break;
          case MessageType.bye:
            return { kind: "server-ended" };
          case MessageType.error:
            return { kind: "removed", code: parsed.code, message: parsed.message };
          case "chunk":
            this.files?.handleChunk(parsed);
            break;
          case FileMessageType.offer:
          case FileMessageType.accept:
          case FileMessageType.ack:
          case FileMessageType.end:
            this.files?.handle(parsed);
            break;
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

/** Why a chat ended, in a few words (for the transfers it cut short). */
function endReason(end: ChatEnd): string {
  switch (end.kind) {
    case "left":
      return "we left the chat";
    case "server-ended":
      return "the server ended the chat";
    case "removed":
      return `the server removed us (${end.code})`;
    case "lost":
      return `the connection was lost: ${end.reason}`;
  }
}
