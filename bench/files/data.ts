/**
 * The file the benchmark sends: random bytes written once, and SHA-256 to check each copy.
 * @module
 */
import { createHash, randomFillSync } from "node:crypto";

const CHUNK_BYTES = 4 * 1024 * 1024;

/** Writes `bytes` random bytes to a new file at `path` (mode 0600); returns their SHA-256 (hex). */
export async function writeRandomFile(path: string, bytes: number): Promise<string> {
  const hash = createHash("sha256");
  const buffer = new Uint8Array(CHUNK_BYTES);
  using file = await Deno.open(path, { write: true, createNew: true, mode: 0o600 });
  for (let written = 0; written < bytes;) {
    const chunk = buffer.subarray(0, Math.min(CHUNK_BYTES, bytes - written));
    randomFillSync(chunk);
    hash.update(chunk);
    for (let offset = 0; offset < chunk.length;) {
      offset += await file.write(chunk.subarray(offset));
    }
    written += chunk.length;
  }
  return hash.digest("hex");
}

/** SHA-256 (hex) and length of the file at `path`. */
export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  using file = await Deno.open(path, { read: true });
  const buffer = new Uint8Array(CHUNK_BYTES);
  for (let n; (n = await file.read(buffer)) !== null;) {
    hash.update(buffer.subarray(0, n));
    bytes += n;
  }
  return { sha256: hash.digest("hex"), bytes };
}
