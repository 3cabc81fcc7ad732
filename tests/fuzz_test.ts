/**
 * Fuzzing of everything that parses bytes from a peer: the frame reader, the handshake messages
 * (directly and through secure.ts as the server runs it), transport messages and the channel.
 *
 * Deterministic (seeded) random and mutated inputs, over 100,000 cases in all. Each case may only
 * end in the documented way: a value, or one of the documented error types. A hang fails the
 * test (Deno reports a promise that can never resolve), and so does an unhandled rejection.
 */
import { assert, chunkReader, concatBytes, seededRandom } from "./helpers.ts";
import { Channel } from "../lib/protocol/channel.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { DecryptError, ProtocolError } from "../lib/errors.ts";
import { encodeFrame, FrameError, FrameReader } from "../lib/protocol/frame.ts";
import { XXHandshake } from "../lib/protocol/handshake.ts";
import { CipherState } from "../lib/protocol/noise.ts";
import { acceptHandshake } from "../lib/protocol/handshake_io.ts";
import { MAX_HANDSHAKE_FRAME_BYTES, PROLOGUE } from "../lib/protocol/constants.ts";
import {
  ANY_MESSAGE,
  decodeMessage,
  decodeNamePayload,
  encodeMessage,
  encodeNamePayload,
} from "../lib/protocol/messages.ts";

type Random = () => number;

const unhandled: unknown[] = [];
globalThis.addEventListener("unhandledrejection", (event) => {
  unhandled.push(event.reason);
  event.preventDefault(); // reported by the test below, with the case that caused it
});

function int(random: Random, below: number): number {
  return Math.floor(random() * below);
}

function randomBytes(random: Random, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = int(random, 256);
  return bytes;
}

/** A length skewed towards small values and boundaries, sometimes large. */
function randomLength(random: Random, max: number): number {
  const roll = random();
  if (roll < 0.1) return [0, 1, 2, max - 1, max, max + 1][int(random, 6)];
  if (roll < 0.8) return int(random, Math.min(max, 200) + 1);
  return int(random, max + 1);
}

/** One mutation of `input`: flips, overwrites, truncations, extensions, splices, or fresh bytes. */
function mutate(random: Random, input: Uint8Array): Uint8Array {
  const out = input.slice();
  switch (int(random, 8)) {
    case 0: // flip one bit
      if (out.length) out[int(random, out.length)] ^= 1 << int(random, 8);
      return out;
    case 1: // overwrite a few bytes
      for (let n = 1 + int(random, 4); n > 0 && out.length; n--) {
        out[int(random, out.length)] = int(random, 256);
      }
      return out;
    case 2: // truncate
      return out.subarray(0, int(random, out.length + 1));
    case 3: // extend with random bytes
      return concatBytes(out, randomBytes(random, 1 + int(random, 64)));
    case 4: { // cut a piece out of the middle
      const at = int(random, out.length + 1);
      return concatBytes(out.subarray(0, at), out.subarray(at + int(random, 16)));
    }
    case 5: { // duplicate a piece
      const at = int(random, out.length + 1);
      return concatBytes(out.subarray(0, at), out.subarray(at, at + 8), out.subarray(at));
    }
    case 6: // special bytes at a random place (0x00, 0xff, quotes, braces)
      if (out.length) {
        out[int(random, out.length)] = [0, 0xff, 0x22, 0x7b, 0x7d, 0x80][int(random, 6)];
      }
      return out;
    default: // something else entirely
      return randomBytes(random, randomLength(random, 300));
  }
}

/** Splits `bytes` into chunks of random sizes (as TCP may). */
function randomChunks(random: Random, bytes: Uint8Array): Uint8Array[] {
  if (random() < 0.3) return [bytes];
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = 1 + int(random, random() < 0.5 ? 8 : 2048);
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((byte, i) => bytes[i] === byte);
}

/** Asserts `error` is one of `types`, naming the case so it can be replayed. */
function expectOneOf(error: unknown, types: (new (...args: never[]) => Error)[], what: string) {
  if (!types.some((type) => error instanceof type)) {
    throw new assert.AssertionError({
      message: `${what}: undocumented error ${(error as Error)?.name}: ${
        (error as Error)?.message ?? error
      }\n${(error as Error)?.stack}`,
    });
  }
}

/** What a correct reader must yield for `wire`: its frames, then a clean end or a FrameError. */
function referenceFrames(wire: Uint8Array, limit: number): { frames: number[]; fails: boolean } {
  const frames: number[] = [];
  let at = 0;
  while (at < wire.length) {
    if (wire.length - at < 2) return { frames, fails: true };
    const length = (wire[at] << 8) | wire[at + 1];
    if (length === 0 || length > limit || wire.length - at - 2 < length) {
      return { frames, fails: true };
    }
    frames.push(at + 2);
    at += 2 + length;
  }
  return { frames, fails: false };
}

/** A hostile byte stream: valid frames mixed with zero and huge lengths, cuts and noise. */
function hostileStream(random: Random, limit: number): Uint8Array {
  const parts: Uint8Array[] = [];
  const clean = random() < 0.25; // some streams of valid frames only, to reach clean ends
  for (let n = int(random, 6); n >= 0; n--) {
    const roll = clean ? 0 : random();
    if (roll < 0.5) parts.push(encodeFrame(randomBytes(random, 1 + int(random, limit))));
    else if (roll < 0.6) parts.push(new Uint8Array([0, 0])); // zero length
    else if (roll < 0.7) { // a length over the limit, with a little of its body
      const length = Math.min(0xffff, limit + 1 + int(random, 0x10000));
      parts.push(new Uint8Array([length >> 8, length & 0xff, 1, 2, 3]));
    } else if (roll < 0.8) { // a frame cut short
      const frame = encodeFrame(randomBytes(random, 1 + int(random, limit)));
      parts.push(frame.subarray(0, int(random, frame.length)));
    } else parts.push(randomBytes(random, randomLength(random, 64)));
  }
  return concatBytes(...parts);
}

Deno.test("FrameReader yields exactly the frames of 40,000 hostile streams, or a FrameError", async () => {
  const random = seededRandom(0xf4a3e);
  let frames = 0, failures = 0, cleanEnds = 0;
  for (let i = 0; i < 40_000; i++) {
    const limit = random() < 0.5 ? MAX_HANDSHAKE_FRAME_BYTES : 1 + int(random, 4096);
    const wire = hostileStream(random, limit);
    const expected = referenceFrames(wire, limit);
    const reader = new FrameReader(chunkReader(randomChunks(random, wire)), limit);
    const got: Uint8Array[] = [];
    let failed = false;
    try {
      for (let frame; (frame = await reader.readFrame()) !== null;) got.push(frame.slice());
    } catch (error) {
      expectOneOf(error, [FrameError], `stream ${i}`);
      failed = true;
    }
    assert.equal(failed, expected.fails, `stream ${i}: error expected: ${expected.fails}`);
    assert.equal(got.length, expected.frames.length, `stream ${i}: frame count`);
    for (const [j, start] of expected.frames.entries()) {
      const body = wire.subarray(start, start + got[j].length);
      assert.ok(got[j].length > 0 && got[j].length <= limit, `stream ${i} frame ${j}: length`);
      assert.deepEqual(got[j], body, `stream ${i} frame ${j}: bytes`);
    }
    frames += got.length;
    failures += failed ? 1 : 0;
    cleanEnds += failed ? 0 : 1;
  }
  // the generator must exercise both outcomes, or the test proves little
  assert.ok(
    frames > 30_000 && failures > 10_000 && cleanEnds > 5_000,
    `frames ${frames}, failures ${failures}, clean ends ${cleanEnds}`,
  );
});

// Fixed keys (ephemerals too), so one valid transcript m1, m2, m3 fits every fresh handshake.
const fixed = {
  clientStatic: primitives.generateKeyPair(),
  serverStatic: primitives.generateKeyPair(),
  clientEphemeral: primitives.generateKeyPair(),
  serverEphemeral: primitives.generateKeyPair(),
};

function responder(): XXHandshake {
  return new XXHandshake({
    initiator: false,
    prologue: PROLOGUE,
    staticKeyPair: fixed.serverStatic,
    ephemeralKeyPair: fixed.serverEphemeral,
  });
}

function initiator(): XXHandshake {
  return new XXHandshake({
    initiator: true,
    prologue: PROLOGUE,
    staticKeyPair: fixed.clientStatic,
    ephemeralKeyPair: fixed.clientEphemeral,
  });
}

const transcript = (() => {
  const [client, server] = [initiator(), responder()];
  const m1 = client.writeMessage1();
  server.readMessage1(m1);
  const m2 = server.writeMessage2(encodeNamePayload("server"));
  client.readMessage2(m2);
  const m3 = client.writeMessage3(encodeNamePayload("alice"));
  return { m1, m2, m3 };
})();

/** The errors the handshake documents for bad bytes (DecryptError; RangeError for lengths and
 * low-order keys), and the ProtocolError of decodeNamePayload. */
const HANDSHAKE_ERRORS = [DecryptError, RangeError, ProtocolError];

Deno.test("the handshake messages survive 36,000 mutated and random inputs", () => {
  const random = seededRandom(0x5eed1);
  const outcomes = { ok: 0, failed: 0 };
  const run = (what: string, work: () => void) => {
    try {
      work();
      outcomes.ok++;
    } catch (error) {
      expectOneOf(error, HANDSHAKE_ERRORS, what);
      outcomes.failed++;
    }
  };
  for (let i = 0; i < 12_000; i++) {
    // message 1, as the server reads it (any payload is refused later by secure.ts)
    const m1 = mutate(random, transcript.m1);
    run(`m1 case ${i}`, () => void responder().readMessage1(m1));

    // message 2, as the client reads it, then its name payload
    const m2 = mutate(random, transcript.m2);
    run(`m2 case ${i}`, () => {
      const client = initiator();
      client.writeMessage1();
      decodeNamePayload(client.readMessage2(m2), "server");
    });

    // message 3, as the server reads it after a valid m1, then its name payload
    const m3 = mutate(random, transcript.m3);
    run(`m3 case ${i}`, () => {
      const server = responder();
      server.readMessage1(transcript.m1);
      server.writeMessage2(encodeNamePayload("server"));
      decodeNamePayload(server.readMessage3(m3), "client");
    });
  }
  assert.ok(outcomes.failed > 20_000, `failures ${outcomes.failed}`);
});

/** An in-memory connection: reads `chunks`, swallows writes. */
function fakeConnection(chunks: Uint8Array[]) {
  const reader = chunkReader(chunks);
  return {
    read: (buffer: Uint8Array) => reader.read(buffer),
    write: (bytes: Uint8Array) => Promise.resolve(bytes.length),
    close() {},
  };
}

Deno.test("acceptHandshake() ends 10,000 hostile byte streams with a ProtocolError only", async () => {
  const random = seededRandom(0xacce97);
  const server = primitives.generateKeyPair();
  let completed = 0;
  for (let i = 0; i < 10_000; i++) {
    // m1 as a frame (mutated or not), then a mutated m3 frame, then noise; sometimes all noise
    const roll = random();
    const wire = roll < 0.2 ? hostileStream(random, 2048) : concatBytes(
      roll < 0.5 ? encodeFrame(transcript.m1) : mutate(random, encodeFrame(transcript.m1)),
      mutate(random, encodeFrame(transcript.m3)),
      random() < 0.5 ? randomBytes(random, int(random, 40)) : new Uint8Array(0),
    );
    try {
      await acceptHandshake(fakeConnection(randomChunks(random, wire)), server, "server");
      completed++; // cannot happen: m3 is bound to the fixed m2, not to this one
    } catch (error) {
      expectOneOf(error, [ProtocolError], `stream ${i}`);
    }
  }
  assert.equal(completed, 0, "a handshake completed with a stranger's m3");
});

Deno.test("decodeMessage() and decodeNamePayload() take 20,000 inputs with a ProtocolError only", () => {
  const random = seededRandom(0xd3c0de);
  const valid = [
    encodeMessage({ type: "msg", text: "hello ünï 👋" }),
    encodeMessage({ type: "presence", event: "join", name: "bob", fingerprint: "0000:1111" }),
    encodeMessage({ type: "who", members: ["a", "b"] }),
    encodeNamePayload("alice"),
  ];
  let parsed = 0;
  for (let i = 0; i < 10_000; i++) {
    const input = mutate(random, valid[int(random, valid.length)]);
    try {
      const message = decodeMessage(input);
      assert.equal(typeof message.type, "string", `case ${i}`);
      assert.ok(!Array.isArray(message), `case ${i}`);
      parsed++;
    } catch (error) {
      expectOneOf(error, [ProtocolError], `message case ${i}`);
    }
    try {
      const name = decodeNamePayload(input, "client");
      assert.match(name, /^[A-Za-z0-9._-]{1,32}$/, `case ${i}`);
    } catch (error) {
      expectOneOf(error, [ProtocolError], `name case ${i}`);
    }
  }
  assert.ok(parsed > 500, `only ${parsed} inputs parsed; the mutations are too destructive`);
});

Deno.test("Channel.receive() ends 10,000 tampered transport streams with a ProtocolError only", async () => {
  const random = seededRandom(0xc4a77e1);
  const key = randomBytes(random, 32);
  const cipher = () => {
    const state = new CipherState();
    state.initializeKey(key);
    return state;
  };
  const empty = new Uint8Array(0);
  let delivered = 0;
  for (let i = 0; i < 10_000; i++) {
    // a few genuine sealed messages, one of them possibly tampered with, in framed form
    const sender = cipher();
    const frames: Uint8Array[] = [];
    const count = 1 + int(random, 4);
    let bad = random() < 0.8 ? int(random, count) : -1;
    for (let j = 0; j < count; j++) {
      const frame = encodeFrame(
        sender.encryptWithAd(empty, encodeMessage({ type: "msg", text: `#${j}` })),
      );
      if (j !== bad) {
        frames.push(frame);
        continue;
      }
      const tampered = mutate(random, frame);
      frames.push(tampered);
      // a mutation that only adds bytes after the frame leaves the frame itself genuine
      if (startsWith(tampered, frame)) bad = j + 1;
    }
    const channel = new Channel(
      fakeConnection(randomChunks(random, concatBytes(...frames))),
      cipher(),
      cipher(),
      { codec: ANY_MESSAGE },
    );
    let seen = 0;
    try {
      for (let message; (message = await channel.receive(1000)) !== null; seen++) {
        // anything delivered must be genuine and in order; nothing after a tampered frame
        assert.equal(message.text, `#${seen}`, `case ${i}`);
        assert.ok(bad === -1 || seen < bad, `case ${i}: a message after the tampered one`);
      }
      assert.ok(bad === -1 || seen <= bad, `case ${i}`);
    } catch (error) {
      expectOneOf(error, [ProtocolError], `stream ${i}`);
    }
    delivered += seen;
  }
  assert.ok(delivered > 5000, `delivered ${delivered}`);
  assert.deepEqual(unhandled, [], "unhandled rejections during the fuzzing");
});
