/**
 * The streaming SHA-256 (lib/protocol/crypto.ts): both backends against noble's one-shot sha256,
 * byte for byte, on random inputs fed in random-sized pieces.
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import {
  nativeSha256Stream,
  nobleSha256Stream,
  type Sha256Stream,
  sha256Stream,
} from "../lib/protocol/crypto.ts";
import { assert, seededRandom } from "./helpers.ts";

const STREAMS: [string, () => Sha256Stream][] = [
  ["sha256Stream", sha256Stream],
  ["native", nativeSha256Stream],
  ["noble", nobleSha256Stream],
];

const MIB = 1024 * 1024;

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call
  for (let i = 0; i < length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
}

/** Feeds `data` to `stream` in pieces of random sizes (some empty) up to `largest` bytes. */
function feedInPieces(
  stream: Sha256Stream,
  data: Uint8Array,
  random: () => number,
  largest: number,
): void {
  for (let offset = 0; offset < data.length;) {
    const piece = Math.floor(random() * (largest + 1));
    stream.update(data.subarray(offset, offset + piece));
    offset += piece;
  }
}

Deno.test("sha256Stream() of nothing is the SHA-256 of the empty string", () => {
  for (const [name, make] of STREAMS) {
    const hash = make();
    hash.update(new Uint8Array(0));
    assert.deepEqual(hash.digest(), sha256(new Uint8Array(0)), name);
    assert.equal(
      [...make().digest()].map((b) => b.toString(16).padStart(2, "0")).join(""),
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      name,
    );
  }
});

Deno.test("sha256Stream() equals noble's sha256 on random inputs fed in random pieces", () => {
  const random = seededRandom(0x5a256);
  const lengths = [1, 55, 56, 63, 64, 65, 127, 128, 1000, 4096, 65537];
  for (let i = 0; i < 20; i++) lengths.push(Math.floor(random() * 200_000));
  for (const length of lengths) {
    const data = randomBytes(length);
    const expected = sha256(data);
    for (const [name, make] of STREAMS) {
      const hash = make();
      feedInPieces(hash, data, random, 1 + Math.floor(random() * 3000));
      assert.deepEqual(hash.digest(), expected, `${name}, ${length} bytes`);
    }
  }
});

Deno.test("sha256Stream() equals noble's sha256 on more than 1 MiB", () => {
  const random = seededRandom(7);
  const data = randomBytes(MIB + 12345);
  const expected = sha256(data);
  for (const [name, make] of STREAMS) {
    const hash = make();
    feedInPieces(hash, data, random, 256 * 1024);
    assert.deepEqual(hash.digest(), expected, name);
    const whole = make();
    whole.update(data);
    assert.deepEqual(whole.digest(), expected, `${name}, in one piece`);
  }
});

Deno.test("sha256Stream() hashes the bytes at update(), not later changes to the buffer", () => {
  for (const [name, make] of STREAMS) {
    const buffer = new Uint8Array([1, 2, 3]);
    const hash = make();
    hash.update(buffer);
    buffer.fill(0);
    assert.deepEqual(hash.digest(), sha256(new Uint8Array([1, 2, 3])), name);
  }
});
