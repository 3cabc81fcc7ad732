/**
 * The program's permissions, read from one place: the `chat` task of deno.json. The tests, the
 * benchmarks and the compile script take them from here, so a permission added to the task is
 * added everywhere, and none can drift.
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/**
 * The flags the `chat` task gives `deno run`, in order: its `--allow-…` permissions and its
 * `--v8-flags=…` (a young generation of at most 1 MiB: a file transfer makes two 64 KiB buffers
 * per chunk, and with V8's default sizes ~40 MiB of them piled up before a collection; with 1
 * MiB the server grew by 14-16 MiB during a 256 MiB relay, at the same speed).
 *
 * @example
 * ```ts
 * import { CHAT_RUN_FLAGS } from "./permissions.ts";
 * CHAT_RUN_FLAGS.includes("--allow-net"); // true
 * ```
 */
export const CHAT_RUN_FLAGS: readonly string[] = denoJson.tasks.chat
  .split(/\s+/)
  .filter((word) => word.startsWith("--allow-") || word.startsWith("--v8-flags="));
