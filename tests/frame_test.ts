import {
  assert,
  assertRejects,
  assertThrows,
  chunkReader,
  concatBytes,
  seededRandom,
} from "./helpers.ts";
import { checkFrameLength, encodeFrame, FrameError, FrameReader } from "../lib/protocol/frame.ts";
import { MAX_FRAME_BYTES } from "../lib/protocol/constants.ts";

function body(length: number, fill = 0xab): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

Deno.test("encodeFrame() writes a big-endian length before the body", () => {
  assert.deepEqual([...encodeFrame(new Uint8Array([1, 2, 3]))], [0, 3, 1, 2, 3]);
  const big = encodeFrame(body(0x1234));
  assert.deepEqual([big[0], big[1]], [0x12, 0x34]);
});

Deno.test("encodeFrame() accepts lengths 1, max-1 and max and rejects 0 and max+1", () => {
  for (const length of [1, MAX_FRAME_BYTES - 1, MAX_FRAME_BYTES]) {
    assert.equal(encodeFrame(body(length)).length, length + 2);
  }
  assertThrows(() => encodeFrame(new Uint8Array(0)), FrameError, /zero-length frame/);
  assertThrows(
    () => encodeFrame(body(MAX_FRAME_BYTES + 1)),
    FrameError,
    /exceeds the 65535-byte limit/,
  );
  assertThrows(() => checkFrameLength(70000), FrameError, /70000 bytes/);
});

Deno.test("readFrame() returns frames of boundary sizes and then null at a clean end", async () => {
  const sizes = [1, 2, MAX_FRAME_BYTES - 1, MAX_FRAME_BYTES, 100];
  const wire = concatBytes(...sizes.map((size, i) => encodeFrame(body(size, i))));
  const reader = new FrameReader(chunkReader([wire]));
  for (const [i, size] of sizes.entries()) {
    const frame = await reader.readFrame();
    assert.equal(frame?.length, size);
    assert.ok(frame?.every((byte) => byte === i));
  }
  assert.equal(await reader.readFrame(), null);
});

Deno.test("readFrame() reassembles frames delivered one byte at a time", async () => {
  const wire = concatBytes(encodeFrame(new Uint8Array([9, 8, 7])), encodeFrame(body(300)));
  const bytes = [...wire].map((byte) => new Uint8Array([byte]));
  const reader = new FrameReader(chunkReader(bytes));
  assert.deepEqual([...(await reader.readFrame())!], [9, 8, 7]);
  assert.equal((await reader.readFrame())!.length, 300);
  assert.equal(await reader.readFrame(), null);
});

Deno.test("readFrame() keeps thousands of frames in random chunks intact with its fixed buffer", async () => {
  const random = seededRandom(42);
  const frames = Array.from(
    { length: 2000 },
    (_, i) => body(1 + Math.floor(random() * (random() < 0.05 ? MAX_FRAME_BYTES : 200)), i % 251),
  );
  const wire = concatBytes(...frames.map(encodeFrame));
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < wire.length;) {
    const size = 1 + Math.floor(random() * 150_000);
    chunks.push(wire.subarray(offset, offset + size));
    offset += size;
  }
  const reader = new FrameReader(chunkReader(chunks));
  for (const expected of frames) {
    assert.deepEqual(await reader.readFrame(), expected);
  }
  assert.equal(await reader.readFrame(), null);
});

Deno.test("readFrame() rejects a zero length", async () => {
  const reader = new FrameReader(chunkReader([new Uint8Array([0, 0, 1])]));
  await assertRejects(() => reader.readFrame(), FrameError, /zero-length frame/);
});

Deno.test("readFrame() rejects a length over a lowered limit before reading the body", async () => {
  const reader = new FrameReader(chunkReader([new Uint8Array([0x01, 0x00])]), 255);
  await assertRejects(() => reader.readFrame(), FrameError, /256 bytes exceeds the 255-byte limit/);
});

Deno.test("readFrame() rejects a close in the middle of the header", async () => {
  const reader = new FrameReader(chunkReader([new Uint8Array([0x00])]));
  await assertRejects(() => reader.readFrame(), FrameError, /middle of a frame header/);
});

Deno.test("readFrame() rejects a close in the middle of the body", async () => {
  const truncated = encodeFrame(body(10)).subarray(0, 7);
  const reader = new FrameReader(chunkReader([truncated]));
  await assertRejects(() => reader.readFrame(), FrameError, /5 of 10 bytes/);
});

Deno.test("FrameReader refuses a limit above the protocol maximum", () => {
  assertThrows(() => new FrameReader(chunkReader([]), MAX_FRAME_BYTES + 1), RangeError);
  assertThrows(() => new FrameReader(chunkReader([]), 0), RangeError);
});

Deno.test("FrameReader keeps bytes already buffered when its limit is raised mid-stream", async () => {
  const wire = concatBytes(
    encodeFrame(body(10, 1)),
    encodeFrame(body(5000, 2)),
    encodeFrame(body(65535, 3)),
  );
  const reader = new FrameReader(chunkReader([wire]), 1024);
  assert.equal((await reader.readFrame())?.length, 10);
  reader.maxFrameBytes = MAX_FRAME_BYTES;
  const second = await reader.readFrame();
  assert.ok(second?.length === 5000 && second.every((b) => b === 2));
  const third = await reader.readFrame();
  assert.ok(third?.length === 65535 && third.every((b) => b === 3));
  assert.equal(await reader.readFrame(), null);
});
