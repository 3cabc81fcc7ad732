/**
 * Admission: everything between a TCP connect on the control port and a session whose client
 * has joined on its data port (docs/PROTOCOL.md section 6). It accepts within the caps and the
 * per-address rate, runs the handshake under its deadline, checks the allowlist, opens the
 * session's data port, waits for the join, and checks the allowlist again; then it hands the
 * joined session over. Every failure ends one connection, never the listener.
 * @module
 */
import { acceptLoop, closeQuietly } from "./accept.ts";
import { Channel } from "../protocol/channel.ts";
import type { KeyPair } from "../protocol/crypto.ts";
import { withDeadline } from "../protocol/deadline.ts";
import { acceptHandshake, type HandshakeResult } from "../protocol/handshake_io.ts";
import {
  bare,
  CONTROL_SERVER_SIDE,
  type ControlMessage,
  ErrorCode,
  errorMessage,
  type FromClient,
  MessageType,
  SERVER_SIDE,
  type ServerMessage,
} from "../protocol/messages.ts";
import type { Allowlist } from "../keys/allowlist.ts";
import type { InviteRedemption } from "../keys/invites.ts";
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { awaitJoin, listenForData, type PortRange, UnprovenConnections } from "./data_port.ts";
import type { ServerLimits } from "./limits.ts";
import type { LogLimiter } from "./log_limit.ts";
import { type Conn, describe, type Listener, type Network } from "./network.ts";
import { SourceRateLimiter } from "./rate.ts";
import { farewell, FAREWELL_MS, reason } from "./endings.ts";
import { NoFreePortError } from "../errors.ts";
import type { RefusalReason } from "./events.ts";

/** How long shedding a waiting session may take to free its port before we give up on it. */
const SHED_WAIT_MS = 1000;

/** A client whose handshake, allowlist check and join all succeeded. */
export interface Admitted {
  channel: Channel<FromClient, ServerMessage>;
  /** The client's static key, and the same as `chat1…` text. */
  key: Uint8Array;
  keyText: string;
  fingerprint: string;
  /** The name it declared in its handshake. */
  declared: string;
  /** `host:port` it came from. */
  remote: string;
  /** The allowlist as read at its join. */
  allowlist: Allowlist;
  /** What its `join` says it can do (protocol/messages.ts Feature). */
  features: string[];
}

/** What admission needs from the server. */
export interface AdmissionConfig {
  network: Network;
  hostname: string;
  dataPorts?: PortRange;
  name: string;
  identity: KeyPair;
  limits: ServerLimits;
  log: LogLimiter;
  readAllowlist(): Promise<Allowlist>;
  /**
   * Redeems an invite for a key that is not allowed and presented an invite secret in its
   * handshake: adds the key to the allowlist and uses the invite up, or says why not. Absent:
   * the server takes no invites.
   */
  redeemInvite?: InviteRedeemer;
  /** True when the room cannot take another member. */
  full(): boolean;
  /** True once the server is closing. */
  closing(): boolean;
  /** Takes a joined client. */
  onAdmitted(admitted: Admitted): Promise<void>;
  /** Runs `task` as one of the server's (errors are logged, close() waits for it). */
  track(task: Promise<void>): void;
}

/**
 * Redeems an invite secret for `key` (its `declared` name is the label when the invite has
 * none): the label it was allowed under, or why the secret lets nobody in.
 */
export type InviteRedeemer = (
  secret: Uint8Array,
  key: Uint8Array,
  declared: string,
) => Promise<InviteRedemption>;

/** A handshake not yet finished: its connection and where it came from. */
interface Pending {
  connection: Conn;
  address: string;
}

/** A session that has its data port and waits for the client's join. */
interface AwaitingJoin {
  key: Uint8Array;
  keyText: string;
  who: string;
  /** Ends the wait: the data listener and the control connection close. */
  abort: AbortController;
  /** Resolves once the session's data port is closed (shedding waits for it to reuse it). */
  closed: Promise<void>;
}

/** The control port and the sessions on their way in. */
export class Admission {
  readonly #config: AdmissionConfig;
  readonly #pending = new Set<Pending>();
  readonly #awaiting = new Set<AwaitingJoin>();
  readonly #unproven: UnprovenConnections;
  readonly #connectRate: SourceRateLimiter;

  constructor(config: AdmissionConfig) {
    this.#config = config;
    const { limits } = config;
    this.#unproven = new UnprovenConnections(limits.maxUnprovenConnections);
    this.#connectRate = new SourceRateLimiter(limits.connectRatePerSecond, limits.connectBurst);
  }

  /**
   * Accepts on `listener` until the server closes. Resolves then; rejects if the listener broke
   * for a reason that is not transient (the server must not stay up deaf).
   */
  serve(listener: Listener): Promise<void> {
    return acceptLoop(listener, {
      closing: this.#config.closing,
      onConnection: (connection) => this.#onConnection(connection),
      onTransient: (code, count) => this.#config.log.report({ kind: "accept-failed", code, count }),
    });
  }

  /** Closes every handshake in flight and ends every session waiting for its join. */
  close(): void {
    for (const pending of this.#pending) closeQuietly(pending.connection);
    for (const awaiting of this.#awaiting) awaiting.abort.abort(new Error("the server is closing"));
  }

  /** Ends the waiting sessions whose key is not on `allowlist` (the revocation sweep). */
  sweep(allowlist: Allowlist): void {
    for (const awaiting of this.#awaiting) {
      if (!allowlist.has(awaiting.key)) {
        this.#awaiting.delete(awaiting);
        awaiting.abort.abort(new Error("the key was revoked before it joined"));
      }
    }
  }

  /**
   * A new control connection. Under load (many handshakes in flight), a source address past its
   * rate is closed before any DH work, as WireGuard does, so one flooding address cannot crowd
   * out everyone else's handshakes.
   */
  #onConnection(connection: Conn): void {
    const { limits, log } = this.#config;
    const address = connection.remoteAddr.hostname;
    const underLoad = this.#pending.size >= Math.max(8, limits.maxHandshakes / 8);
    if (!this.#connectRate.allow(address) && underLoad) {
      closeQuietly(connection);
      log.report({ kind: "rate-limited", address, perSecond: limits.connectRatePerSecond });
      return;
    }
    this.#config.track(this.#handleControl(connection));
  }

  /** Holds a new handshake within the caps, shedding the oldest pending one past either cap. */
  #hold(connection: Conn): Pending {
    const { limits } = this.#config;
    const address = connection.remoteAddr.hostname;
    const pending: Pending = { connection, address };
    const fromAddress = [...this.#pending].filter((p) => p.address === address);
    const victim = fromAddress.length >= limits.maxHandshakesPerAddress
      ? fromAddress[0]
      : this.#pending.size >= limits.maxHandshakes
      ? this.#pending.values().next().value
      : undefined;
    if (victim) {
      this.#pending.delete(victim);
      closeQuietly(victim.connection); // its deadline may have closed it a moment ago
    }
    this.#pending.add(pending);
    return pending;
  }

  async #handleControl(connection: Conn): Promise<void> {
    const remote = describe(connection.remoteAddr);
    const pending = this.#hold(connection);
    try {
      connection.setNoDelay?.(true); // can throw on a connection reset before we got here
    } catch { /* the handshake below fails on it and says so */ }
    let handshake: HandshakeResult;
    try {
      handshake = await withDeadline(
        acceptHandshake(connection, this.#config.identity, this.#config.name),
        this.#config.limits.handshakeTimeoutMs,
        "handshake timed out",
        () => closeQuietly(connection), // shedding may have closed it; a throw here would crash
      );
    } catch (error) {
      if (this.#pending.delete(pending)) {
        closeQuietly(connection); // the deadline may have closed it already
        if (!this.#config.closing()) {
          this.#config.log.report({ kind: "handshake-failed", remote, reason: reason(error) });
        }
      }
      return;
    }
    this.#pending.delete(pending);
    const control = new Channel(connection, handshake.send, handshake.receive, {
      codec: CONTROL_SERVER_SIDE,
      reader: handshake.reader,
    });
    try {
      await this.#admit(control, handshake, remote, connection.remoteAddr.hostname);
    } catch (error) {
      control.close();
      if (!this.#config.closing()) {
        this.#config.log.report({ kind: "session-failed", remote, reason: reason(error) });
      }
    }
  }

  /**
   * After the handshake: the allowlist (or an invite), the data port, the join, the allowlist
   * again.
   */
  async #admit(
    control: Channel<never, ControlMessage>,
    handshake: HandshakeResult,
    remote: string,
    address: string,
  ): Promise<void> {
    const key = handshake.remoteStaticKey;
    const keyText = encodePublicKey(key);
    const print = fingerprint(key);
    const session = { keyText, who: `${handshake.remoteName} (${print}) from ${remote}`, remote };
    const refuse = async (why: RefusalReason, code: string, message: string, detail?: string) => {
      this.#config.log.report({
        kind: "refused",
        reason: why,
        declared: handshake.remoteName,
        key: keyText,
        fingerprint: print,
        remote,
        detail,
      });
      await control.send(errorMessage(code, message));
      // wait for the client to close first (bounded), so our close cannot reset the refusal away
      await control.receive(FAREWELL_MS).catch(() => {});
      control.close();
    };

    if (!(await this.#config.readAllowlist()).has(key)) {
      const invite = handshake.remoteInvite;
      const redeem = this.#config.redeemInvite;
      if (invite === undefined || redeem === undefined) {
        return refuse(
          "not-allowed",
          ErrorCode.notAllowed,
          "your key is not on this server's allowlist",
        );
      }
      const redeemed = await redeem(invite, key, handshake.remoteName);
      if ("refused" in redeemed) {
        // a wrong secret costs its source a connection token, as a flood does
        this.#connectRate.allow(address);
        return refuse(
          "bad-invite",
          ErrorCode.badInvite,
          redeemed.refused === "expired"
            ? "this invite has expired"
            : "this invite is not valid: it was used up, withdrawn, or never made here",
          redeemed.refused,
        );
      }
      this.#config.log.report({
        kind: "invite-redeemed",
        label: redeemed.label,
        id: redeemed.id,
        key: keyText,
        fingerprint: print,
        remote,
      });
    }
    if (this.#config.closing()) {
      await control.send(errorMessage(ErrorCode.closing, "the server is shutting down"));
      await control.receive(FAREWELL_MS).catch(() => {});
      return control.close();
    }
    if (this.#config.full()) {
      const max = String(this.#config.limits.maxMembers);
      return refuse("room-full", ErrorCode.busy, "the room is full; try again later", max);
    }
    const listener = await this.#openDataPort(keyText);
    if (!listener) {
      const message = "no data port is free on the server; try again later";
      return refuse("no-data-port", ErrorCode.busy, message);
    }
    await this.#awaitJoin(control, listener, handshake, session);
  }

  /** Sends the port, waits for the join, checks the allowlist again, hands the session on. */
  async #awaitJoin(
    control: Channel<never, ControlMessage>,
    listener: Listener,
    handshake: HandshakeResult,
    session: { keyText: string; who: string; remote: string },
  ): Promise<void> {
    const { log, limits } = this.#config;
    const port = listener.addr.port;
    const awaiting = this.#register(handshake.remoteStaticKey, session.keyText, session.who);
    try {
      await control.send({ type: MessageType.port, port });
      const joined = await awaitJoin(listener, handshake.receive, {
        timeoutMs: limits.joinTimeoutMs,
        unproven: this.#unproven,
        signal: awaiting.abort.signal,
        onRejected: (from, why) =>
          log.report({ kind: "data-port-rejected", port, remote: from, reason: why }),
      });
      control.close();
      // the session's channel owns the transport keys: they are wiped when it closes
      const channel = new Channel(joined.connection, handshake.send, handshake.receive, {
        codec: SERVER_SIDE,
        ownsCiphers: true,
        reader: joined.reader,
        maxQueuedBytes: limits.maxQueuedBytes,
      });
      if (this.#config.closing()) {
        await channel.send(bare(MessageType.bye)).catch(() => {});
        return channel.close();
      }
      // the allowlist again: the key may have been revoked since its handshake
      const allowlist = await this.#config.readAllowlist();
      if (!allowlist.has(handshake.remoteStaticKey)) {
        log.report({
          kind: "refused",
          reason: "revoked-at-join",
          declared: handshake.remoteName,
          key: session.keyText,
          fingerprint: fingerprint(handshake.remoteStaticKey),
          remote: session.remote,
        });
        return farewell(
          channel,
          errorMessage(ErrorCode.revoked, "your key was removed from the allowlist"),
        );
      }
      await this.#config.onAdmitted({
        channel,
        key: handshake.remoteStaticKey,
        keyText: session.keyText,
        fingerprint: fingerprint(handshake.remoteStaticKey),
        declared: handshake.remoteName,
        remote: session.remote,
        allowlist,
        features: joined.features,
      });
    } finally {
      this.#awaiting.delete(awaiting);
      closeQuietly(listener);
      awaiting.done();
    }
  }

  #register(key: Uint8Array, keyText: string, who: string): AwaitingJoin & { done(): void } {
    let done!: () => void;
    const closed = new Promise<void>((resolve) => done = resolve);
    const awaiting = { key, keyText, who, abort: new AbortController(), closed, done };
    this.#awaiting.add(awaiting);
    return awaiting;
  }

  /**
   * A data listener for a new session of `key`, within the caps on sessions waiting for their
   * join: a key's third such session ends its oldest, and past the server-wide cap (or when no
   * port of the range is free) the oldest waiting session is shed for the newcomer, as
   * handshakes are. Undefined when no port can be had.
   */
  async #openDataPort(key: string): Promise<Listener | undefined> {
    const { limits } = this.#config;
    const ofKey = [...this.#awaiting].filter((awaiting) => awaiting.keyText === key);
    if (ofKey.length >= limits.maxPendingSessionsPerKey) {
      this.#shed(ofKey[0], "a newer session of the same key arrived");
    }
    if (this.#awaiting.size >= limits.maxPendingSessions) {
      this.#shed(this.#awaiting.values().next().value, "too many sessions waiting for their join");
    }
    while (true) {
      try {
        return listenForData(this.#config.network, this.#config.hostname, this.#config.dataPorts);
      } catch (error) {
        if (!(error instanceof NoFreePortError)) throw error;
        const oldest = this.#awaiting.values().next().value;
        if (!this.#shed(oldest, "its data port was needed for a newer session")) return undefined;
        // its port is free once its accept() has returned
        await withDeadline(oldest!.closed, SHED_WAIT_MS, "shed", () => {}).catch(() => {});
      }
    }
  }

  #shed(victim: AwaitingJoin | undefined, why: string): boolean {
    if (!victim) return false;
    this.#awaiting.delete(victim);
    victim.abort.abort(new Error(why));
    this.#config.log.report({ kind: "shed", who: victim.who, why });
    return true;
  }
}
