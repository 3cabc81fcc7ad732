/**
 * The file layer of the keys folder: atomic writes (a temporary file renamed over the old one,
 * synced), reads that check the file before trusting it (no link, our own or root's, not
 * writable by others: OpenSSH's StrictModes) and make sure the file opened is the file checked,
 * the `.lock` file opened without following a link, and operating-system errors turned into
 * `KeystoreError`s that name the file. Never prints.
 * @module
 */
import { basename, dirname, join } from "node:path";
import { KeystoreError, type KeystoreOsError } from "../errors.ts";

/** Permission bits that let group or others write. */
export const GROUP_OTHER_WRITE = 0o022;

/**
 * Whether files have Unix modes. Windows has none (Deno.chmod only toggles the read-only bit
 * there, and the group/other bits mean nothing): the folder's ACL, inherited from the user's
 * profile folder, is what keeps the secret key private, so no chmod is done and no mode checked.
 */
export const UNIX_MODES = Deno.build.os !== "windows";

/**
 * Writes `data` to `path` atomically: a new temporary file in the same folder (created, never
 * opened, with `mode` less the umask), written and synced, then renamed over `path`. Nothing is
 * done by path to the temporary file once created: a link swapped in for it must not lend its
 * target our mode. On any failure the temporary
 * file is removed and `path` is unchanged; the error is a `KeystoreError` (`IO`) naming `path`.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./fs.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/allowed`, "# empty\n", 0o644);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode: number,
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const folder = dirname(path);
  const suffix = [...crypto.getRandomValues(new Uint8Array(6))]
    .map((byte) => byte.toString(16).padStart(2, "0"))
    .join("");
  const temporary = join(folder, `.${basename(path)}.${suffix}.tmp`);
  let file: Deno.FsFile | undefined;
  try {
    file = await Deno.open(temporary, { createNew: true, write: true, mode });
    for (let written = 0; written < bytes.length;) {
      written += await file.write(bytes.subarray(written));
    }
    await file.sync();
    file.close();
    file = undefined;
    await Deno.rename(temporary, path);
  } catch (error) {
    file?.close();
    await Deno.remove(temporary).catch(() => {});
    const existed = await Deno.lstat(path).then(() => true, () => false);
    throw fsError(error, "write", path, { existed });
  }
  await syncFolder(folder);
}

/** Makes the rename durable; best effort (not every platform can open a folder). */
export async function syncFolder(folder: string): Promise<void> {
  try {
    const handle = await Deno.open(folder, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // the data itself was synced before the rename
  }
}

/** Our user id, found once (see `currentUserId`). */
let ownUid: Promise<number | null> | undefined;

/**
 * The user id this process runs as, for the ownership checks: `Deno.uid()` when the sys
 * permission is granted, else the owner of a temporary file we create (a new file belongs to its
 * creator), so the `chat` task needs no `--allow-sys`. `null` where there are no user ids.
 */
export function currentUserId(): Promise<number | null> {
  ownUid ??= (async () => {
    if (!UNIX_MODES) return null;
    const sys = await Deno.permissions.query({ name: "sys", kind: "uid" });
    if (sys.state === "granted") return Deno.uid();
    const probe = await Deno.makeTempFile({ prefix: "chat-uid-" });
    try {
      return (await Deno.lstat(probe)).uid;
    } finally {
      await Deno.remove(probe).catch(() => {});
    }
  })();
  return ownUid;
}

/**
 * Throws `NO_FOLDER`, `NOT_A_FOLDER` or `IO` unless the keys folder `dir` exists, and `UNSAFE`
 * if another user owns it or group or others can write it (it may be a link to a folder).
 */
export async function checkKeysFolder(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new KeystoreError("NO_FOLDER", `the keys folder ${dir} does not exist`, {
        path: dir,
        cause: error,
      });
    }
    if (error instanceof Deno.errors.NotADirectory) throw notAFolder(dir, error);
    throw fsError(error, "open the keys folder", dir);
  }
  if (!info.isDirectory) throw notAFolder(dir);
  await checkOwnerAndMode(dir, info, "folder");
}

function notAFolder(dir: string, cause?: unknown): KeystoreError {
  return new KeystoreError("NOT_A_FOLDER", `the keys folder ${dir} is not a folder`, {
    path: dir,
    cause,
  });
}

/**
 * Refuses (`UNSAFE`) an entry of the keys folder that chat must not trust: a link, not a plain
 * file, another user's (root's is fine, as for OpenSSH), or writable by group or others. With
 * `secret`, any access by group or others is refused (`INSECURE_MODE`).
 */
export async function checkEntry(
  path: string,
  info: Deno.FileInfo,
  options: { secret?: boolean } = {},
): Promise<void> {
  if (info.isSymlink) {
    const dangling = await Deno.stat(path).then(
      () => false,
      (error) => error instanceof Deno.errors.NotFound,
    );
    throw new KeystoreError(
      "UNSAFE",
      `${path} is a symbolic link; chat uses only plain files in the keys folder`,
      { path, isSymlink: true, dangling },
    );
  }
  if (!info.isFile) {
    throw new KeystoreError(options.secret ? "BAD_IDENTITY" : "UNSAFE", `${path} is not a file`, {
      path,
    });
  }
  await checkOwnerAndMode(path, info, options.secret ? "secret" : "file");
}

/**
 * Refuses (`UNSAFE`) a keys folder or a file in it that another user owns (root may) or that
 * group or others can write; a secret file that group or others can access at all is
 * `INSECURE_MODE`. Nothing to check where there are no Unix modes.
 */
export async function checkOwnerAndMode(
  path: string,
  info: Deno.FileInfo,
  kind: "folder" | "file" | "secret",
): Promise<void> {
  if (!UNIX_MODES) return;
  const isFolder = kind === "folder";
  const what = isFolder ? `the keys folder ${path}` : path;
  const harm = isFolder ? "replace your keys" : "change your keys";
  const me = await currentUserId();
  const owner = info.uid;
  if (me !== null && owner !== null && owner !== me && owner !== 0) {
    throw new KeystoreError(
      "UNSAFE",
      `${what} belongs to user ${owner}, not to you (user ${me}): its owner can ` +
        (isFolder ? harm : "change it"),
      { path, isFolder, owner, me },
    );
  }
  if (info.mode === null) return;
  const mode = info.mode & 0o777;
  if (kind === "secret" && (mode & 0o077) !== 0) {
    throw new KeystoreError(
      "INSECURE_MODE",
      `the secret key file ${path} is accessible by group or others ` +
        `(mode ${formatMode(mode)}); it must be 0600`,
      { path, mode },
    );
  }
  if ((mode & GROUP_OTHER_WRITE) !== 0) {
    throw new KeystoreError(
      "UNSAFE",
      `${what} is writable by group or others (mode ${formatMode(mode)}): ` +
        `anyone who can write it can ${harm}`,
      { path, isFolder, mode },
    );
  }
}

/** Refuses a file that was replaced between the check (lstat) and the open (fstat). */
export async function checkSameFile(path: string, checked: Deno.FileInfo, file: Deno.FsFile) {
  const opened = await file.stat();
  if (opened.ino !== checked.ino || opened.dev !== checked.dev || !opened.isFile) {
    throw new KeystoreError("UNSAFE", `${path} was replaced while chat opened it`, {
      path,
      replaced: true,
    });
  }
}

/**
 * Reads a file of the keys folder after `checkEntry`, making sure the file opened is the file
 * checked. `undefined` if it does not exist. `mode` is its permission bits (for rewriting it).
 */
export async function readKeyFile(
  path: string,
  options: { secret?: boolean } = {},
): Promise<{ text: string; mode?: number } | undefined> {
  const info = await lstatOrUndefined(path, "read");
  if (!info) return undefined;
  await checkEntry(path, info, options);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw fsError(error, "read", path);
  }
  try {
    await checkSameFile(path, info, file);
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(64 * 1024);
    for (let n; (n = await file.read(buffer)) !== null;) chunks.push(buffer.slice(0, n));
    const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
    chunks.reduce((offset, chunk) => (bytes.set(chunk, offset), offset + chunk.length), 0);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch (error) {
      throw fsError(new Deno.errors.InvalidData("not UTF-8", { cause: error }), "read", path);
    }
    return { text, mode: info.mode === null ? undefined : info.mode & 0o777 };
  } catch (error) {
    throw fsError(error, "read", path);
  } finally {
    file.close();
  }
}

/**
 * Opens `.lock` without following a link: created with O_EXCL (which never follows one), or,
 * if it exists, checked with lstat and opened read-only (flock needs no write access) without
 * create, then compared with what was checked.
 */
export async function openLock(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { createNew: true, write: true, mode: 0o600 });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) {
      throw fsError(error, "open the lock file", path);
    }
  }
  const info = await lstatOrUndefined(path, "open the lock file");
  if (!info) return await openLock(path); // removed in between: create it again
  await checkEntry(path, info);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    throw fsError(error, "open the lock file", path);
  }
  try {
    await checkSameFile(path, info, file);
  } catch (error) {
    file.close();
    throw error;
  }
  return file;
}

/** The text and permission bits of a file about to be rewritten ("" and undefined if missing). */
export async function readForUpdate(path: string): Promise<{ text: string; mode?: number }> {
  return (await readKeyFile(path)) ?? { text: "" };
}

export async function lstatOrUndefined(
  path: string,
  action: string,
): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw fsError(error, action, path);
  }
}

export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw fsError(error, "remove", path);
  }
}

export function formatMode(mode: number): string {
  return "0" + (mode & 0o777).toString(8).padStart(3, "0");
}

/**
 * Turns an operating-system error into a `KeystoreError` (`IO`) that names the file and what
 * the system said; `facts.existed` tells, for a failed write, whether `path` is unchanged.
 */
export function fsError(
  error: unknown,
  action: string,
  path: string,
  facts: { existed?: boolean } = {},
): unknown {
  if (error instanceof KeystoreError || !(error instanceof Error)) return error;
  const [os, reason] = osErrorOf(error);
  return new KeystoreError("IO", `cannot ${action} ${path}: ${reason}`, {
    path,
    os,
    ...facts,
    cause: error,
  });
}

/** What an operating-system error is, as a fact and in words. */
function osErrorOf(error: Error): [KeystoreOsError, string] {
  const code = (error as Error & { code?: string }).code;
  if (error instanceof Deno.errors.PermissionDenied || code === "EACCES" || code === "EPERM") {
    return ["permission-denied", "permission denied"];
  }
  if (code === "ENOSPC") return ["no-space", "no space left on device"];
  if (code === "EDQUOT") return ["quota", "disk quota exceeded"];
  if (code === "EROFS") return ["read-only", "read-only file system"];
  if (error instanceof Deno.errors.NotFound) return ["not-found", "no such file or folder"];
  if (error instanceof Deno.errors.NotADirectory) {
    return ["not-a-folder", "a part of the path is not a folder"];
  }
  if (error instanceof Deno.errors.IsADirectory) {
    return ["is-a-folder", "it is a folder, not a file"];
  }
  if (error instanceof Deno.errors.InvalidData) return ["not-utf8", "it is not UTF-8 text"];
  return ["other", error.message];
}
