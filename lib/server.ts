/**
 * The chat server: accepts handshakes on the control port, checks each client against the
 * allowlist, hands it a data port, and runs the room.
 *
 * I/O at the edges only: the allowlist, the operator's terminal and the log are passed in as
 * functions, so the server never prints and never exits. Every wait is bounded, every buffer
 * capped, and any failure ends one connection, never the server.
 * @module
 */
import { Channel, type Message } from "./channel.ts";
import {
  HANDSHAKE_TIMEOUT_MS,
  JOIN_TIMEOUT_MS,
  KEEPALIVE_INTERVAL_MS,
  MAX_HANDSHAKES,
  MAX_HANDSHAKES_PER_ADDRESS,
  MAX_LINE_BYTES,
  MAX_MEMBERS,
  MAX_QUEUED_BYTES,
  PEER_SILENCE_MS,
  RATE_BURST_LINES,
  RATE_LINES_PER_SECOND,
  REVOKE_CHECK_MS,
} from "./constants.ts";
import type { KeyPair } from "./crypto.ts";
import { TimeoutError, withDeadline } from "./errors.ts";
import { encodePublicKey, fingerprint } from "./keys.ts";
import { awaitJoin, describe, listenForData, NoFreePortError, type PortRange } from "./ports.ts";
import { displayName, type LeaveReason, type Member, Room, uniqueName } from "./room.ts";
import { acceptHandshake, type HandshakeResult } from "./secure.ts";
import { lineProblem } from "./lines.ts";

/** What the allowlist says about keys: allowed keys (by chat1… text) and their labels. */
export type Allowlist = Map<string, { label?: string }>;

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
  rateLinesPerSecond: number;
  rateBurstLines: number;
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
  rateLinesPerSecond: RATE_LINES_PER_SECOND,
  rateBurstLines: RATE_BURST_LINES,
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
  /** One line for the operator's log (who connected, was refused, left). */
  log(line: string): void;
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
}

/** A handshake not yet finished: its connection and where it came from. */
interface Pending {
  connection: Deno.TcpConn;
  address: string;
}

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
  readonly #tasks = new Set<Promise<void>>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #listener: Deno.TcpListener | undefined;
  #nextId = OPERATOR_ID + 1;
  #closing = false;
  readonly #fingerprint: string;

  constructor(config: ServerConfig) {
    this.#config = config;
    this.#limits = { ...DEFAULT_LIMITS, ...config.limits };
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

  /** Handshakes in flight (for tests and the operator's status). */
  get pendingHandshakes(): number {
    return this.#pending.size;
  }

  /** Opens the control port and starts serving. Throws if the port cannot be opened. */
  start(): void {
    this.#listener = Deno.listen({ hostname: this.#config.hostname, port: this.#config.port });
    this.#track(this.#acceptLoop(this.#listener));
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
    for (const session of this.#sessions.values()) this.#end(session, "left", { type: "bye" });
    await Promise.allSettled([...this.#tasks]);
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.catch((error) => this.#config.log(`internal error: ${error?.message ?? error}`))
      .finally(() => this.#tasks.delete(task));
  }

  async #acceptLoop(listener: Deno.TcpListener): Promise<void> {
    try {
      for await (const connection of listener) {
        if (this.#closing) {
          connection.close();
          continue;
        }
        this.#track(this.#handleControl(connection));
      }
    } catch (error) {
      if (!this.#closing) throw error;
    }
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
    connection.setNoDelay(true);
    const pending = this.#admit(connection);
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
        if (!this.#closing) this.#config.log(`handshake from ${remote} failed: ${reason(error)}`);
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
      if (!this.#closing) this.#config.log(`session from ${remote} failed: ${reason(error)}`);
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
    const entry = (await this.#config.readAllowlist()).get(key);
    if (!entry) {
      this.#config.log(
        `refused ${who}: key not on the allowlist; to let it in: chat allow ${key} --name ${handshake.remoteName}`,
      );
      return refuse("not-allowed", "your key is not on this server's allowlist");
    }
    if (this.#closing) return refuse("closing", "the server is shutting down");
    if (this.#sessions.size >= this.#limits.maxMembers) {
      this.#config.log(`refused ${who}: the room is full (${this.#limits.maxMembers})`);
      return refuse("busy", "the room is full; try again later");
    }

    // open this session's own data listener and tell the client where it is
    let listener: Deno.TcpListener;
    try {
      listener = listenForData(this.#config.hostname, this.#config.dataPorts);
    } catch (error) {
      if (!(error instanceof NoFreePortError)) throw error;
      this.#config.log(`refused ${who}: ${error.message}`);
      return refuse("busy", "no data port is free on the server; try again later");
    }
    const port = (listener.addr as Deno.NetAddr).port;
    try {
      await control.send({ type: "port", port });
    } catch (error) {
      listener.close();
      throw error;
    }
    const joined = await awaitJoin(listener, handshake.receive, {
      timeoutMs: this.#limits.joinTimeoutMs,
      onRejected: (from, why) => this.#config.log(`data port ${port}: closed ${from}: ${why}`),
    });
    control.close();
    const channel = new Channel(joined.connection, handshake.send, handshake.receive, {
      reader: joined.reader,
      maxQueuedBytes: this.#limits.maxQueuedBytes,
    });
    if (this.#closing) {
      await channel.send({ type: "bye" }).catch(() => {});
      channel.close();
      return;
    }
    this.#join(channel, key, print, entry.label, handshake.remoteName, remote);
  }

  #join(
    channel: Channel,
    key: string,
    print: string,
    label: string | undefined,
    declared: string,
    remote: string,
  ): void {
    // the same key joining again replaces its older session
    for (const old of this.#sessions.values()) {
      if (old.key === key) {
        this.#end(old, "replaced", error("replaced", "your key joined again from elsewhere"));
      }
    }
    const name = uniqueName(
      displayName(label, declared, print),
      print,
      (taken) => taken === this.#config.name || this.#room.byName(taken) !== undefined,
    );
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
        channel.sendPlaintext(plaintext).catch((error) => {
          this.#end(session, "dropped");
          this.#config.log(`${name} dropped: ${reason(error)}`);
        });
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
        this.#config.log(`${session.name}: ${reason(error)}`);
      }
    } finally {
      this.#detach(session);
      session.channel.close();
    }
  }

  /**
   * Ends a session from the server side: it leaves the room at once; `farewell` (a bye or an
   * error) is sent, and the connection closes when the client closes it or after a second.
   * Waiting for the client's close matters: closing a socket with unread input sends a reset,
   * which can destroy the farewell before the client reads it.
   */
  #end(session: Session, why: LeaveReason, farewell?: Message): void {
    if (session.leaveReason) return;
    session.leaveReason = why;
    this.#detach(session);
    if (!farewell) return session.channel.close();
    session.channel.send(farewell).catch(() => {});
    setTimeout(() => session.channel.close(), FAREWELL_MS);
  }

  /** Takes a session out of the room (once) and tells the operator. */
  #detach(session: Session): void {
    if (!this.#sessions.delete(session.id)) return;
    this.#room.leave(session.id, session.leaveReason ?? "lost");
    if (!this.#closing) this.#config.log(`${session.name} left (${session.leaveReason})`);
  }

  async #sweepRevoked(): Promise<void> {
    if (this.#sessions.size === 0 || this.#closing) return;
    let allowlist: Allowlist;
    try {
      allowlist = await this.#config.readAllowlist();
    } catch (error) {
      // A broken allowlist must not throw everyone out; say so and keep the room as it is.
      this.#config.log(`cannot re-read the allowlist: ${reason(error)}`);
      return;
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

/** A token bucket: `take()` returns 0 when a line may go now, else the milliseconds to wait. */
export class TokenBucket {
  #tokens: number;
  #updated = performance.now();

  constructor(readonly ratePerSecond: number, readonly burst: number) {
    this.#tokens = burst;
  }

  /** Takes one token (possibly going into debt) and says how long the caller must wait. */
  take(now = performance.now()): number {
    this.#tokens = Math.min(
      this.burst,
      this.#tokens + ((now - this.#updated) / 1000) * this.ratePerSecond,
    );
    this.#updated = now;
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.ratePerSecond) * 1000;
  }
}

/** Closes `connection` unless it is already closed (a second close throws BadResource). */
function closeQuietly(connection: Deno.Conn): void {
  try {
    connection.close();
  } catch { /* already closed */ }
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
