/**
 * `serve --log FILE`: every room event appended to FILE as one JSON line (the schema of
 * json_events.ts). The file is created mode 0600 (it holds everything said), never followed
 * through a symbolic link, and written through a buffer flushed at least once a second and at
 * exit; each flush is whole lines, so a crash can at worst cut the last line short, which a
 * reader skips.
 * @module
 */
import { UserError } from "./output.ts";

/** How often buffered lines are written out, at the latest. */
export const FLUSH_MS = 1000;

/** An append-only JSON-lines log. */
export class RoomLog {
  readonly path: string;
  readonly #file: Deno.FsFile;
  #buffer: string[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #encoder = new TextEncoder();

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /** Opens (or creates, 0600) `path` for appending; a link or a non-file is refused. */
  static async open(path: string): Promise<RoomLog> {
    const info = await Deno.lstat(path).catch(() => undefined);
    if (info && !info.isFile) {
      throw new UserError(
        `--log ${path}: it is ${info.isSymlink ? "a symbolic link" : "not a file"}`,
        {
          hints: ["give the path of a plain file (it is created if missing)"],
        },
      );
    }
    try {
      const file = await Deno.open(path, { append: true, create: true, mode: 0o600 });
      return new RoomLog(path, file);
    } catch (error) {
      throw new UserError(`--log ${path}: cannot open it: ${(error as Error).message}`);
    }
  }

  /** Appends one line (written within FLUSH_MS). */
  write(line: string): void {
    this.#buffer.push(line + "\n");
    this.#timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  /** Writes every buffered line now, in one write of whole lines. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer.length === 0) return;
    const bytes = this.#encoder.encode(this.#buffer.join(""));
    this.#buffer = [];
    for (let offset = 0; offset < bytes.length;) {
      offset += this.#file.writeSync(bytes.subarray(offset));
    }
  }

  /** Flushes and closes the file. */
  close(): void {
    this.flush();
    this.#file.close();
  }
}

/**
 * The events of a log's text, skipping a cut-short last line (a crash mid-write) and any line
 * that is not a JSON object.
 *
 * @example
 * ```ts
 * import { readRoomLog } from "./room_log.ts";
 * readRoomLog('{"v":1,"event":"line"}\n{"v":1,"ev').length; // 1
 * ```
 */
export function readRoomLog(text: string): Record<string, unknown>[] {
  return text.split("\n").flatMap((line) => {
    try {
      const value = JSON.parse(line);
      return typeof value === "object" && value !== null && !Array.isArray(value) ? [value] : [];
    } catch {
      return [];
    }
  });
}
