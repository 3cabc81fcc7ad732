/**
 * What a server reports, as facts: each event says what happened, with the values a person or
 * a script needs, and no wording. The command line words them for the operator's log
 * (lib/cli/server_log.ts); values a peer chose (`declared`, `reason` of a failure) are
 * untrusted text and are neutralised where they are shown.
 * @module
 */
import type { LeaveReason } from "../protocol/messages.ts";

/** Why a client was refused, as the server saw it. */
export type RefusalReason =
  | "not-allowed" // its key is not on the allowlist
  | "revoked-at-join" // its key left the allowlist between its handshake and its join
  | "room-full"
  | "no-data-port"
  | "name-confusable" // its declared name could be mistaken for a label or a member
  | "bad-invite"; // not allowed, and its invite secret is unknown, used up or expired

/** One thing that happened on a server. */
export type ServerEvent =
  | { kind: "joined"; name: string; fingerprint: string; remote: string }
  | { kind: "left"; name: string; reason: LeaveReason; detail?: string }
  | {
    kind: "refused";
    reason: RefusalReason;
    /** The name the client declared (its own word, never a label). */
    declared: string;
    key: string;
    fingerprint: string;
    remote: string;
    /**
     * For `name-confusable`: the name it looks like; for `room-full`: the limit; for
     * `bad-invite`: `unknown` or `expired`.
     */
    detail?: string;
  }
  /** A key was let in by an invite and added to the allowlist under `label`. */
  | {
    kind: "invite-redeemed";
    label: string;
    /** The invite's id, if one was used (none when the key was allowed meanwhile). */
    id?: string;
    key: string;
    fingerprint: string;
    remote: string;
  }
  | { kind: "handshake-failed"; remote: string; reason: string }
  | { kind: "session-failed"; remote: string; reason: string }
  | { kind: "data-port-rejected"; port: number; remote: string; reason: string }
  | { kind: "rate-limited"; address: string; perSecond: number }
  | { kind: "shed"; who: string; why: string }
  | { kind: "accept-failed"; code: string; count: number }
  | { kind: "listener-failed"; reason: string }
  | { kind: "allowlist-unreadable"; reason: string }
  | { kind: "name-not-recorded"; name: string; reason: string }
  | { kind: "internal-error"; reason: string }
  /** A file transfer was offered, accepted, or ended (`what`: the file-end code). */
  | { kind: "transfer"; id: string; from: string; to: string; what: string; size: number }
  /** Events of `of` that were not reported one by one (the log limit, log_limit.ts). */
  | { kind: "suppressed"; of: string; count: number; seconds: number };
