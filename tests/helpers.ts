/**
 * Small test helpers: assertions (JSR's @std/assert is out of reach here) and in-memory streams.
 * @module
 */
import assert from "node:assert/strict";

export { assert };

/** Asserts that `fn` rejects with an error of `type` whose message matches `pattern`. */
export async function assertRejects(
  fn: () => Promise<unknown>,
  type: abstract new (...args: never[]) => Error,
  pattern?: RegExp,
): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    if (pattern) assert.match((error as Error).message, pattern);
    return error as Error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name}, nothing was thrown` });
}

/** A ByteReader over fixed chunks: each read returns at most one chunk (then null at the end). */
export function chunkReader(chunks: Uint8Array[]) {
  const queue = chunks.map((chunk) => chunk.slice());
  return {
    read(buffer: Uint8Array): Promise<number | null> {
      const chunk = queue[0];
      if (!chunk) return Promise.resolve(null);
      const n = Math.min(buffer.length, chunk.length);
      buffer.set(chunk.subarray(0, n));
      if (n === chunk.length) queue.shift();
      else queue[0] = chunk.subarray(n);
      return Promise.resolve(n);
    },
  };
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A deterministic pseudo-random generator (mulberry32) for reproducible hostile inputs. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Asserts that `fn` throws an error of `type` whose message matches `pattern`. */
export function assertThrows(
  fn: () => unknown,
  type: abstract new (...args: never[]) => Error,
  pattern?: RegExp,
): Error {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof type, `expected ${type.name}, got ${error}`);
    if (pattern) assert.match((error as Error).message, pattern);
    return error as Error;
  }
  throw new assert.AssertionError({ message: `expected ${type.name}, nothing was thrown` });
}

/** Runs `fn` in a fresh temporary folder (its real path) and removes the folder afterwards. */
export async function inTempDir(
  fn: (dir: string) => Promise<void>,
  prefix = "chat-test-",
): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix }));
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The permission bits of a file (POSIX). */
export async function modeOf(path: string): Promise<number> {
  return (await Deno.stat(path)).mode! & 0o777;
}
