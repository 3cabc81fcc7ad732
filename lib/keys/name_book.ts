/**
 * The names a server has shown, and the key each was shown for: once `alice~d1d3` has been one
 * key's name on this server, no other key is ever shown under it, even after a restart and
 * even when someone grinds a key whose fingerprint starts with the same digits.
 *
 * Kept in the keys folder as `names` (`NAME chat1…` lines), written atomically under the keys
 * folder's lock like the allowlist. Labels are not recorded: they are the operator's binding.
 * @module
 */
import { encodePublicKey, parsePublicKey } from "./key_text.ts";
import { splitLines } from "./key_files.ts";
import type { Keystore } from "./keystore.ts";

const HEADER = "# chat: display names this server has shown, and the key each belongs to";

/** Where bindings of shown names to keys are kept. */
export interface NameBook {
  /** The key (chat1… text) `name` was first shown for, if it ever was. */
  keyOf(name: string): string | undefined;
  /** Records that `name` is shown for `key` (a name already bound is never rebound). */
  bind(name: string, key: string): Promise<void>;
  /** Every binding: name and key. */
  entries(): Iterable<[name: string, key: string]>;
}

/** A NameBook in memory only (a server without a keys folder, and tests). */
export class MemoryNameBook implements NameBook {
  readonly #bindings: Map<string, string>;

  /** A book holding `bindings` (the map itself: the owner may keep changing it). */
  constructor(bindings: Map<string, string> = new Map()) {
    this.#bindings = bindings;
  }

  keyOf(name: string): string | undefined {
    return this.#bindings.get(name);
  }

  bind(name: string, key: string): Promise<void> {
    if (!this.#bindings.has(name)) this.#bindings.set(name, key);
    return Promise.resolve();
  }

  entries(): Iterable<[string, string]> {
    return this.#bindings.entries();
  }
}

/** Parses the names file; returns the bindings and the numbers of lines it could not read. */
export function parseNames(text: string): { bindings: Map<string, string>; bad: number[] } {
  const bindings = new Map<string, string>();
  const bad: number[] = [];
  splitLines(text).forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const [name, keyText, extra] = line.split(/\s+/);
    try {
      if (!name || !keyText || extra !== undefined) throw new SyntaxError("not NAME KEY");
      const key = encodePublicKey(parsePublicKey(keyText));
      if (!bindings.has(name)) bindings.set(name, key); // the first binding wins
    } catch {
      bad.push(index + 1);
    }
  });
  return { bindings, bad };
}

/** The NameBook of a keys folder (its `names` file). */
export class FileNameBook extends MemoryNameBook {
  readonly #keystore: Keystore;
  readonly #bindings: Map<string, string>;

  private constructor(keystore: Keystore, bindings: Map<string, string>) {
    super(bindings);
    this.#keystore = keystore;
    this.#bindings = bindings;
  }

  /** Loads the bindings of `keystore`'s folder; `warn` hears of lines it had to skip. */
  static async open(keystore: Keystore, warn: (line: string) => void): Promise<FileNameBook> {
    const { bindings, bad } = parseNames(await keystore.readNamesText());
    const book = new FileNameBook(keystore, bindings);
    if (bad.length) {
      warn(`${keystore.paths.names}: skipped unreadable line(s) ${bad.join(", ")}`);
    }
    return book;
  }

  /** Binds in memory at once, then adds the line to the file under the lock. */
  override async bind(name: string, key: string): Promise<void> {
    if (this.#bindings.has(name)) return;
    this.#bindings.set(name, key);
    await this.#keystore.updateNames((text) => {
      // another server process on this folder may have bound it meanwhile: its binding stands
      const first = parseNames(text).bindings.get(name);
      if (first !== undefined) return void this.#bindings.set(name, first);
      const lines = text === "" ? [HEADER] : [text.replace(/\n$/, "")];
      lines.push(`${name} ${key}`);
      return lines.join("\n") + "\n";
    });
  }
}
