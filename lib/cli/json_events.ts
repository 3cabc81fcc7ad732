/**
 * The one JSON event schema of `--json` output (`connect --json`, `serve --json`): one object
 * per line on stdout, `{"v":1,"time":"…","event":"…",…}`. Version 1's events and fields are in
 * the README's table; a field may be added in a later minor change, an event's meaning never
 * changes without a new `v`. Text from the network is escaped (safeJson): exact for a program,
 * inert for a terminal.
 * @module
 */
import { safeJson } from "../chat/untrusted.ts";
import type { ServerEvent } from "../chat/events.ts";

/** The schema's version, in every event. */
export const JSON_EVENTS_VERSION = 1;

/** Every event of version 1, with its fields. */
export type JsonEvent =
  | { event: "line"; from: string; text: string; action?: true; replay?: true }
  | { event: "private"; from: string; to: string; text: string; action?: true }
  | { event: "join"; name: string; fingerprint: string; remote?: string }
  | { event: "leave"; name: string; reason: string; detail?: string }
  | { event: "notice"; code: string; message: string }
  | { event: "file-offer"; id: string; from: string; name: string; size: number; sha256: string }
  | {
    event: "file-progress";
    id: string;
    direction: "in" | "out";
    peer: string;
    name: string;
    bytes: number;
    size: number;
  }
  | {
    event: "file-received";
    id: string;
    from: string;
    name: string;
    path: string;
    bytes: number;
    resumed_at: number;
  }
  | { event: "file-sent"; id: string; to: string; name: string; bytes: number; resumed_at: number }
  | {
    event: "file-ended";
    id: string;
    direction: "in" | "out";
    peer: string;
    name: string;
    code: string;
    message: string;
    by: "us" | "peer";
  }
  | {
    event: "refused";
    reason: string;
    declared: string;
    key: string;
    fingerprint: string;
    remote: string;
  };

/** One event as its line of JSON (without the line break). */
export function formatJsonEvent(event: JsonEvent, at = new Date()): string {
  return safeJson({ v: JSON_EVENTS_VERSION, time: at.toISOString(), ...event });
}

/** The JSON event of a client's presence report (`ChatHandlers.presence`). */
export function presenceEvent(event: string, name: string, detail: string): JsonEvent {
  return event === "join"
    ? { event: "join", name, fingerprint: detail }
    : { event: "leave", name, reason: detail };
}

/** The JSON event of a server event that belongs to the room's story, if it does. */
export function roomEventOf(event: ServerEvent): JsonEvent | undefined {
  switch (event.kind) {
    case "joined":
      return {
        event: "join",
        name: event.name,
        fingerprint: event.fingerprint,
        remote: event.remote,
      };
    case "left":
      return { event: "leave", name: event.name, reason: event.reason, detail: event.detail };
    case "refused":
      return {
        event: "refused",
        reason: event.reason,
        declared: event.declared,
        key: event.key,
        fingerprint: event.fingerprint,
        remote: event.remote,
      };
    default:
      return undefined; // diagnostics (failed handshakes, resets) stay in the log on stderr
  }
}
