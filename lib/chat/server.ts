/**
 * The chat server: admission (control port, handshake, allowlist, data port; admission.ts), the
 * sessions in the room (sessions.ts), the room itself (room.ts), and the timers that sweep
 * revoked keys and send keepalives.
 *
 * I/O at the edges only: the network, the allowlist, the operator and the log are passed in, so
 * the server never prints and never exits. Every wait is bounded, every buffer capped, and any
 * failure ends one connection, never the server.
 * @module
 */
import { closeQuietly } from "./accept.ts";
import type { KeyPair } from "../protocol/crypto.ts";
import { Feature, type ServerMessage } from "../protocol/messages.ts";
import type { Allowlist } from "../keys/allowlist.ts";
import { fingerprint } from "../keys/key_text.ts";
import { MemoryNameBook, type NameBook } from "../keys/name_book.ts";
import { Admission, type InviteRedeemer } from "./admission.ts";
import type { PortRange } from "./data_port.ts";
import { reason } from "./endings.ts";
import type { ServerEvent } from "./events.ts";
import { type ServerLimits, withDefaults } from "./limits.ts";
import { lineProblem } from "./lines.ts";
import { LogLimiter } from "./log_limit.ts";
import { type Listener, type Network, TCP } from "./network.ts";
import { type Member, Room, type TellOutcome } from "./room.ts";
import { Sessions } from "./sessions.ts";
import { TransferRelay } from "./transfers.ts";
import { type FileEvents, FileTransfers } from "./file_transfer.ts";
import { decodeChunk, type FileClientMessage, FileMessageType } from "../protocol/file_messages.ts";

/** How a server is set up. */
export interface ServerConfig {
  hostname: string;
  /** The control port; 0 picks a free one (see ChatServer.port). */
  port: number;
  /** Where data listeners may open; any free port when absent. */
  dataPorts?: PortRange;
  /** The server's display name, also the operator's name in the room. */
  name: string;
  identity: KeyPair;
  /** Reads the allowlist afresh (for every handshake, every join and every sweep). */
  readAllowlist(): Promise<Allowlist>;
  /** Redeems invites presented in handshakes (admission.ts); absent: no invites taken. */
  redeemInvite?: InviteRedeemer;
  /**
   * Hears what happens (who joined, was refused, left), as facts; repeated events of one kind
   * are limited to a few per 10 s and then counted (log_limit.ts).
   */
  report(event: ServerEvent): void;
  /**
   * Told when the control port broke for a reason that is not transient: the server cannot
   * accept anyone any more, and the process should exit non-zero so a supervisor restarts it.
   */
  onFatal?(error: unknown): void;
  /** Receives what the operator should see; absent for a headless server. */
  operator?: (message: ServerMessage) => void;
  /**
   * The operator's file transfers (offers to it, its `/send`); absent: the operator takes no
   * files (members are told `unsupported`). Only with `operator`.
   */
  operatorFiles?: FileEvents;
  /** Hears every message the room broadcasts, headless or not (for a room log). */
  observe?: (message: ServerMessage) => void;
  /** The names shown so far and their keys; in memory only when absent. */
  names?: NameBook;
  /** TCP unless given (tests pass an in-memory network). */
  network?: Network;
  limits?: Partial<ServerLimits>;
}

const OPERATOR_ID = 0;
/** How often transfers that stopped moving are looked for (TransferRelay.sweep). */
const TRANSFER_SWEEP_MS = 1000;

/** The chat server. Create, then `start()`; `close()` ends the chat for everyone. */
export class ChatServer {
  readonly #config: ServerConfig;
  readonly #limits: ServerLimits;
  readonly #room: Room;
  readonly #log: LogLimiter;
  readonly #admission: Admission;
  readonly #sessions: Sessions;
  readonly #transfers: TransferRelay;
  readonly #tasks = new Set<Promise<void>>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #listener: Listener | undefined;
  #closing = false;
  /** The operator's file transfers (ServerConfig.operatorFiles). */
  readonly files: FileTransfers | undefined;

  constructor(config: ServerConfig) {
    this.#config = config;
    this.#limits = withDefaults(config.limits);
    this.#room = new Room(config.observe, this.#limits.historyLines);
    this.#log = new LogLimiter(config.report);
    const closing = () => this.#closing;
    const track = (task: Promise<void>) => this.#track(task);
    this.#transfers = new TransferRelay(
      this.#room,
      { ...this.#limits, stallMs: this.#limits.peerSilenceMs },
      (event) => this.#log.report({ kind: "transfer", ...event }),
    );
    this.#sessions = new Sessions({
      serverName: config.name,
      limits: this.#limits,
      log: this.#log,
      room: this.#room,
      names: config.names ?? new MemoryNameBook(),
      transfers: this.#transfers,
      closing,
      track,
    }, OPERATOR_ID + 1);
    this.#admission = new Admission({
      network: config.network ?? TCP,
      hostname: config.hostname,
      dataPorts: config.dataPorts,
      name: config.name,
      identity: config.identity,
      limits: this.#limits,
      log: this.#log,
      readAllowlist: config.readAllowlist,
      redeemInvite: config.redeemInvite,
      full: () => this.#sessions.size >= this.#limits.maxMembers,
      closing,
      onAdmitted: (admitted) => this.#sessions.seat(admitted),
      track,
    });
    this.files = config.operator && config.operatorFiles
      ? this.#operatorTransfers(config.operatorFiles)
      : undefined;
    if (config.operator) this.#room.join(this.#operatorMember(config.operator, this.files));
  }

  /**
   * The operator as a member of the room: what it is sent goes to `deliver` (the terminal),
   * file messages and chunks to its transfers, if it takes files.
   */
  #operatorMember(
    deliver: (message: ServerMessage) => void,
    files: FileTransfers | undefined,
  ): Member {
    const features = new Set(
      Object.values(Feature).filter((feature) => files || feature !== Feature.files),
    );
    return {
      id: OPERATOR_ID,
      name: this.#config.name,
      fingerprint: fingerprint(this.#config.identity.publicKey),
      features,
      deliver: (message) => {
        if (!files || !message.type.startsWith("file-")) return deliver(message);
        files.handle(message as Parameters<FileTransfers["handle"]>[0]);
      },
      ...(files
        ? {
          deliverChunk: (plaintext: Uint8Array) => {
            const chunk = decodeChunk(plaintext);
            if (chunk) files.handleChunk(chunk);
            return undefined; // written at once (downloads.ts writes synchronously)
          },
        }
        : {}),
    };
  }

  /**
   * The operator's side of file transfers: a FileTransfers whose link is the relay itself, as
   * if the operator were a client (its chunks go through the same checks and backpressure).
   */
  #operatorTransfers(events: FileEvents): FileTransfers {
    const relay = this.#transfers;
    const send = (message: FileClientMessage) => {
      switch (message.type) {
        case FileMessageType.offer:
          return relay.offer(OPERATOR_ID, message);
        case FileMessageType.accept:
          return relay.accept(OPERATOR_ID, message);
        case FileMessageType.ack:
          return relay.ack(OPERATOR_ID, message);
        case FileMessageType.end:
          return relay.end(OPERATOR_ID, message);
      }
    };
    return new FileTransfers({
      send,
      sendChunk: (plaintext) => relay.chunk(OPERATOR_ID, decodeChunk(plaintext)!),
    }, events);
  }

  /** The control port actually listened on (after start()). */
  get port(): number {
    return this.#listener?.addr.port ?? 0;
  }

  /** The display names present, the operator first (unless headless). */
  get members(): string[] {
    return this.#room.names();
  }

  /** Opens the control port and starts serving. Throws if the port cannot be opened. */
  start(): void {
    const network = this.#config.network ?? TCP;
    const listener = network.listen({ hostname: this.#config.hostname, port: this.#config.port });
    this.#listener = listener;
    this.#track(
      this.#admission.serve(listener).catch((error) => {
        this.#log.report({ kind: "listener-failed", reason: reason(error) });
        this.#config.onFatal?.(error);
      }),
    );
    this.#timers.push(
      setInterval(() => this.#track(this.#sweepRevoked()), this.#limits.revokeCheckMs),
      setInterval(() => this.#transfers.sweep(), TRANSFER_SWEEP_MS),
      setInterval(() => this.#sessions.sendKeepalives(), this.#limits.keepaliveMs),
    );
  }

  /**
   * The operator says `text` to the room (`action`: a `/me` line); throws RangeError if it is
   * not a valid line.
   */
  say(text: string, action = false): void {
    this.#check(text);
    this.#room.say(OPERATOR_ID, text, action);
  }

  /** The operator tells `text` to the member called `to` only. */
  tell(to: string, text: string, action = false): TellOutcome {
    this.#check(text);
    return this.#room.tell(OPERATOR_ID, to, text, action);
  }

  /** The operator removes the member called `name`; false if nobody is called that. */
  kick(name: string, reason: string): boolean {
    return this.#sessions.kick(name, reason);
  }

  /** The operator mutes the member called `name` for `ms`; false if nobody is called that. */
  mute(name: string, ms: number): boolean {
    return this.#sessions.mute(name, ms);
  }

  #check(text: string): void {
    const problem = lineProblem(text, this.#limits.maxLineBytes);
    if (problem) throw new RangeError(problem);
  }

  /**
   * Ends the chat for everyone: a bye to every client (each given a moment to be written), then
   * every connection and listener closes. Resolves when all is closed.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#timers.forEach((timer) => clearInterval(timer));
    if (this.#listener) closeQuietly(this.#listener);
    this.#admission.close();
    this.#sessions.closeAll();
    this.files?.connectionLost("the server stopped");
    this.#transfers.close();
    await Promise.allSettled([...this.#tasks]);
    this.#log.flush();
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.catch((error) => this.#log.report({ kind: "internal-error", reason: reason(error) }))
      .finally(() => this.#tasks.delete(task));
  }

  /** Ends the sessions, joined or waiting for their join, whose key left the allowlist. */
  async #sweepRevoked(): Promise<void> {
    if (this.#closing) return;
    let allowlist: Allowlist;
    try {
      allowlist = await this.#config.readAllowlist();
    } catch (error) {
      // A broken allowlist must not throw everyone out; say so and keep the room as it is.
      this.#log.report({ kind: "allowlist-unreadable", reason: reason(error) });
      return;
    }
    this.#admission.sweep(allowlist);
    this.#sessions.sweep(allowlist);
  }
}
