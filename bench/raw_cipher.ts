/**
 * The raw-cipher baseline of the streaming benchmarks (bench/stream.ts, bench/files.ts): the bare
 * node:crypto ChaCha20-Poly1305 seal of one plaintext in the benchmark process, with nothing
 * around it (no ciphertext || tag join, no frame, no copy).
 * @module
 */
import { createCipheriv } from "node:crypto";

const MIB = 1024 * 1024;

/** MB/s (MB = 10^6 bytes) of `bytes` in `ms` milliseconds. */
export const mbPerSecond = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

/**
 * MB/s of `work` run `count` times on `unit`-byte items: the best of three passes (the first
 * pass warms the JIT and the heap, and a cold pass runs at half speed here).
 */
export function rate(unit: number, count: number, work: () => void): number {
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    const start = performance.now();
    for (let i = 0; i < count; i++) work();
    best = Math.max(best, mbPerSecond(unit * count, performance.now() - start));
  }
  return best;
}

/**
 * MB/s of the bare node:crypto seal of `plaintext` (createCipheriv, update, final, getAuthTag),
 * 64 MiB a pass, the best of three passes.
 */
export function bareNodeSeal(plaintext: Uint8Array): number {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = new Uint8Array(12);
  return rate(plaintext.length, Math.ceil(64 * MIB / plaintext.length), () => {
    const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
    cipher.update(plaintext);
    cipher.final();
    cipher.getAuthTag();
  });
}
