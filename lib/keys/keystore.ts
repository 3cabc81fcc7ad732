/**
 * The keys folder: the identity (secret key file, mode 0600, and its public key), the allowlist
 * and the pinned server keys. Every write goes to a temporary file that is renamed over the old
 * one, and every read-modify-write holds an exclusive lock on `.lock`, so a crash or twenty
 * concurrent runs never lose or half-write a line. Like OpenSSH's StrictModes, nothing in a folder
 * or file that another user owns or can write is trusted, and a symbolic link where a file belongs
 * is refused: whoever could change them could put their key in `allowed`. Never prints; throws
 * `KeystoreError`.
 * @module
 */
import { join } from "node:path";
import { type KeyPair, primitives } from "../protocol/crypto.ts";
import { KeystoreError } from "../errors.ts";
import {
  checkBytes,
  encodePublicKey,
  fingerprint,
  formatIdentity,
  parseIdentity,
  parsePublicKey,
  sameKey,
} from "./key_text.ts";
import {
  type AllowEntry,
  formatAllowLine,
  type KnownServer,
  type LineError,
  normalizeAddress,
  parseAllowlist,
  type ParsedFile,
  parseKnownServers,
  pinLines,
  splitLines,
} from "./key_files.ts";
import { type AllowOutcome, type AllowRequest, conflictError, planAllow } from "./allowlist.ts";
import {
  findInvite,
  formatInviteLine,
  type FoundInvite,
  freeLabel,
  type InviteEntry,
  type InviteRedemption,
  newInviteId,
  parseInvites,
  useInviteLines,
} from "./invites.ts";
import {
  checkKeysFolder,
  fsError,
  lstatOrUndefined,
  openLock,
  readForUpdate,
  readKeyFile,
  removeIfPresent,
  writeFileAtomic,
} from "./fs.ts";

/** File names inside the keys folder. */
export const KEY_FILES = {
  /** The secret key (mode 0600). */
  identity: "identity",
  /** The public key, one `chat1…` line. */
  publicKey: "identity.pub",
  /** The allowlist, `KEY [LABEL]` lines. */
  allowed: "allowed",
  /** Pinned server keys, `host:port KEY` lines. */
  knownServers: "known_servers",
  /** On a server: the `name~hex` display names it has shown, `NAME KEY` lines (name_book.ts). */
  names: "names",
  /** On a server: pending invites, `ID SHA256 EXPIRES USES [LABEL]` lines (invites.ts). */
  invites: "invites",
  /** Empty file locked (flock) around every read-modify-write. */
  lock: ".lock",
} as const;

/** Mode of the keys folder when we create it. */
export const FOLDER_MODE = 0o700;
/** Mode of the secret key file. */
export const SECRET_FILE_MODE = 0o600;
/** Mode of new public files (public key, allowlist, known servers), less the umask. */
export const PUBLIC_FILE_MODE = 0o644;

/** The identity created by `createIdentity`. */
export interface CreatedIdentity {
  /** The new key pair. */
  pair: KeyPair;
  /** Whether the keys folder had to be created. */
  createdFolder: boolean;
  /** Whether an old identity was replaced (`force`). */
  replaced: boolean;
}

/** The keys folder of one user: identity, allowlist and known servers. */
export class Keystore {
  /** The folder, as given. */
  readonly dir: string;
  /** Full paths of the files in the folder. */
  readonly paths: { readonly [name in keyof typeof KEY_FILES]: string };

  /** A keystore for `dir`; nothing is read until a method is called. */
  constructor(dir: string) {
    this.dir = dir;
    this.paths = {
      identity: join(dir, KEY_FILES.identity),
      publicKey: join(dir, KEY_FILES.publicKey),
      allowed: join(dir, KEY_FILES.allowed),
      knownServers: join(dir, KEY_FILES.knownServers),
      names: join(dir, KEY_FILES.names),
      invites: join(dir, KEY_FILES.invites),
      lock: join(dir, KEY_FILES.lock),
    };
  }

  // --- Folder and lock ---------------------------------------------------------

  /**
   * Throws `NO_FOLDER`, `NOT_A_FOLDER` or `IO` unless the keys folder exists, and `UNSAFE` if
   * another user owns it or group or others can write it (the folder may be a link to a folder).
   */
  async checkFolder(): Promise<void> {
    await checkKeysFolder(this.dir);
  }

  /** Creates the keys folder with mode 0700 unless it exists; returns whether it created it. */
  async ensureFolder(): Promise<boolean> {
    try {
      await this.checkFolder();
      return false;
    } catch (error) {
      if (!(error instanceof KeystoreError) || error.code !== "NO_FOLDER") throw error;
    }
    try {
      // the umask can only take bits away from 0700; no chmod by path afterwards
      await Deno.mkdir(this.dir, { recursive: true, mode: FOLDER_MODE });
    } catch (error) {
      throw fsError(error, "create the keys folder", this.dir);
    }
    return true;
  }

  /**
   * Runs `fn` holding an exclusive lock (flock) on the folder's `.lock` file. The kernel drops
   * the lock if the process dies, so a crash never leaves the folder locked. A `.lock` that is a
   * link, another user's, or writable by others is refused (`UNSAFE`): opening it must not
   * create or touch a file outside the folder.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    await this.checkFolder();
    const file = await openLock(this.paths.lock);
    try {
      await file.lock(true);
      return await fn();
    } finally {
      file.close(); // closing releases the lock
    }
  }

  // --- Identity ------------------------------------------------------------------

  /** Whether the secret key file exists (whatever its content). */
  async hasIdentity(): Promise<boolean> {
    return (await lstatOrUndefined(this.paths.identity, "check")) !== undefined;
  }

  /**
   * Loads the identity. Refuses a secret key file that group or others can access
   * (`INSECURE_MODE`), a link or another user's file (`UNSAFE`), and checks that `identity.pub`, if
   * present, holds the matching key.
   */
  async loadIdentity(): Promise<KeyPair> {
    await this.checkFolder();
    const path = this.paths.identity;
    const read = await readKeyFile(path, { secret: true });
    if (!read) {
      throw new KeystoreError("NO_IDENTITY", `there is no identity in ${this.dir}`, { path });
    }
    let pair: KeyPair;
    try {
      pair = parseIdentity(read.text);
    } catch (error) {
      if (!(error instanceof SyntaxError)) throw error;
      throw new KeystoreError(
        "BAD_IDENTITY",
        `${path} is not a chat secret key file: ${error.message}`,
        { path, cause: error },
      );
    }
    await this.#checkPublicFile(pair.publicKey);
    return pair;
  }

  /** Throws `BAD_IDENTITY` unless identity.pub is missing or holds `publicKey`. */
  async #checkPublicFile(publicKey: Uint8Array): Promise<void> {
    const path = this.paths.publicKey;
    const read = await readKeyFile(path);
    if (!read) return;
    const text = read.text;
    const line = splitLines(text).map((l) => l.trim()).find((l) => l !== "" && !l.startsWith("#"));
    let stored: Uint8Array | undefined;
    try {
      stored = line === undefined ? undefined : parsePublicKey(line);
    } catch {
      stored = undefined;
    }
    if (stored && sameKey(stored, publicKey)) return;
    throw new KeystoreError(
      "BAD_IDENTITY",
      stored
        ? `${path} holds ${fingerprint(stored)}, but ${this.paths.identity} is the secret key ` +
          `of ${fingerprint(publicKey)}`
        : `${path} does not hold a public key`,
      { path, publicKey },
    );
  }

  /**
   * Creates a new identity: the secret key file (0600) and `identity.pub`, both written
   * atomically, under the lock. Creates the folder (0700) if needed. Throws `IDENTITY_EXISTS`
   * unless `force`.
   */
  async createIdentity(options: { force?: boolean } = {}): Promise<CreatedIdentity> {
    const createdFolder = await this.ensureFolder();
    return await this.withLock(async () => {
      const replaced = await this.hasIdentity();
      if (replaced && !options.force) {
        throw new KeystoreError("IDENTITY_EXISTS", `${this.paths.identity} already exists`, {
          path: this.paths.identity,
        });
      }
      const pair = primitives.generateKeyPair();
      // A crash between the two writes must not leave a public key file that lies about the
      // new secret key: drop the old one first (a missing identity.pub is fine).
      if (replaced) await removeIfPresent(this.paths.publicKey);
      await writeFileAtomic(this.paths.identity, formatIdentity(pair), SECRET_FILE_MODE);
      await writeFileAtomic(
        this.paths.publicKey,
        encodePublicKey(pair.publicKey) + "\n",
        PUBLIC_FILE_MODE,
      );
      return { pair, createdFolder, replaced };
    });
  }

  // --- Allowlist -----------------------------------------------------------------

  /** Reads the allowlist; a missing file is an empty list (the folder must exist). */
  async readAllowlist(): Promise<ParsedFile<AllowEntry>> {
    await this.checkFolder();
    return parseAllowlist(await this.readAllowlistText());
  }

  /** The allowlist file's text ("" when there is none), for callers that cache the parse. */
  async readAllowlistText(): Promise<string> {
    await this.checkFolder();
    return (await readKeyFile(this.paths.allowed))?.text ?? "";
  }

  // --- Names shown ---------------------------------------------------------------

  /** The text of `names` ("" when there is none), checked like every file of the folder. */
  async readNamesText(): Promise<string> {
    await this.checkFolder();
    return (await readKeyFile(this.paths.names))?.text ?? "";
  }

  /**
   * Rewrites `names` atomically under the lock: `update` gets its current text and returns the
   * new text, or undefined to leave the file as it is.
   */
  async updateNames(update: (text: string) => string | undefined): Promise<void> {
    await this.withLock(async () => {
      const { text, mode } = await readForUpdate(this.paths.names);
      const next = update(text);
      if (next !== undefined) {
        await writeFileAtomic(this.paths.names, next, mode ?? PUBLIC_FILE_MODE);
      }
    });
  }

  /**
   * Adds keys to the allowlist under the lock. A key already there is left alone (`added:
   * false`). Nothing is written if the file has bad lines (`BAD_FILE`) or a label is taken by
   * another key (`CONFLICT`, with every conflicting request in `problems`; `options.source`
   * names the input the request line numbers refer to, such as "stdin").
   */
  async allow(
    requests: AllowRequest[],
    options: { source?: string } = {},
  ): Promise<AllowOutcome[]> {
    for (const request of requests) checkBytes("key to allow", request.key);
    const path = this.paths.allowed;
    return await this.#editLines(path, parseAllowlist, (list) => {
      const plan = planAllow(list.entries, requests);
      if (plan.conflicts.length > 0) {
        throw conflictError(path, list.entries, requests.length, plan.conflicts, options.source);
      }
      const added = plan.added.map((entry) => formatAllowLine(entry.key, entry.label));
      const lines = [...list.lines];
      for (const { entry, label } of plan.relabeled) {
        lines[entry.line - 1] = formatAllowLine(entry.key, label);
      }
      const changed = added.length > 0 || plan.relabeled.length > 0;
      return { lines: changed ? [...lines, ...added] : undefined, result: plan.outcomes };
    });
  }

  /**
   * Removes one key from the allowlist, found by key bytes or by label, under the lock. Throws
   * `NOT_FOUND` if it is not there and `BAD_FILE` if the file has bad lines. Comments and other
   * lines are kept as they were.
   */
  async revoke(target: Uint8Array | string): Promise<AllowEntry> {
    if (typeof target !== "string") checkBytes("key to revoke", target);
    const path = this.paths.allowed;
    return await this.#editLines(path, parseAllowlist, (list) => {
      const entry = list.entries.find((entry) =>
        typeof target === "string" ? entry.label === target : sameKey(entry.key, target)
      );
      if (!entry) {
        const what = typeof target === "string"
          ? `no key is labelled "${target}"`
          : `the key ${fingerprint(target)} is not allowed`;
        throw new KeystoreError("NOT_FOUND", `${what} in ${path}`, { path });
      }
      return { lines: list.lines.filter((_, index) => index !== entry.line - 1), result: entry };
    });
  }

  /**
   * Edits a line-based file under the lock: reads and parses it, refuses it if it has bad lines
   * (`BAD_FILE`: nothing may be dropped), and writes atomically the lines `edit` returns, in the
   * file's own mode, or nothing if it returns none.
   */
  async #editLines<T, R>(
    path: string,
    parse: (text: string) => ParsedFile<T>,
    edit: (file: ParsedFile<T>) => { lines?: string[]; result: R },
    newMode: number = PUBLIC_FILE_MODE,
  ): Promise<R> {
    return await this.withLock(() => this.#editLocked(path, parse, edit, newMode));
  }

  /** `#editLines` for a caller that holds the lock already (flock is not reentrant). */
  async #editLocked<T, R>(
    path: string,
    parse: (text: string) => ParsedFile<T>,
    edit: (file: ParsedFile<T>) => { lines?: string[]; result: R },
    newMode: number = PUBLIC_FILE_MODE,
  ): Promise<R> {
    const { text, mode } = await readForUpdate(path);
    const file = parse(text);
    this.#refuseBadLines(path, file.errors);
    const { lines, result } = edit(file);
    if (lines) {
      const data = lines.length === 0 ? "" : lines.join("\n") + "\n";
      await writeFileAtomic(path, data, mode ?? newMode);
    }
    return result;
  }

  /** Throws `BAD_FILE`, with every bad line, if there are any: nothing may be dropped. */
  #refuseBadLines(path: string, errors: LineError[]): void {
    if (errors.length === 0) return;
    throw new KeystoreError(
      "BAD_FILE",
      `${path} has ${errors.length} bad line${errors.length === 1 ? "" : "s"}; nothing was changed`,
      { path, problems: errors, source: path },
    );
  }

  // --- Invites -------------------------------------------------------------------

  /** Reads `invites`; a missing file is an empty list (the folder must exist). */
  async readInvites(): Promise<ParsedFile<InviteEntry>> {
    await this.checkFolder();
    return parseInvites((await readKeyFile(this.paths.invites))?.text ?? "");
  }

  /**
   * Adds an invite (the SHA-256 of its secret, never the secret) under the lock; a new file is
   * private (0600). Returns it with its new id.
   */
  async addInvite(invite: Omit<InviteEntry, "id" | "line">): Promise<InviteEntry> {
    checkBytes("invite hash", invite.hash);
    return await this.#editLines(this.paths.invites, parseInvites, (file) => {
      const entry = { ...invite, id: newInviteId(file.entries), line: file.lines.length + 1 };
      return { lines: [...file.lines, formatInviteLine(entry)], result: entry };
    }, SECRET_FILE_MODE);
  }

  /** Withdraws the invite `id` under the lock. Throws `NOT_FOUND` if there is none. */
  async revokeInvite(id: string): Promise<InviteEntry> {
    const path = this.paths.invites;
    return await this.#editLines(path, parseInvites, (file) => {
      const entry = file.entries.find((entry) => entry.id === id);
      if (!entry) {
        throw new KeystoreError(
          "NOT_FOUND",
          `there is no invite ${JSON.stringify(id)} in ${path}`,
          {
            path,
          },
        );
      }
      return { lines: file.lines.filter((_, index) => index !== entry.line - 1), result: entry };
    }, SECRET_FILE_MODE);
  }

  /**
   * Redeems an invite for `key`, all under one lock: finds the invite whose hash is the
   * secret's (constant time), refuses it if there is none (used up or never made) or it has
   * expired at `now`, else uses it up (one use less, the line gone at 0) and then allows `key`
   * under the invite's label, or `declared` if it has none (`bob-2` if another key has it).
   * The invite is used before the key is written: a crash between the two loses the use, never
   * lets a key in twice. A key already allowed keeps its label and the invite is not used.
   */
  async redeemInvite(
    secret: Uint8Array,
    key: Uint8Array,
    declared: string,
    now: number = Date.now(),
  ): Promise<InviteRedemption> {
    checkBytes("key to allow", key);
    return await this.withLock(async () => {
      const allowed = await this.#editLocked(this.paths.allowed, parseAllowlist, (list) => ({
        result: list.entries,
      }));
      const known = allowed.find((entry) => sameKey(entry.key, key));
      if (known) return { label: known.label ?? declared };
      const found = await this.#editLocked<InviteEntry, FoundInvite>(
        this.paths.invites,
        parseInvites,
        (file) => {
          const found = findInvite(file.entries, secret, now);
          return "refused" in found
            ? { result: found }
            : { lines: useInviteLines(file, found.entry), result: found };
        },
        SECRET_FILE_MODE,
      );
      if ("refused" in found) return found;
      const wanted = found.entry.label ?? declared;
      const label = freeLabel(allowed, wanted, key);
      await this.#editLocked(this.paths.allowed, parseAllowlist, (list) => ({
        lines: [...list.lines, formatAllowLine(key, label)],
        result: undefined,
      }));
      return { label: label ?? declared, id: found.entry.id };
    });
  }

  // --- Known servers -------------------------------------------------------------

  /** Reads `known_servers`; a missing file is an empty list (the folder must exist). */
  async readKnownServers(): Promise<ParsedFile<KnownServer>> {
    await this.checkFolder();
    return parseKnownServers((await readKeyFile(this.paths.knownServers))?.text ?? "");
  }

  /**
   * The pinned key of `address` (`host:port`), or `undefined` if none. Throws `BAD_FILE` if the
   * file has bad lines: a damaged pin must not read as "never seen".
   */
  async lookupServer(address: string): Promise<Uint8Array | undefined> {
    const normalized = normalizeAddress(address);
    const servers = await this.readKnownServers();
    this.#refuseBadLines(this.paths.knownServers, servers.errors);
    return servers.entries.find((entry) => entry.address === normalized)?.key;
  }

  /**
   * Pins `key` for a server's addresses (`host:port`: the name it was reached by and the IP
   * address connected to, as ssh's CheckHostIP), all in one write, under the lock. Returns the
   * key pinned before (the first that differs from `key`, else the first found), `undefined` if
   * no address had one.
   *
   * Without `replace` (a first contact) the pin is added only where there is none; if any
   * address has another key pinned, that key is returned and nothing is written. Checking under
   * the lock is what makes two racing first contacts shown different keys end with one pin and
   * one changed key. With `replace` (an explicit key the server matched), every address gets
   * `key`, replacing older pins.
   */
  async pinServer(
    addresses: string | readonly string[],
    key: Uint8Array,
    options: { replace?: boolean } = {},
  ): Promise<Uint8Array | undefined> {
    checkBytes("server key", key);
    const wanted = [
      ...new Set((typeof addresses === "string" ? [addresses] : addresses)
        .map(normalizeAddress)),
    ];
    const path = this.paths.knownServers;
    return await this.#editLines(path, parseKnownServers, (servers) => {
      const { before, lines } = pinLines(servers, wanted, key, options.replace ?? false);
      return { lines, result: before };
    });
  }
}
