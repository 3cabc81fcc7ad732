/**
 * The allowlist as a value: which keys may join, and under which label. A server asks it
 * `has(key)` and `labelOf(key)` with the key bytes the handshake gave it, and reads it through
 * an AllowlistReader that parses the file only when its text changed.
 * @module
 */
import { encodePublicKey } from "./key_text.ts";
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
