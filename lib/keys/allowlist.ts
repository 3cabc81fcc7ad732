/**
 * The allowlist as a value: which keys may join, and under which label. A server asks it
 * `has(key)` and `labelOf(key)` with the key bytes the handshake gave it, and reads it through
 * an AllowlistReader that parses the file only when its text changed.
 * @module
 */
import { encodePublicKey, fingerprint, sameKey } from "./key_text.ts";
import { KeystoreError } from "../errors.ts";
import { type AllowEntry, type LineError, parseAllowlist } from "./key_files.ts";
import type { Keystore } from "./keystore.ts";

/** Lowercase hex of a key: the cheap, exact lookup form (no checksum to compute per lookup). */
function hexOf(key: Uint8Array): string {
  let hex = "";
  for (const byte of key) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/**
 * Keys allowed in, with their labels.
 *
 * @example
 * ```ts
 * import { Allowlist } from "./allowlist.ts";
 * const key = new Uint8Array(32).fill(7);
 * const list = Allowlist.from([{ key, label: "alice", line: 1 }]);
 * list.has(key); // true
 * list.labelOf(key); // "alice"
 * list.has(new Uint8Array(32)); // false
 * ```
 */
export class Allowlist {
  readonly #entries: ReadonlyMap<string, AllowEntry>;

  private constructor(entries: ReadonlyMap<string, AllowEntry>) {
    this.#entries = entries;
  }

  /** The allowlist of `entries` (as parsed from the file: keys and labels are unique). */
  static from(entries: readonly AllowEntry[]): Allowlist {
    return new Allowlist(new Map(entries.map((entry) => [hexOf(entry.key), entry])));
  }

  /** An allowlist that lets nobody in. */
  static readonly EMPTY: Allowlist = Allowlist.from([]);

  /** How many keys are allowed. */
  get size(): number {
    return this.#entries.size;
  }

  /** Whether `key` may join. */
  has(key: Uint8Array): boolean {
    return this.#entries.has(hexOf(key));
  }

  /** The label of `key`, if it is allowed and has one. */
  labelOf(key: Uint8Array): string | undefined {
    return this.#entries.get(hexOf(key))?.label;
  }

  /** The labels of every allowed key but `key` (a name must not look like any of them). */
  labelsExcept(key: Uint8Array): string[] {
    const own = hexOf(key);
    return [...this.#entries].flatMap(([hex, entry]) =>
      hex !== own && entry.label !== undefined ? [entry.label] : []
    );
  }

  /** The allowed keys as `chat1…` text (for logs and tests). */
  keys(): string[] {
    return [...this.#entries.values()].map((entry) => encodePublicKey(entry.key));
  }
}

/**
 * Reads a keys folder's allowlist afresh on every `read()`, but parses it only when its text
 * changed: a server asks for every handshake and every second, and parsing 1,000 keys costs
 * about 70 ms. Bad lines are reported once per change of the file, and left out.
 */
export class AllowlistReader {
  readonly #keystore: Keystore;
  readonly #onBadLines: (path: string, errors: LineError[]) => void;
  #cached: { text: string; allowlist: Allowlist } | undefined;

  constructor(keystore: Keystore, onBadLines: (path: string, errors: LineError[]) => void) {
    this.#keystore = keystore;
    this.#onBadLines = onBadLines;
  }

  /** The allowlist as the file says now. Throws KeystoreError if the file cannot be read. */
  async read(): Promise<Allowlist> {
    const text = await this.#keystore.readAllowlistText();
    if (this.#cached?.text === text) return this.#cached.allowlist;
    const parsed = parseAllowlist(text);
    if (parsed.errors.length) this.#onBadLines(this.#keystore.paths.allowed, parsed.errors);
    const allowlist = Allowlist.from(parsed.entries);
    this.#cached = { text, allowlist };
    return allowlist;
  }
}

/** A request to allow one key; `line` is where it came from (stdin), for error messages. */
export interface AllowRequest {
  /** The 32-byte public key. */
  key: Uint8Array;
  /** Optional label (already validated). */
  label?: string;
  /** 1-based line number in the input it came from. */
  line?: number;
}

/** What `Keystore.allow` did with one request. */
export interface AllowOutcome {
  /** The request. */
  request: AllowRequest;
  /** True if a line was added; false if the key was already allowed. */
  added: boolean;
  /** The entry the key already had (when `added` is false). */
  existing?: AllowEntry;
  /** Set when the key was allowed already and its label is changed to the request's. */
  relabeled?: { from?: string; to: string };
}

/** A request whose label another key has (`holder`: in the file, or added before it). */
export interface AllowConflict {
  request: AllowRequest;
  holder: AllowEntry;
}

/** What allowing `requests` in turn comes to, decided before anything is written. */
export interface AllowPlan {
  /** One per request that does not conflict, in order. */
  outcomes: AllowOutcome[];
  /** The entries to add (`line` 0: they have none yet). */
  added: AllowEntry[];
  /** Entries of the file whose label changes: the entry and its new label. */
  relabeled: { entry: AllowEntry; label: string }[];
  /** The requests whose label is taken; if any, nothing may be added. */
  conflicts: AllowConflict[];
}

/**
 * Plans adding `requests` to an allowlist of `entries`: a key already there (or earlier in
 * `requests`) is left alone unless the request gives it another label (then it is relabelled),
 * and a label another key has is a conflict.
 *
 * @example
 * ```ts
 * import { planAllow } from "./allowlist.ts";
 * const alice = { key: new Uint8Array(32).fill(1), label: "alice", line: 1 };
 * const plan = planAllow([alice], [{ key: new Uint8Array(32).fill(2), label: "alice" }]);
 * plan.conflicts.length; // 1
 * ```
 */
export function planAllow(
  entries: readonly AllowEntry[],
  requests: readonly AllowRequest[],
): AllowPlan {
  const plan: AllowPlan = { outcomes: [], added: [], conflicts: [], relabeled: [] };
  const labelOf = (entry: AllowEntry) =>
    plan.relabeled.find((r) => r.entry === entry)?.label ?? entry.label;
  for (const request of requests) {
    const known = [...entries, ...plan.added];
    const existing = known.find((entry) => sameKey(entry.key, request.key));
    const holder = request.label === undefined
      ? undefined
      : known.find((entry) => labelOf(entry) === request.label && entry !== existing);
    if (existing && (request.label === undefined || request.label === labelOf(existing))) {
      plan.outcomes.push({ request, added: false, existing });
      continue;
    }
    if (holder) {
      plan.conflicts.push({ request, holder });
      continue;
    }
    if (
      existing && entries.includes(existing) && !plan.relabeled.some((r) => r.entry === existing)
    ) {
      const to = request.label!;
      plan.relabeled.push({ entry: existing, label: to });
      plan.outcomes.push({
        request,
        added: false,
        existing,
        relabeled: { from: existing.label, to },
      });
      continue;
    }
    if (existing) {
      // the same key twice in one request list, with different labels: the first stands
      plan.outcomes.push({ request, added: false, existing });
      continue;
    }
    plan.added.push({ key: request.key, label: request.label, line: 0 });
    plan.outcomes.push({ request, added: true });
  }
  return plan;
}

/**
 * The `CONFLICT` error of `Keystore.allow`: every request whose label another key has, with
 * the line of `path` that has it; for a single request, its label.
 */
export function conflictError(
  path: string,
  entries: readonly AllowEntry[],
  requestCount: number,
  conflicts: readonly AllowConflict[],
  source: string | undefined,
): KeystoreError {
  const problems = conflicts.map(({ request, holder }) => ({
    line: request.line ?? 0,
    message: `the label "${request.label}" is already used by ${fingerprint(holder.key)}` +
      (entries.includes(holder) ? ` (line ${holder.line} of ${path})` : ""),
  }));
  if (requestCount === 1) {
    return new KeystoreError("CONFLICT", problems[0].message, {
      path,
      label: conflicts[0].request.label,
    });
  }
  return new KeystoreError(
    "CONFLICT",
    `${problems.length} of the keys conflict with ${path}; nothing was added`,
    { path, problems, source },
  );
}
