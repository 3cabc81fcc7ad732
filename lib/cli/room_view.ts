/**
 * What a client shows of the room: lines, private lines, `/me` actions and replays, on the
 * terminal or as JSON events; the members a person chose to ignore (by key, not by name); and
 * the bell for a private line or a mention of one's name.
 * @module
 */
import type { ChatHandlers, LineDetails } from "../chat/client.ts";
import { clip } from "../chat/untrusted.ts";
import { formatJsonEvent, type JsonEvent, presenceEvent } from "./json_events.ts";
import { printData } from "./output.ts";
import type { Terminal } from "./terminal.ts";

/** When the bell rings: never, on a private line or a mention of one's name, or on every line. */
export type BellMode = "off" | "mention" | "all";

/** The client's view of the room, for one run of `chat connect` (across reconnections). */
export class RoomView {
  readonly #terminal: Terminal;
  readonly #json: boolean;
  readonly #bell: BellMode;
  /** The fingerprint last seen for each name (joins and lines carry it). */
  readonly #keys = new Map<string, string>();
  /** Fingerprints whose lines are not shown. */
  readonly #ignored = new Set<string>();
  /** Our own display name in the room (the server chooses it; it may change on reconnect). */
  ownName = "";

  constructor(terminal: Terminal, options: { json: boolean; bell: BellMode }) {
    this.#terminal = terminal;
    this.#json = options.json;
    this.#bell = options.bell;
  }

  /** Stops showing the lines of `name`'s key (for this run). Says what happened. */
  ignore(name: string): string {
    const key = this.#keys.get(name);
    if (!key) return `no join or line of ${name} seen yet: nothing to ignore`;
    this.#ignored.add(key);
    return `ignoring ${name} (key ${key}) until you leave; /unignore ${name} to undo`;
  }

  /** Shows `name`'s lines again. */
  unignore(name: string): string {
    const key = this.#keys.get(name);
    if (!key || !this.#ignored.delete(key)) return `${name} was not ignored`;
    return `showing ${name} again`;
  }

  /** The handlers a ClientChat reports to. */
  handlers(): ChatHandlers {
    return {
      message: (from, text, details = {}) => this.#line(from, text, details, false),
      private: (from, text, details = {}) => this.#line(from, text, details, true),
      presence: (event, who, detail) => {
        if (event === "join") this.#keys.set(who, detail);
        if (this.#json) return this.#emit(presenceEvent(event, who, detail));
        this.#terminal.info(presenceText(event, who, detail));
      },
      who: (members) =>
        this.#terminal.info(members.length ? `here: ${members.join(", ")}` : "nobody else is here"),
      notice: (code, message) =>
        this.#json
          ? this.#emit({ event: "notice", code, message })
          : this.#terminal.info(`server: ${clip(message)}`),
    };
  }

  #line(from: string, text: string, details: LineDetails, isPrivate: boolean): void {
    if (details.fingerprint) {
      this.#keys.set(from, details.fingerprint);
      if (this.#ignored.has(details.fingerprint)) return;
    }
    const at = details.time ? new Date(details.time) : new Date();
    if (this.#json) {
      const extras = { ...(details.action ? { action: true as const } : {}) };
      return this.#emit(
        isPrivate
          ? { event: "private", from, to: this.ownName, text, ...extras }
          : { event: "line", from, text, ...extras, ...(details.replay ? { replay: true } : {}) },
        at,
      );
    }
    const mention = !details.replay && this.#mentions(text);
    const alert = !details.replay &&
      (this.#bell === "all" || (this.#bell === "mention" && (isPrivate || mention)));
    this.#terminal.message(from, text, {
      at,
      action: details.action,
      private: isPrivate,
      replay: details.replay,
      highlight: isPrivate || mention,
      bell: alert,
    });
  }

  /** Whether `text` names us as a word (case-insensitive). */
  #mentions(text: string): boolean {
    const base = this.ownName.split("~")[0];
    if (!base) return false;
    const escaped = base.replace(/[.\\-]/g, (c) => `\\${c}`);
    return new RegExp(`(^|[^A-Za-z0-9_])${escaped}($|[^A-Za-z0-9_])`, "i").test(text);
  }

  #emit(event: JsonEvent, at = new Date()): void {
    printData(formatJsonEvent(event, at));
  }
}

/** A join or a leave, worded for the terminal. */
export function presenceText(event: string, who: string, detail: string): string {
  return event === "join" ? `${who} joined (${detail})` : `${who} left (${detail})`;
}

/** Who else is in the room a session joined, in words. */
export function here(session: { members: readonly string[] }): string {
  return session.members.length ? `here: ${session.members.join(", ")}` : "nobody else is here";
}
