/**
 * The program's permissions, read from one place: the `chat` task of deno.json. The tests, the
 * benchmarks and the compile script take them from here, so a permission added to the task is
 * added everywhere, and none can drift.
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/**
 * The `--allow-…` flags of the `chat` task, in order.
 *
 * @example
 * ```ts
 * import { CHAT_PERMISSIONS } from "./permissions.ts";
 * CHAT_PERMISSIONS.includes("--allow-net"); // true
 * ```
 */
export const CHAT_PERMISSIONS: readonly string[] = denoJson.tasks.chat
  .split(/\s+/)
  .filter((word) => word.startsWith("--allow-"));
