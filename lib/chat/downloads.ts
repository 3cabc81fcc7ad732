/**
 * Where accepted files land: a downloads folder holding one hidden part file per transfer (so a
 * broken transfer resumes where it stopped), hashed as it grows, verified against the offered
 * SHA-256, then given a name that never overwrites anything. Checked like the keys folder
 * (lib/keys/fs.ts): no link is followed, the file opened is the file checked, new files are
 * created 0600 with O_EXCL. Never prints.
 * @module
 */
import { join } from "node:path";
import { FileHashError, UnsafePathError } from "../errors.ts";
import { currentUserId, syncFolder } from "../keys/fs.ts";
import { abytes, hexOf } from "../protocol/bytes.ts";
import { type Sha256Stream, sha256Stream } from "../protocol/crypto.ts";
import { numberedName, safeFileName } from "./file_names.ts";

/** A file a peer offered and we accepted. */
export interface IncomingFile {
  /** The name as offered (untrusted): reduced with `safeFileName`. */
  name: string;
  /** Its length in bytes, a safe integer >= 0. */
  size: number;
  /** Its SHA-256, 32 bytes. */
  sha256: Uint8Array;
  /** The sender's key fingerprint, `3f9a:12bc:0d4e:77a1` (16 hex digits, colons optional). */
  sender: string;
}

/** How much of an existing part file is read at a time to hash it. */
const HASH_READ_BYTES = 1024 * 1024;

/** How many numbered names (`a (1).txt` …) are tried before giving up. */
const MAX_NUMBERED_NAMES = 9999;

/**
 * The part file of `file`: `.<safe name>.<sender>-<sha>.part`, where `<sender>` is the 16 hex
 * digits of the sender's fingerprint and `<sha>` the first 16 hex digits of the offered SHA-256,
 * e.g. `.report.pdf.3f9a12bc0d4e77a1-9f86d081884c7d65.part`. The same file offered again by the
 * same sender under the same name finds its part and resumes; another sender, content or name
 * gets another part. Hidden (a leading dot) and never a finished file's name, since safe names
 * never start with a dot. At most 1 + 200 + 1 + 16 + 1 + 16 + 5 = 240 bytes, under the usual
 * 255-byte limit.
 *
 * @example
 * ```ts
 * import { partFileName } from "./downloads.ts";
 * const sha256 = new Uint8Array(32).fill(0xab);
 * partFileName({ name: "../report.pdf", size: 3, sha256, sender: "3f9a:12bc:0d4e:77a1" });
 * // ".report.pdf.3f9a12bc0d4e77a1-abababababababab.part"
 * ```
 */
export function partFileName(file: IncomingFile): string {
  return partNameOf(checkedIncoming(file));
}

function partNameOf({ name, sender, sha256 }: IncomingFile): string {
  return `.${name}.${sender}-${hexOf(sha256.subarray(0, 8))}.part`;
}

/** `file` checked, with the safe name and the sender's 16 hex digits. */
function checkedIncoming(file: IncomingFile): IncomingFile {
  if (!Number.isSafeInteger(file.size) || file.size < 0) {
    throw new RangeError(`a file size must be a safe integer >= 0, got ${file.size}`);
  }
  const sender = typeof file.sender === "string" ? file.sender.replaceAll(":", "") : "";
  if (!/^[0-9a-f]{16}$/i.test(sender)) {
    throw new SyntaxError(`a sender fingerprint must be 16 hex digits, got "${file.sender}"`);
  }
  return {
    name: safeFileName(file.name),
    size: file.size,
    sha256: abytes(file.sha256, 32, "file SHA-256").slice(),
    sender: sender.toLowerCase(),
  };
}

/** A downloads folder: where accepted files are received, then kept under a free name. */
export class DownloadFolder {
  /** Part files open in this process: a second transfer into one would interleave bytes. */
  readonly #openParts = new Set<string>();

  /** A downloads folder at `dir` (created by `open` if missing). */
  constructor(readonly dir: string) {}

  /**
   * Creates the folder (0700) if missing; opens or creates the part file (`partFileName`) and
   * hashes what it already holds; never follows a symlink. Throws an `UnsafePathError` if the
   * folder or the part is a link, the wrong kind of file or another user's; `Deno.errors.Busy`
   * if the part is already open here.
   */
  async open(file: IncomingFile): Promise<PartialDownload> {
    const incoming = checkedIncoming(file);
    await this.#ensureFolder();
    const partPath = join(this.dir, partNameOf(incoming));
    if (this.#openParts.has(partPath)) {
      throw new Deno.errors.Busy(`${partPath} is already being received`);
    }
    this.#openParts.add(partPath); // before the first await: two opens must not both pass
    const release = () => this.#openParts.delete(partPath);
    let handle: Deno.FsFile | undefined;
    try {
      handle = await openPart(partPath);
      const hash = sha256Stream();
      let received = (await handle.stat()).size;
      if (received > incoming.size) {
        await handle.truncate(0); // not the offered file: start again
        received = 0;
      }
      received = await hashExisting(handle, received, hash);
      return new PartialDownload(this.dir, partPath, incoming, handle, received, hash, release);
    } catch (error) {
      handle?.close();
      release();
      throw error;
    }
  }

  /**
   * Makes the folder if missing and checks it, as open() does: a command that takes every file
   * (`listen --accept-files`) says at its start that the folder will not do, not at each offer.
   */
  prepare(): Promise<void> {
    return this.#ensureFolder();
  }

  /** Makes the folder if missing, then refuses a link, a non-folder or another user's folder. */
  async #ensureFolder(): Promise<void> {
    let made: unknown;
    try {
      await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (error) {
      made = error; // e.g. a dangling link: lstat below says what is there instead
    }
    const info = await Deno.lstat(this.dir).catch((error) => {
      throw made ?? error;
    });
    const what = `the downloads folder ${this.dir}`;
    if (info.isSymlink) {
      throw new UnsafePathError(this.dir, "symlink", `${what} is a symbolic link`);
    }
    if (!info.isDirectory) {
      throw new UnsafePathError(this.dir, "not-a-folder", `${what} is not a folder`);
    }
    await checkOwner(this.dir, info, [0]); // root's folders are fine, as for OpenSSH
    // Another user who may write here could rename a file after its hash was checked, or plant
    // names: refused, as the keys folder is (`/tmp`, mode 1777, among them).
    if (((info.mode ?? 0) & 0o022) !== 0) {
      throw new UnsafePathError(
        this.dir,
        "writable",
        `${what} is writable by group or others (chmod 700 ${this.dir}, or choose another)`,
      );
    }
  }
}

/**
 * Received bytes after which a flush to the disk starts in the background (see #flushAhead): the
 * final sync then has at most about this much left to write.
 */
const FLUSH_AHEAD_BYTES = 16 << 20;

/** A file being received into its part file; made by `DownloadFolder.open`. */
export class PartialDownload {
  #file: Deno.FsFile | undefined;
  #received: number;
  #busy = false;
  #hardLinks = true;
  /** The background flush in flight, if any, and how far the received bytes had got then. */
  #flushing: Promise<void> | undefined;
  #flushedUpTo: number;

  /** Internal: use `DownloadFolder.open`. */
  constructor(
    private readonly folder: string,
    /** The part file the bytes go to. */
    readonly partPath: string,
    private readonly incoming: IncomingFile,
    file: Deno.FsFile,
    received: number,
    private readonly hash: Sha256Stream,
    private readonly release: () => void,
  ) {
    this.#file = file;
    this.#received = received;
    this.#flushedUpTo = received;
  }

  /** Bytes present: those found at open (a resumed download, else 0) and those written since. */
  get received(): number {
    return this.#received;
  }

  /**
   * Appends `bytes`, which belong at `offset`. Throws a RangeError unless `offset` is
   * `received` and the bytes fit within the offered size. After a failed write the download is
   * closed (the part is kept; opening it again hashes what actually reached the disk).
   */
  write(offset: number, bytes: Uint8Array): Promise<void> {
    try {
      this.#writeSync(offset, bytes);
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** write() without the promise (the file I/O is synchronous: see below). */
  #writeSync(offset: number, bytes: Uint8Array): void {
    const file = this.#usable("write to");
    abytes(bytes, undefined, "file bytes");
    const { size } = this.incoming;
    if (offset !== this.#received) {
      throw new RangeError(
        `bytes for offset ${offset} of ${this.partPath}, which has ${this.#received} bytes`,
      );
    }
    if (this.#received + bytes.length > size) {
      throw new RangeError(
        `${bytes.length} bytes at offset ${offset} run past the end of ${this.partPath} ` +
          `(${size} bytes)`,
      );
    }
    this.#busy = true;
    try {
      this.hash.update(bytes);
      // Synchronous: an async write goes through a thread pool and cost 2-5x the CPU of a
      // 64 KiB write into the page cache (measured: 347-822 ms against 170 ms for 256 MiB),
      // which made the receiver the slowest of a transfer's three processes.
      for (let written = 0; written < bytes.length;) {
        written += file.writeSync(bytes.subarray(written));
      }
      this.#received += bytes.length;
    } catch (error) {
      this.close(); // the hash has run ahead of the file: only a fresh open may go on
      throw error;
    } finally {
      this.#busy = false;
    }
    this.#flushAhead(file);
  }

  /**
   * Every FLUSH_AHEAD_BYTES, starts a data sync in the background (Deno's thread pool) while the
   * bytes keep coming. finish() must sync before it reports a file as received, and a sync of a
   * whole 256 MiB file at the end took ~450 ms here, most of a second on slower disks; flushed as
   * it arrives, the disk works while the transfer does and the last sync is short. A failed
   * background sync is ignored: finish() syncs again, and that one reports the error.
   */
  #flushAhead(file: Deno.FsFile): void {
    if (this.#flushing || this.#received - this.#flushedUpTo < FLUSH_AHEAD_BYTES) return;
    this.#flushedUpTo = this.#received;
    this.#flushing = file.syncData().catch(() => {}).finally(() => this.#flushing = undefined);
  }

  /**
   * Verifies the whole file (`received` must equal the size, else a RangeError and the part is
   * kept) against the offered SHA-256: on a mismatch removes the part and throws a
   * `FileHashError`. Else syncs the data and gives it the first free name of `name`,
   * `name (1).ext`, `name (2).ext` … (a hard link, which never replaces a file, or where links
   * are unsupported a name reserved with O_EXCL and a rename), removes the part and returns
   * the final path. The download is closed afterwards, whatever happened.
   */
  async finish(): Promise<string> {
    const file = this.#usable("finish");
    const { size, sha256 } = this.incoming;
    if (this.#received !== size) {
      throw new RangeError(`${this.partPath} has ${this.#received} of its ${size} bytes`);
    }
    this.#busy = true; // for good: whatever happens, the download ends closed
    try {
      const actual = this.hash.digest();
      if (!actual.every((byte, i) => byte === sha256[i])) {
        this.close();
        await removeIfPresent(this.partPath);
        throw new FileHashError(this.partPath, sha256, actual);
      }
      await this.#flushing;
      await file.syncData();
      const finalPath = await this.#placeUnderFreeName(await file.stat());
      await removeIfPresent(this.partPath);
      await syncFolder(this.folder);
      return finalPath;
    } finally {
      this.close();
    }
  }

  /** Closes the file and keeps the part for a later resume. */
  close(): void {
    if (!this.#file) return;
    this.#file.close();
    this.#file = undefined;
    this.release();
  }

  /** Closes the file and removes the part (a declined or failed transfer that must not resume). */
  async discard(): Promise<void> {
    this.close();
    await removeIfPresent(this.partPath);
  }

  /** The open file; throws if closed, or busy with a write or a finish not yet done. */
  #usable(action: string): Deno.FsFile {
    if (!this.#file) {
      throw new Deno.errors.BadResource(`cannot ${action} ${this.partPath}: it is closed`);
    }
    if (this.#busy) {
      throw new Deno.errors.Busy(`cannot ${action} ${this.partPath}: it is busy`);
    }
    return this.#file;
  }

  /** Gives the part (`opened`) the first free name and checks that the name is our file. */
  async #placeUnderFreeName(opened: Deno.FileInfo): Promise<string> {
    const { name } = this.incoming;
    for (let n = 0; n <= MAX_NUMBERED_NAMES; n++) {
      const candidate = join(this.folder, n === 0 ? name : numberedName(name, n));
      if (!(await this.#takeName(candidate))) continue;
      const placed = await Deno.lstat(candidate);
      if (placed.ino !== opened.ino || placed.dev !== opened.dev) {
        const message = `${this.partPath} was replaced before it was kept`;
        throw new UnsafePathError(candidate, "replaced", message);
      }
      return candidate;
    }
    const last = numberedName(name, MAX_NUMBERED_NAMES);
    throw new Deno.errors.AlreadyExists(`${name} to ${last} all exist in ${this.folder}`);
  }

  /**
   * Gives the part the name `path` unless something has it (false): a hard link, which never
   * replaces anything; where links are unsupported (FAT, some network shares), the name is
   * taken with O_EXCL, which no link at `path` passes either, and the part renamed over it.
   */
  async #takeName(path: string): Promise<boolean> {
    if (this.#hardLinks) {
      try {
        await Deno.link(this.partPath, path);
        return true;
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) return false;
        this.#hardLinks = false;
      }
    }
    try {
      (await Deno.open(path, { createNew: true, write: true, mode: 0o600 })).close();
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists) return false;
      throw error;
    }
    await Deno.rename(this.partPath, path).catch(async (error) => {
      await removeIfPresent(path);
      throw error;
    });
    return true;
  }
}

/**
 * Opens the part file for reading and writing: created with O_EXCL and 0600 if missing (which
 * never follows a link), else checked with lstat (a plain file of ours, no link), opened without
 * create and compared with what was checked. A part with other hard links is not ours alone
 * (writing it would change the other file), and one group or others may read or write would
 * hand its mode to the received file: either way its name is removed and a new part made.
 */
async function openPart(path: string): Promise<Deno.FsFile> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const info = await Deno.lstat(path).catch((error) => {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    });
    // Other hard links: writing would change another file. A mode open to group or others:
    // the received file would keep it (received files are 0600). Either way, start afresh.
    const notOurs = info?.isFile && ((info.nlink ?? 1) > 1 || ((info.mode ?? 0) & 0o077) !== 0);
    if (!info || notOurs) {
      if (info) await removeIfPresent(path);
      try {
        return await Deno.open(path, { createNew: true, read: true, write: true, mode: 0o600 });
      } catch (error) {
        if (error instanceof Deno.errors.AlreadyExists) continue; // made in between: check it
        throw error;
      }
    }
    if (info.isSymlink) throw new UnsafePathError(path, "symlink", `${path} is a symbolic link`);
    if (!info.isFile) throw new UnsafePathError(path, "not-a-file", `${path} is not a plain file`);
    await checkOwner(path, info, []);
    const file = await Deno.open(path, { read: true, write: true });
    const opened = await file.stat().catch(() => undefined);
    if (opened?.isFile && opened.ino === info.ino && opened.dev === info.dev) return file;
    file.close();
    throw new UnsafePathError(path, "replaced", `${path} was replaced while chat opened it`);
  }
  throw new UnsafePathError(path, "replaced", `${path} keeps changing while chat opens it`);
}

/**
 * Feeds the first `length` bytes of the just-opened `file` to `hash` in 1 MiB reads, which
 * leave it positioned where writes continue. Returns how many there were (fewer if the file was
 * cut meanwhile).
 */
async function hashExisting(file: Deno.FsFile, length: number, hash: Sha256Stream) {
  const buffer = new Uint8Array(Math.min(HASH_READ_BYTES, length));
  let done = 0;
  while (done < length) {
    const n = await file.read(buffer.subarray(0, Math.min(buffer.length, length - done)));
    if (n === null) break;
    hash.update(buffer.subarray(0, n));
    done += n;
  }
  return done;
}

/** Refuses `path` (`not-ours`) unless we or one of `alsoTrusted` (user ids) own it. */
async function checkOwner(path: string, info: Deno.FileInfo, alsoTrusted: number[]) {
  const me = await currentUserId();
  const owner = info.uid;
  if (me === null || owner === null || owner === me || alsoTrusted.includes(owner)) return;
  const message = `${path} belongs to user ${owner}, not to you (user ${me})`;
  throw new UnsafePathError(path, "not-ours", message);
}

async function removeIfPresent(path: string): Promise<void> {
  await Deno.remove(path).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}
