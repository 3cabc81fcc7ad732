/**
 * The room: who is present, under which name, and who receives each line.
 *
 * Pure logic: members bring their own `deliver` function (a channel send, or the operator's
 * terminal), so tests can run a room with plain arrays. Delivery is synchronous enqueueing, so
 * the order in which a sender's lines are said is the order every receiver gets them.
 * @module
 */
import { encodeMessage, type Message } from "./channel.ts";

/** Someone in the room: a connected client or the server's operator. */
export interface Member {
  /** Unique for the life of the server. */
  readonly id: number;
  /** The name shown to everyone (see displayName). */
  readonly name: string;
  /** The key's fingerprint, or "" for the operator. */
  readonly fingerprint: string;
  /**
   * Hands one message to this member, with its encoding (done once per broadcast, not once per
   * member); must not throw (a member that fails removes itself).
   */
  deliver(message: Message, plaintext: Uint8Array): void;
}

/** Why someone left, as carried in presence messages. */
export type LeaveReason = "left" | "lost" | "revoked" | "replaced" | "dropped";

/**
 * The name a client is shown under: its allowlist label where it has one, otherwise its declared
 * name followed by `~` and the first 4 hex digits of its fingerprint. `~` cannot occur in a label
 * or declared name, so an unlabelled key can never show up under a name bound to another key.
 */
export function displayName(label: string | undefined, declared: string, fingerprint: string) {
  return label ?? `${declared}~${fingerprint.slice(0, 4)}`;
}

/**
 * `name`, or if `isTaken` says it is in use (the server's own name, a label equal to it, or two
 * unlabelled keys whose declared names and first 4 hex digits agree), `name~` plus 4 and then
 * all 16 hex digits of the fingerprint: different keys end up with different names.
 */
export function uniqueName(
  name: string,
  fingerprint: string,
  isTaken: (name: string) => boolean,
): string {
  if (!isTaken(name)) return name;
  const base = name.split("~")[0];
  const short = `${base}~${fingerprint.slice(0, 4)}`;
  return short !== name && !isTaken(short) ? short : `${base}~${fingerprint.replaceAll(":", "")}`;
}

/** Members and broadcast. */
export class Room {
  readonly #members = new Map<number, Member>();

  /** Everyone present, in order of arrival. */
  get members(): Member[] {
    return [...this.#members.values()];
  }

  /** The names present, in order of arrival. */
  names(): string[] {
    return this.members.map((member) => member.name);
  }

  /** The member with `id`, if present. */
  get(id: number): Member | undefined {
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
      { type: "presence", event: "join", name: member.name, fingerprint: member.fingerprint },
      member.id,
    );
  }

  /** Removes the member with `id` (if present) and tells everyone left. */
  leave(id: number, reason: LeaveReason): Member | undefined {
    const member = this.#members.get(id);
    if (!member) return undefined;
    this.#members.delete(id);
    this.#broadcast({ type: "presence", event: "leave", name: member.name, reason }, id);
    return member;
  }

  /** Delivers a line from the member with `fromId` to every other member, never back to it. */
  say(fromId: number, text: string): void {
    const sender = this.#members.get(fromId);
    if (!sender) return;
    this.#broadcast({ type: "msg", from: sender.name, text }, fromId);
  }

  /** Delivers `message` to everyone present. */
  announce(message: Message): void {
    this.#broadcast(message, undefined);
  }

  #broadcast(message: Message, exceptId: number | undefined): void {
    let plaintext: Uint8Array | undefined;
    for (const member of this.#members.values()) {
      if (member.id !== exceptId) member.deliver(message, plaintext ??= encodeMessage(message));
    }
  }
}
