/**
 * The room: who is present, under which name, and who receives each line.
 *
 * Pure logic: members bring their own `deliver` function (a channel send, or the operator's
 * terminal), so tests can run a room with plain arrays. Delivery is synchronous enqueueing, so
 * the order in which a sender's lines are said is the order every receiver gets them.
 * @module
 */
import { confusable } from "../protocol/names.ts";
import {
  encodeMessage,
  Feature,
  type LeaveReason,
  MessageType,
  type PrivateLine,
  type RoomLine,
  type ServerMessage,
} from "../protocol/messages.ts";

/** Whether a private line went: to its member, or why not. */
export type TellOutcome = "sent" | "no-such-member" | "unsupported";

/** Someone in the room: a connected client or the server's operator. */
export interface Member {
  /** Unique for the life of the server. */
  readonly id: number;
  /** The name shown to everyone (see displayName). */
  readonly name: string;
  /** The key's fingerprint (the server's own for the operator). */
  readonly fingerprint: string;
  /** What the member's client can do (protocol Feature); the operator can do everything. */
  readonly features: ReadonlySet<string>;
  /**
   * Hands one message to this member, with its encoding (done once per broadcast, not once per
   * member); must not throw (a member that fails removes itself).
   */
  deliver(message: ServerMessage, plaintext: Uint8Array): void;
  /**
   * Hands one chunk of a file to this member (a member with Feature.files has it). Returns a
   * promise when the member cannot take the next one yet: the relay waits on it before reading
   * the sender again, which is the backpressure.
   */
  deliverChunk?(plaintext: Uint8Array): Promise<void> | undefined;
}

/** What the server knows when it names a client (see chooseName). */
export interface NamingFacts {
  /** The server's own display name (taken even when headless). */
  serverName: string;
  /** The labels of the allowlist's other keys. */
  labels: Iterable<string>;
  /** The display names of the members present (the same key's older session already left). */
  present: Iterable<string>;
  /** The key a `~` name was first shown for on this server, if any (see NameBook). */
  boundTo(name: string): string | undefined;
  /** Every `~` name this server has shown, with its key (absent members' names count too). */
  bound?(): Iterable<[name: string, key: string]>;
}

/** The outcome of chooseName: the name to show, or the name the declared one looks like. */
export type NameChoice =
  | { name: string; bind: boolean }
  | { confusableWith: string };

/**
 * The name a client is shown under (docs/PROTOCOL.md section 8).
 *
 * A labelled key is shown under its label; an unlabelled key under its declared name, `~`, and
 * 4 hex digits of its fingerprint. When that is taken (the server's name, a member present, or
 * a `~` name this server once showed for another key), 8 and then all 16 digits are used, so a
 * key never appears under a name that belonged to another key. A declared name that differs
 * from a label, the server's name, a present member's name or a name this server once showed
 * for another key, but could be mistaken for it (`aIice` for `alice`), is not shown at all: the
 * client is refused.
 *
 * @example
 * ```ts
 * import { chooseName } from "./room.ts";
 * const facts = { serverName: "hub", labels: ["alice"], present: [], boundTo: () => undefined };
 * chooseName("chat1…", undefined, "bob", "3f9a12bc0d4e77a1", facts); // { name: "bob~3f9a", bind: true }
 * chooseName("chat1…", undefined, "aIice", "3f9a12bc0d4e77a1", facts); // { confusableWith: "alice" }
 * ```
 */
export function chooseName(
  key: string,
  label: string | undefined,
  declared: string,
  fingerprintHex: string,
  facts: NamingFacts,
): NameChoice {
  const present = new Set(facts.present);
  if (label === undefined) {
    const recorded = [...(facts.bound?.() ?? [])].flatMap(([name, owner]) =>
      owner === key ? [] : [baseOf(name)]
    );
    const known = [facts.serverName, ...facts.labels, ...[...present].map(baseOf), ...recorded];
    const lookalike = known.find((name) => confusable(declared, name));
    if (lookalike !== undefined) return { confusableWith: lookalike };
  }
  const base = label ?? declared;
  const candidates = [
    ...(label === undefined ? [] : [label]),
    ...[4, 8, 16].map((digits) => `${base}~${fingerprintHex.slice(0, digits)}`),
  ];
  const free = (name: string) =>
    name !== facts.serverName && !present.has(name) &&
    (facts.boundTo(name) ?? key) === key;
  // 16 digits are the whole fingerprint: only this key can have them
  const name = candidates.find(free) ?? candidates[candidates.length - 1];
  return { name, bind: name.includes("~") && facts.boundTo(name) === undefined };
}

/** The part of a display name before its `~` (the label or the declared name). */
export function baseOf(name: string): string {
  return name.split("~")[0];
}

/** Members and broadcast. */
export class Room {
  readonly #members = new Map<number, Member>();
  readonly #observe: ((message: ServerMessage) => void) | undefined;
  readonly #historyLines: number;
  /**
   * The kept lines, already encoded as replays: bytes live outside the JS heap, so a busy room
   * does not keep promoting its recent lines into the old generation (a 64 MB flood through a
   * room keeping 50 lines as objects grew the server by ~27 MiB more than without history).
   */
  readonly #history: Uint8Array[] = [];

  /**
   * `observe` hears every message the room broadcasts (a log, or a headless --json server);
   * the last `historyLines` lines said are kept for newcomers (`history`).
   */
  constructor(observe?: (message: ServerMessage) => void, historyLines = 0) {
    this.#observe = observe;
    this.#historyLines = historyLines;
  }

  /**
   * The lines said before now (at most `historyLines`), oldest first, as the plaintexts of
   * `msg` messages marked `replay` with their time.
   */
  history(): Uint8Array[] {
    return [...this.#history];
  }

  /** Everyone present, in order of arrival. */
  get members(): Member[] {
    return [...this.#members.values()];
  }

  /** The names present, in order of arrival. */
  names(): string[] {
    return this.members.map((member) => member.name);
  }

  /** The present member with `id`, if any. */
  member(id: number): Member | undefined {
    return this.#members.get(id);
  }

  /** The present member with `name`, if any. */
  byName(name: string): Member | undefined {
    return this.members.find((member) => member.name === name);
  }

  /** Adds `member` and tells everyone else. Throws RangeError if its name is taken. */
  join(member: Member): void {
    if (this.#members.has(member.id)) throw new RangeError(`member ${member.id} already joined`);
    if (this.byName(member.name)) throw new RangeError(`name "${member.name}" is taken`);
    this.#members.set(member.id, member);
    this.#broadcast(
      {
        type: MessageType.presence,
        event: "join",
        name: member.name,
        fingerprint: member.fingerprint,
      },
      member.id,
    );
  }

  /** Removes the member with `id` (if present) and tells everyone left. */
  leave(id: number, reason: LeaveReason): Member | undefined {
    const member = this.#members.get(id);
    if (!member) return undefined;
    this.#members.delete(id);
    this.#broadcast({ type: MessageType.presence, event: "leave", name: member.name, reason }, id);
    return member;
  }

  /**
   * Delivers a line from the member with `fromId` to every other member, never back to it, and
   * keeps it for the history. `action` is a `/me` line.
   */
  say(fromId: number, text: string, action = false): void {
    const sender = this.#members.get(fromId);
    if (!sender) return;
    const line: RoomLine = {
      type: MessageType.msg,
      from: sender.name,
      text,
      fingerprint: sender.fingerprint,
      ...(action ? { action } : {}),
    };
    if (this.#historyLines > 0) {
      const time = new Date().toISOString();
      this.#history.push(encodeMessage({ ...line, replay: true, time }));
      if (this.#history.length > this.#historyLines) this.#history.shift();
    }
    this.#broadcast(line, fromId);
  }

  /**
   * Delivers a private line from `fromId` to the member named `to` only. Says whether it went:
   * not to someone absent, nor to a client that cannot show private lines (it would drop it).
   */
  tell(fromId: number, to: string, text: string, action = false): TellOutcome {
    const sender = this.#members.get(fromId);
    const target = this.byName(to);
    if (!sender || !target || target.id === fromId) return "no-such-member";
    if (!target.features.has(Feature.private)) return "unsupported";
    const line: PrivateLine = {
      type: MessageType.private,
      from: sender.name,
      to: target.name,
      text,
      fingerprint: sender.fingerprint,
      ...(action ? { action } : {}),
    };
    this.#observe?.(line);
    target.deliver(line, encodeMessage(line));
    return "sent";
  }

  /** Delivers `message` (a notice) to everyone present. */
  announce(message: ServerMessage): void {
    this.#broadcast(message, undefined);
  }

  #broadcast(message: ServerMessage, exceptId: number | undefined): void {
    this.#observe?.(message);
    let plaintext: Uint8Array | undefined;
    for (const member of this.#members.values()) {
      if (member.id !== exceptId) member.deliver(message, plaintext ??= encodeMessage(message));
    }
  }
}
