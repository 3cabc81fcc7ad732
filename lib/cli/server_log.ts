/**
 * The operator's log: each server event (lib/chat/events.ts) worded as one line, with the
 * command to paste where there is one. Values a peer chose are neutralised by the writer.
 * @module
 */
import type { ServerEvent } from "../chat/events.ts";

/** How to word the commands a log line offers. */
export interface LogWording {
  /** The command that allows `key` (with the `--keys DIR` the server runs with, if any). */
  allowCommand(key: string): string;
}

/** Commands for a server on the default keys folder. */
export const DEFAULT_WORDING: LogWording = {
  allowCommand: (key) => `chat allow ${key} --name NAME`,
};

/** One log line for `event`. */
export function describeEvent(event: ServerEvent, wording = DEFAULT_WORDING): string {
  switch (event.kind) {
    case "joined":
      return `${event.name} (${event.fingerprint}) joined from ${event.remote}`;
    case "left":
      return `${event.name} left (${event.reason}${event.detail ? `: ${event.detail}` : ""})`;
    case "refused":
      return describeRefusal(event, wording);
    case "invite-redeemed":
      return `${event.fingerprint} from ${event.remote} ` +
        (event.id === undefined
          ? `presented an invite but was allowed already (as ${event.label})`
          : `redeemed invite ${event.id}: allowed as ${event.label}`);
    case "handshake-failed":
      return `handshake from ${event.remote} failed: ${event.reason}`;
    case "session-failed":
      return `session from ${event.remote} failed: ${event.reason}`;
    case "data-port-rejected":
      return `data port ${event.port}: closed ${event.remote}: ${event.reason}`;
    case "rate-limited":
      return `closed a connection from ${event.address}: over ${event.perSecond} new ` +
        "connections per second while busy";
    case "shed":
      return `ended the waiting session of ${event.who}: ${event.why}`;
    case "accept-failed":
      return `accept failed ${event.count} time(s) (latest: ${event.code}); still listening`;
    case "listener-failed":
      return `the control port stopped accepting: ${event.reason}`;
    case "allowlist-unreadable":
      return `cannot re-read the allowlist: ${event.reason}`;
    case "name-not-recorded":
      return `cannot record the name ${event.name}: ${event.reason}`;
    case "internal-error":
      return `internal error: ${event.reason}`;
    case "transfer":
      return `file ${event.id} (${event.size} bytes) from ${event.from} to ${event.to}: ${event.what}`;
    case "suppressed":
      return `… and ${event.count.toLocaleString("en-US")} more "${event.of}" line` +
        `${event.count === 1 ? "" : "s"} in the last ${event.seconds} s`;
  }
}

function describeRefusal(
  event: Extract<ServerEvent, { kind: "refused" }>,
  wording: LogWording,
): string {
  const who = `${event.declared} (${event.fingerprint}) from ${event.remote}`;
  switch (event.reason) {
    case "not-allowed":
      // the declared name is the stranger's own word: the label is the operator's to choose
      return `refused ${who}: key not on the allowlist; if its owner confirms fingerprint ` +
        `${event.fingerprint}, let it in with: ${wording.allowCommand(event.key)}`;
    case "revoked-at-join":
      return `refused ${who} at its join: the key was revoked`;
    case "room-full":
      return `refused ${who}: the room is full (${event.detail})`;
    case "no-data-port":
      return `refused ${who}: no data port is free`;
    case "name-confusable":
      return `refused ${who}: the name looks like "${event.detail}"`;
    case "bad-invite":
      return `refused ${who}: key not on the allowlist, and its invite is ` +
        (event.detail === "expired" ? "expired" : "unknown or used up");
  }
}
