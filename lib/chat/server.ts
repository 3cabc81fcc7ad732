/**
 * The chat server: accepts handshakes on the control port, checks each client against the
 * allowlist, hands it a data port, and runs the room.
 *
 * I/O at the edges only: the allowlist, the operator's terminal and the log are passed in as
 * functions, so the server never prints and never exits. Every wait is bounded, every buffer
 * capped, and any failure ends one connection, never the server.
 * @module
 */
import { acceptLoop, closeQuietly } from "./accept.ts";
import { Channel, type Message } from "../protocol/channel.ts";
import {
  CONNECT_BURST,
  CONNECT_RATE_PER_SECOND,
  HANDSHAKE_TIMEOUT_MS,
  JOIN_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  MAX_HANDSHAKES,
  MAX_HANDSHAKES_PER_ADDRESS,
  MAX_LINE_BYTES,
  MAX_MEMBERS,
  MAX_PENDING_SESSIONS,
  MAX_PENDING_SESSIONS_PER_KEY,
  MAX_QUEUED_BYTES,
  MAX_UNPROVEN_CONNECTIONS,
  PEER_SILENCE_MS,
  RATE_BURST_LINES,
  RATE_LINES_PER_SECOND,
  REVOKE_CHECK_MS,
} from "../protocol/constants.ts";
import type { KeyPair } from "../protocol/crypto.ts";
import { TimeoutError, withDeadline } from "../errors.ts";
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { LogLimiter } from "./log_limit.ts";
import { MemoryNameBook, type NameBook } from "../keys/name_book.ts";
import {
  awaitJoin,
  describe,
  listenForData,
  NoFreePortError,
  type PortRange,
  UnprovenConnections,
} from "./data_port.ts";
import { SourceRateLimiter, TokenBucket } from "./rate.ts";
import { chooseName, type LeaveReason, type Member, Room } from "./room.ts";
import { acceptHandshake, type HandshakeResult } from "../protocol/handshake_io.ts";
import { lineProblem } from "./lines.ts";
import { quoteUntrusted } from "./untrusted.ts";

/** What the allowlist says about keys: allowed keys (by chat1… text) and their labels. */
export type Allowlist = ReadonlyMap<string, { label?: string }>;

/** Limits a server runs with; every one has a default in lib/constants.ts. */
export interface ServerLimits {
  handshakeTimeoutMs: number;
  joinTimeoutMs: number;
  keepaliveMs: number;
  peerSilenceMs: number;
  revokeCheckMs: number;
  maxHandshakes: number;
  maxHandshakesPerAddress: number;
  maxQueuedBytes: number;
  /** The longest line (UTF-8 bytes of its text) relayed; told to clients in the welcome. */
  maxLineBytes: number;
  maxMembers: number;
  /** Sessions that have a data port but no join yet, server-wide (the oldest is shed). */
  maxPendingSessions: number;
  /** Such sessions per key (a newer one ends the oldest). */
  maxPendingSessionsPerKey: number;
  /** Unproven connections on all data ports together (the oldest is closed). */
  maxUnprovenConnections: number;
  rateLinesPerSecond: number;
  rateBurstLines: number;
  /** New control connections per second per source address, applied under load. */
  connectRatePerSecond: number;
  connectBurst: number;
}

/** The defaults of ServerLimits. */
export const DEFAULT_LIMITS: ServerLimits = {
  handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
  joinTimeoutMs: JOIN_TIMEOUT_MS,
  keepaliveMs: KEEPALIVE_INTERVAL_MS,
  peerSilenceMs: PEER_SILENCE_MS,
  revokeCheckMs: REVOKE_CHECK_MS,
  maxHandshakes: MAX_HANDSHAKES,
  maxHandshakesPerAddress: MAX_HANDSHAKES_PER_ADDRESS,
  maxQueuedBytes: MAX_QUEUED_BYTES,
  maxLineBytes: MAX_LINE_BYTES,
  maxMembers: MAX_MEMBERS,
  maxPendingSessions: MAX_PENDING_SESSIONS,
  maxPendingSessionsPerKey: MAX_PENDING_SESSIONS_PER_KEY,
  maxUnprovenConnections: MAX_UNPROVEN_CONNECTIONS,
  rateLinesPerSecond: RATE_LINES_PER_SECOND,
  rateBurstLines: RATE_BURST_LINES,
  connectRatePerSecond: CONNECT_RATE_PER_SECOND,
  connectBurst: CONNECT_BURST,
};

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
  /** Reads the allowlist afresh (called for every handshake and every revocation sweep). */
  readAllowlist(): Promise<Allowlist>;
  /**
   * One line for the operator's log (who connected, was refused, left). Values a peer chose are
   * quoted and escaped, but the line is still untrusted text: the log's writer neutralises it.
   */
  log(line: string): void;
  /**
   * Told when a listener broke for a reason that is not transient: the server cannot accept
   * anyone any more, and the process should exit non-zero so a supervisor restarts it.
   */
  onFatal?(error: unknown): void;
  /** The names shown so far and their keys; in memory only when absent. */
  names?: NameBook;
  /** Receives what the operator should see; absent for a headless server. */
  operator?: (message: Message) => void;
  limits?: Partial<ServerLimits>;
}

/** A client in the room. */
interface Session {
  id: number;
  key: string;
  fingerprint: string;
  name: string;
  remote: string;
  channel: Channel;
  /** Set by whoever ends the session first; the receive loop reports it. */
  leaveReason?: LeaveReason;
  /** What went wrong, when something did (for the one log line of the session's end). */
  leaveDetail?: string;
}

/** A handshake not yet finished: its connection and where it came from. */
interface Pending {
  connection: Deno.TcpConn;
  address: string;
}

/** A session that has its data port and waits for the client's join. */
interface AwaitingJoin {
  key: string;
  who: string;
  /** Ends the wait: the data listener and the control connection close. */
  abort: AbortController;
  /** Resolves once the session's data port is closed (shedding waits for it to reuse the port). */
  closed: Promise<void>;
}

/** How long shedding a waiting session may take to free its port before we give up on it. */
const SHED_WAIT_MS = 1000;

const OPERATOR_ID = 0;
/** How long a farewell (bye, error) may take before the server closes the connection anyway. */
const FAREWELL_MS = 1000;

function error(code: string, message: string): Message {
  return { type: "error", code, message };
}

/** The chat server. Create, then `start()`; `close()` ends the chat for everyone. */
export class ChatServer {
  readonly #config: ServerConfig;
  readonly #limits: ServerLimits;
  readonly #room = new Room();
  readonly #sessions = new Map<number, Session>();
  readonly #pending = new Set<Pending>();
  readonly #awaiting = new Set<AwaitingJoin>();
  readonly #unproven: UnprovenConnections;
  readonly #connectRate: SourceRateLimiter;
  readonly #log: LogLimiter;
  readonly #names: NameBook;
  readonly #tasks = new Set<Promise<void>>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #listener: Deno.TcpListener | undefined;
  #nextId = OPERATOR_ID + 1;
  #closing = false;
  readonly #fingerprint: string;

  constructor(config: ServerConfig) {
    this.#config = config;
    this.#limits = { ...DEFAULT_LIMITS, ...config.limits };
    this.#unproven = new UnprovenConnections(this.#limits.maxUnprovenConnections);
    this.#connectRate = new SourceRateLimiter(
      this.#limits.connectRatePerSecond,
      this.#limits.connectBurst,
    );
    this.#log = new LogLimiter(config.log);
    this.#names = config.names ?? new MemoryNameBook();
    this.#fingerprint = fingerprint(config.identity.publicKey);
    const operator = config.operator;
    if (operator) {
      this.#room.join({
        id: OPERATOR_ID,
        name: config.name,
        fingerprint: this.#fingerprint,
        deliver: operator,
      });
    }
  }

  /** The control port actually listened on (after start()). */
  get port(): number {
    return (this.#listener?.addr as Deno.NetAddr | undefined)?.port ?? 0;
  }

  /** The display names present, the operator first (unless headless). */
  get members(): string[] {
    return this.#room.names();
  }

  /** Opens the control port and starts serving. Throws if the port cannot be opened. */
  start(): void {
    const listener = Deno.listen({ hostname: this.#config.hostname, port: this.#config.port });
    this.#listener = listener;
    this.#track(
      acceptLoop(listener, {
        closing: () => this.#closing,
        onConnection: (connection) => this.#onConnection(connection),
        onTransient: (code, count) =>
          this.#config.log(`accept failed ${count} time(s) (latest: ${code}); still listening`),
      }).catch((error) => {
        this.#config.log(`the control port stopped accepting: ${reason(error)}`);
        this.#config.onFatal?.(error);
      }),
    );
    this.#timers.push(
      setInterval(() => this.#track(this.#sweepRevoked()), this.#limits.revokeCheckMs),
    );
    this.#timers.push(setInterval(() => this.#sendKeepalives(), this.#limits.keepaliveMs));
  }

  /** The operator says `text` to the room; throws RangeError if it is not a valid line. */
  say(text: string): void {
    const problem = lineProblem(text, this.#limits.maxLineBytes);
    if (problem) throw new RangeError(problem);
    this.#room.say(OPERATOR_ID, text);
  }

  /**
   * Ends the chat for everyone: a bye to every client (each given a moment to be written), then
   * every connection and listener closes. Resolves when all is closed.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#timers.forEach((timer) => clearInterval(timer));
    try {
      this.#listener?.close();
    } catch { /* already closed */ }
    for (const pending of this.#pending) closeQuietly(pending.connection);
    for (const awaiting of this.#awaiting) awaiting.abort.abort(new Error("the server is closing"));
    for (const session of this.#sessions.values()) this.#end(session, "left", { type: "bye" });
    await Promise.allSettled([...this.#tasks]);
    this.#log.flush();
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.catch((error) => this.#config.log(`internal error: ${error?.message ?? error}`))
      .finally(() => this.#tasks.delete(task));
  }

  /**
   * A new control connection. Under load (many handshakes in flight), a source address past its
   * rate is closed before any DH work, as WireGuard does, so one flooding address cannot crowd
   * out everyone else's handshakes.
   */
  #onConnection(connection: Deno.TcpConn): void {
    const address = (connection.remoteAddr as Deno.NetAddr).hostname;
    const underLoad = this.#pending.size >= Math.max(8, this.#limits.maxHandshakes / 8);
    if (!this.#connectRate.allow(address) && underLoad) {
      closeQuietly(connection);
      this.#log.line(
        "rate-limited",
        `closed a connection from ${address}: over ${this.#limits.connectRatePerSecond} ` +
          `new connections per second while busy`,
      );
      return;
    }
    this.#track(this.#handleControl(connection));
  }

  /** Holds a new handshake within the caps, shedding the oldest pending one past either cap. */
  #admit(connection: Deno.TcpConn): Pending {
    const address = (connection.remoteAddr as Deno.NetAddr).hostname;
    const pending: Pending = { connection, address };
    const fromAddress = [...this.#pending].filter((p) => p.address === address);
    const victim = fromAddress.length >= this.#limits.maxHandshakesPerAddress
      ? fromAddress[0]
      : this.#pending.size >= this.#limits.maxHandshakes
      ? this.#pending.values().next().value
      : undefined;
    if (victim) {
      this.#pending.delete(victim);
      closeQuietly(victim.connection); // its deadline may have closed it a moment ago
    }
    this.#pending.add(pending);
    return pending;
  }

  async #handleControl(connection: Deno.TcpConn): Promise<void> {
    const remote = describe(connection.remoteAddr);
    const pending = this.#admit(connection);
    try {
      connection.setNoDelay(true); // can throw on a connection reset before we got here
    } catch { /* the handshake below fails on it and says so */ }
    let handshake: HandshakeResult;
    try {
      handshake = await withDeadline(
        acceptHandshake(connection, this.#config.identity, this.#config.name),
        this.#limits.handshakeTimeoutMs,
        "handshake timed out",
        () => closeQuietly(connection), // shedding may have closed it; a throw here would crash
      );
    } catch (error) {
      if (this.#pending.delete(pending)) {
        closeQuietly(connection); // the deadline may have closed it already
        if (!this.#closing) {
          this.#log.line("handshake", `handshake from ${remote} failed: ${reason(error)}`);
        }
      }
      return;
    }
    this.#pending.delete(pending);
    const control = new Channel(connection, handshake.send, handshake.receive, {
      reader: handshake.reader,
    });
    try {
      await this.#admitSession(control, handshake, remote);
    } catch (error) {
      control.close();
      if (!this.#closing) {
        this.#log.line("session", `session from ${remote} failed: ${reason(error)}`);
      }
    }
  }

  async #admitSession(control: Channel, handshake: HandshakeResult, remote: string) {
    const key = encodePublicKey(handshake.remoteStaticKey);
    const print = fingerprint(handshake.remoteStaticKey);
    const who = `${handshake.remoteName} (${print}) from ${remote}`;
    const refuse = async (code: string, message: string) => {
      await control.send(error(code, message));
      // wait for the client to close first (bounded), so our close cannot reset the refusal away
      await control.receive(FAREWELL_MS).catch(() => {});
      control.close();
    };

    // check the client's static key against the allowlist, read afresh
    if (!(await this.#config.readAllowlist()).has(key)) {
      // the declared name is the stranger's word, so the hint has a placeholder for the label
      this.#log.line(
        "refused",
        `refused ${who}: key not on the allowlist; if its owner confirms fingerprint ${print}, ` +
          `let it in with: chat allow ${key} --name NAME`,
      );
      return refuse("not-allowed", "your key is not on this server's allowlist");
    }
    if (this.#closing) return refuse("closing", "the server is shutting down");
    if (this.#sessions.size >= this.#limits.maxMembers) {
      this.#log.line("refused", `refused ${who}: the room is full (${this.#limits.maxMembers})`);
      return refuse("busy", "the room is full; try again later");
    }

    // open this session's own data listener and tell the client where it is
    const listener = await this.#openDataPort(key);
    if (!listener) {
      this.#log.line("refused", `refused ${who}: no data port is free`);
      return refuse("busy", "no data port is free on the server; try again later");
    }
    const port = (listener.addr as Deno.NetAddr).port;
    let closed!: () => void;
    const awaiting: AwaitingJoin = {
      key,
      who,
      abort: new AbortController(),
      closed: new Promise((resolve) => closed = resolve),
    };
    this.#awaiting.add(awaiting);
    try {
      await control.send({ type: "port", port });
      const joined = await awaitJoin(listener, handshake.receive, {
        timeoutMs: this.#limits.joinTimeoutMs,
        unproven: this.#unproven,
        signal: awaiting.abort.signal,
        onRejected: (from, why) =>
          this.#log.line("data-port", `data port ${port}: closed ${from}: ${why}`),
      });
      control.close();
      // the session's channel owns the transport keys: they are wiped when it closes
      const channel = new Channel(joined.connection, handshake.send, handshake.receive, {
        ownsCiphers: true,
        reader: joined.reader,
        maxQueuedBytes: this.#limits.maxQueuedBytes,
      });
      if (this.#closing) {
        await channel.send({ type: "bye" }).catch(() => {});
        return channel.close();
      }
      // the allowlist again: the key may have been revoked since its handshake
      const allowlist = await this.#config.readAllowlist();
      if (!allowlist.has(key)) {
        this.#log.line("refused", `refused ${who} at its join: the key was revoked`);
        return this.#farewell(channel, error("revoked", "your key was removed from the allowlist"));
      }
      await this.#join(channel, allowlist, key, print, handshake.remoteName, remote);
    } finally {
      this.#awaiting.delete(awaiting);
      closeQuietly(listener);
      closed();
    }
  }

  /**
   * A data listener for a new session of `key`, within the caps on sessions waiting for their
   * join: a key's third such session ends its oldest, and past the server-wide cap (or when no
   * port of the range is free) the oldest waiting session is shed for the newcomer, as
   * handshakes are. Undefined when no port can be had.
   */
  async #openDataPort(key: string): Promise<Deno.TcpListener | undefined> {
    const shed = (victim: AwaitingJoin | undefined, why: string) => {
      if (!victim) return false;
      this.#awaiting.delete(victim);
      victim.abort.abort(new Error(why));
      this.#log.line("shed", `ended the waiting session of ${victim.who}: ${why}`);
      return true;
    };
    const ofKey = [...this.#awaiting].filter((awaiting) => awaiting.key === key);
    if (ofKey.length >= this.#limits.maxPendingSessionsPerKey) {
      shed(ofKey[0], "a newer session of the same key arrived");
    }
    if (this.#awaiting.size >= this.#limits.maxPendingSessions) {
      shed(this.#awaiting.values().next().value, "too many sessions waiting for their join");
    }
    while (true) {
      try {
        return listenForData(this.#config.hostname, this.#config.dataPorts);
      } catch (error) {
        if (!(error instanceof NoFreePortError)) throw error;
        const oldest = this.#awaiting.values().next().value;
        if (!shed(oldest, "its data port was needed for a newer session")) return undefined;
        // its port is free once its accept() has returned
        await withDeadline(oldest!.closed, SHED_WAIT_MS, "shed", () => {}).catch(() => {});
      }
    }
  }

  /** Names the client, tells it so, and seats it in the room. */
  async #join(
    channel: Channel,
    allowlist: Allowlist,
    key: string,
    print: string,
    declared: string,
    remote: string,
  ): Promise<void> {
    // the same key joining again replaces its older session
    for (const old of this.#sessions.values()) {
      if (old.key === key) {
        this.#end(old, "replaced", error("replaced", "your key joined again from elsewhere"));
      }
    }
    const labels = [...allowlist].flatMap(([other, entry]) =>
      other !== key && entry.label !== undefined ? [entry.label] : []
    );
    const choice = chooseName(key, allowlist.get(key)?.label, declared, print.replaceAll(":", ""), {
      serverName: this.#config.name,
      labels,
      present: this.#room.names(),
      boundTo: (name) => this.#names.keyOf(name),
    });
    if ("confusableWith" in choice) {
      this.#log.line(
        "refused",
        `refused ${declared} (${print}) from ${remote}: the name looks like ` +
          `"${choice.confusableWith}"`,
      );
      return this.#farewell(
        channel,
        error(
          "name-confusable",
          `the name "${declared}" could be mistaken for "${choice.confusableWith}", ` +
            `who is known here; choose another name`,
        ),
      );
    }
    const { name } = choice;
    if (choice.bind) {
      try {
        await this.#names.bind(name, key);
      } catch (error) {
        // a name that cannot be recorded is still unique now; say so and carry on
        this.#log.line("names", `cannot record the name ${name}: ${reason(error)}`);
      }
    }
    if (this.#closing || this.#room.byName(name)) {
      // the server began closing, or another session took the name, while we wrote it down
      return this.#farewell(channel, { type: "bye" });
    }
    const session: Session = { id: this.#nextId++, key, fingerprint: print, name, remote, channel };
    this.#sessions.set(session.id, session);
    channel.send({
      type: "welcome",
      name,
      server: this.#config.name,
      members: this.#room.names(),
      max_line_bytes: this.#limits.maxLineBytes,
      keepalive_ms: this.#limits.keepaliveMs,
    }).catch(() => {});
    const member: Member = {
      id: session.id,
      name,
      fingerprint: print,
      deliver: (_message, plaintext) => {
        channel.sendPlaintext(plaintext).catch((error) =>
          this.#end(session, "dropped", undefined, reason(error))
        );
      },
    };
    this.#room.join(member);
    this.#config.log(`${name} (${print}) joined from ${remote}`);
    this.#track(this.#serve(session));
  }

  /** Reads one client's messages until it leaves, is removed, or falls silent. */
  async #serve(session: Session): Promise<void> {
    const { channel } = session;
    const bucket = new TokenBucket(this.#limits.rateLinesPerSecond, this.#limits.rateBurstLines);
    let throttled = false;
    try {
      while (true) {
        const message = await channel.receive(this.#limits.peerSilenceMs);
        if (message === null) break;
        if (message.type === "bye") {
          session.leaveReason ??= "left";
          break;
        }
        if (message.type === "who") {
          channel.send({ type: "who", members: this.#room.names() }).catch(() => {});
        } else if (message.type === "msg" && typeof message.text === "string") {
          const problem = lineProblem(message.text, this.#limits.maxLineBytes);
          if (problem) {
            channel.send({ type: "notice", code: "bad-line", message: problem }).catch(() => {});
            continue;
          }
          const wait = bucket.take();
          if (wait > 0) {
            // Not reading is the throttle: TCP pushes back on the flooder, no one else waits.
            if (!throttled) {
              throttled = true;
              channel.send({
                type: "notice",
                code: "slow-down",
                message: `you are sending faster than ${this.#limits.rateLinesPerSecond} lines ` +
                  `per second; your lines are delayed, not lost`,
              }).catch(() => {});
            }
            await new Promise((resolve) => setTimeout(resolve, wait));
          } else throttled = false;
          if (this.#sessions.has(session.id)) this.#room.say(session.id, message.text);
        }
        // keepalive and unknown types: nothing to do (hearing them resets the silence timer)
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
   * Ends a session from the server side (once: later calls change nothing): it leaves the room
   * at once, and `farewell` (a bye or an error), if any, is sent before the connection closes.
   */
  #end(session: Session, why: LeaveReason, farewell?: Message, detail?: string): void {
    if (session.leaveReason) return;
    session.leaveReason = why;
    session.leaveDetail = detail;
    this.#detach(session);
    if (farewell) this.#farewell(session.channel, farewell);
    else session.channel.close();
  }

  /**
   * Sends `farewell`, then closes the connection when the client closes it or after a second.
   * Waiting for the client's close matters: closing a socket with unread input sends a reset,
   * which can destroy the farewell before the client reads it.
   */
  #farewell(channel: Channel, farewell: Message): void {
    channel.send(farewell).catch(() => {});
    setTimeout(() => channel.close(), FAREWELL_MS);
  }

  /** Takes a session out of the room (once) and logs its end, in one line. */
  #detach(session: Session): void {
    if (!this.#sessions.delete(session.id)) return;
    this.#room.leave(session.id, session.leaveReason ?? "lost");
    if (this.#closing) return;
    const detail = session.leaveDetail ? `: ${session.leaveDetail}` : "";
    this.#log.line("left", `${session.name} left (${session.leaveReason ?? "lost"}${detail})`);
  }

  /** Ends the sessions, joined or waiting for their join, whose key left the allowlist. */
  async #sweepRevoked(): Promise<void> {
    if ((this.#sessions.size === 0 && this.#awaiting.size === 0) || this.#closing) return;
    let allowlist: Allowlist;
    try {
      allowlist = await this.#config.readAllowlist();
    } catch (error) {
      // A broken allowlist must not throw everyone out; say so and keep the room as it is.
      this.#log.line("allowlist", `cannot re-read the allowlist: ${reason(error)}`);
      return;
    }
    for (const awaiting of this.#awaiting) {
      if (!allowlist.has(awaiting.key)) {
        this.#awaiting.delete(awaiting);
        awaiting.abort.abort(new Error("the key was revoked before it joined"));
      }
    }
    for (const session of this.#sessions.values()) {
      if (!allowlist.has(session.key)) {
        this.#end(session, "revoked", error("revoked", "your key was removed from the allowlist"));
      }
    }
  }

  #sendKeepalives(): void {
    for (const session of this.#sessions.values()) {
      session.channel.send({ type: "keepalive" }).catch(() => {});
    }
  }
}

/** What went wrong, for the log: a peer's words in an error message are escaped. */
function reason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return quoteUntrusted(text, 200).slice(1, -1);
}
