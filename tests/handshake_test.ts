/**
 * The XX handshake (lib/handshake.ts): the shared cacophony and snow vectors with both backends,
 * two parties in one process, and a table of hostile inputs.
 * @module
 */
import assert from "node:assert/strict";
import { type KeyPair, native, noble, type Primitives } from "../lib/protocol/crypto.ts";
import {
  MESSAGE1_MIN_BYTES,
  MESSAGE2_MIN_BYTES,
  MESSAGE3_MIN_BYTES,
  type TransportKeys,
  XXHandshake,
} from "../lib/protocol/handshake.ts";
import type { CipherState } from "../lib/protocol/noise.ts";
import { PROLOGUE, PROTOCOL_NAME } from "../lib/protocol/constants.ts";
import { DecryptError } from "../lib/errors.ts";

const BACKENDS: Primitives[] = [native, noble];
const EMPTY = new Uint8Array(0);
const text = (s: string) => new TextEncoder().encode(s);
const fromHex = (hex: string) => Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
const toHex = (bytes: Uint8Array) =>
  Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

// --- The vectors ---------------------------------------------------------------

interface Vector {
  protocol_name: string;
  init_prologue: string;
  init_static: string;
  init_ephemeral: string;
  resp_prologue: string;
  resp_static: string;
  resp_ephemeral: string;
  handshake_hash?: string;
  messages: { payload: string; ciphertext: string }[];
}

const VECTORS_URL = new URL(
  "../../shared/vectors/noise_xx_25519_chachapoly_sha256.json",
  import.meta.url,
);
const vectorFile = JSON.parse(await Deno.readTextFile(VECTORS_URL)) as {
  vector_sources: string[];
  vectors: Vector[];
};
const VECTORS = vectorFile.vectors;

function keyPairOf(p: Primitives, secretHex: string): KeyPair {
  const secretKey = fromHex(secretHex);
  return { secretKey, publicKey: p.publicKeyOf(secretKey) };
}

/** The initiator and responder of a vector. */
function vectorParties(p: Primitives, v: Vector): [XXHandshake, XXHandshake] {
  return [
    new XXHandshake({
      initiator: true,
      prologue: fromHex(v.init_prologue),
      staticKeyPair: keyPairOf(p, v.init_static),
      ephemeralKeyPair: keyPairOf(p, v.init_ephemeral),
      primitives: p,
    }),
    new XXHandshake({
      initiator: false,
      prologue: fromHex(v.resp_prologue),
      staticKeyPair: keyPairOf(p, v.resp_static),
      ephemeralKeyPair: keyPairOf(p, v.resp_ephemeral),
      primitives: p,
    }),
  ];
}

/** Runs the three handshake messages of a vector, checking each byte for byte. */
function runVectorHandshake(
  p: Primitives,
  v: Vector,
): [TransportKeys, TransportKeys, XXHandshake, XXHandshake] {
  const [initiator, responder] = vectorParties(p, v);
  const [m1, m2, m3] = v.messages.map((m) => [fromHex(m.payload), m.ciphertext] as const);

  const message1 = initiator.writeMessage1(m1[0]);
  assert.equal(toHex(message1), m1[1], "message 1");
  assert.deepEqual(responder.readMessage1(message1), m1[0]);

  const message2 = responder.writeMessage2(m2[0]);
  assert.equal(toHex(message2), m2[1], "message 2");
  assert.deepEqual(initiator.readMessage2(message2), m2[0]);

  const message3 = initiator.writeMessage3(m3[0]);
  assert.equal(toHex(message3), m3[1], "message 3");
  assert.deepEqual(responder.readMessage3(message3), m3[0]);

  assert.equal(initiator.isComplete && responder.isComplete, true);
  assert.deepEqual(initiator.handshakeHash, responder.handshakeHash);
  if (v.handshake_hash !== undefined) {
    assert.equal(toHex(initiator.handshakeHash), v.handshake_hash, "handshake hash");
  }
  return [initiator.split(), responder.split(), initiator, responder];
}

Deno.test("the vector file holds XX vectors from cacophony and snow, one with a handshake hash", () => {
  assert.equal(VECTORS.length >= 2, true);
  assert.equal(VECTORS.some((v) => v.handshake_hash !== undefined), true);
  for (const v of VECTORS) {
    assert.equal(v.protocol_name, PROTOCOL_NAME);
    assert.equal(v.messages.length > 3, true); // transport messages follow the handshake
  }
});

for (const p of BACKENDS) {
  VECTORS.forEach((v, index) => {
    Deno.test(`XXHandshake reproduces vector ${index} byte for byte, then its transport messages (${p.name})`, () => {
      const [initiator, responder] = runVectorHandshake(p, v);
      // cacophony convention: senders keep alternating; message i is the initiator's when even
      for (const [i, m] of v.messages.entries()) {
        if (i < 3) continue;
        const [sender, receiver] = i % 2 === 0
          ? [initiator.send, responder.receive]
          : [responder.send, initiator.receive];
        const sealed = sender.encryptWithAd(EMPTY, fromHex(m.payload));
        assert.equal(toHex(sealed), m.ciphertext, `transport message ${i}`);
        assert.deepEqual(receiver.decryptWithAd(EMPTY, sealed), fromHex(m.payload));
      }
    });
  });
}

Deno.test("the vectors' transport messages do not fit the one-way convention (initiator sends all)", () => {
  for (const v of VECTORS) {
    const [initiator] = runVectorHandshake(native, v);
    const sealed = initiator.send.encryptWithAd(EMPTY, fromHex(v.messages[3].payload));
    assert.notEqual(toHex(sealed), v.messages[3].ciphertext);
  }
});

// --- Two parties in one process ---------------------------------------------------

function parties(
  p: Primitives = native,
  prologues: [Uint8Array, Uint8Array] = [PROLOGUE, PROLOGUE],
) {
  const initiatorStatic = p.generateKeyPair(), responderStatic = p.generateKeyPair();
  const initiator = new XXHandshake({
    initiator: true,
    prologue: prologues[0],
    staticKeyPair: initiatorStatic,
    primitives: p,
  });
  const responder = new XXHandshake({
    initiator: false,
    prologue: prologues[1],
    staticKeyPair: responderStatic,
    primitives: p,
  });
  return { initiator, responder, initiatorStatic, responderStatic };
}

/** Runs a whole handshake with empty payloads; returns the three messages. */
function handshake(initiator: XXHandshake, responder: XXHandshake): Uint8Array[] {
  const m1 = initiator.writeMessage1();
  responder.readMessage1(m1);
  const m2 = responder.writeMessage2();
  initiator.readMessage2(m2);
  const m3 = initiator.writeMessage3();
  responder.readMessage3(m3);
  return [m1, m2, m3];
}

function sealOpen(from: CipherState, to: CipherState, plaintext: Uint8Array): void {
  assert.deepEqual(to.decryptWithAd(EMPTY, from.encryptWithAd(EMPTY, plaintext)), plaintext);
}

for (const p of BACKENDS) {
  Deno.test(`both sides agree on the handshake hash after every message, then seal and open both ways (${p.name})`, () => {
    const { initiator, responder, initiatorStatic, responderStatic } = parties(p);
    const seen = new Set<string>();
    const agree = (step: string) => {
      assert.deepEqual(initiator.transcriptHash, responder.transcriptHash, step);
      seen.add(toHex(initiator.transcriptHash));
    };
    agree("after the prologue");
    assert.equal(responder.readMessage1(initiator.writeMessage1(text("one"))).length, 3);
    agree("after message 1");
    assert.equal(initiator.remoteStaticKey, undefined);
    assert.deepEqual(initiator.readMessage2(responder.writeMessage2(text("two"))), text("two"));
    agree("after message 2");
    assert.deepEqual(initiator.remoteStaticKey, responderStatic.publicKey);
    assert.equal(responder.remoteStaticKey, undefined);
    assert.equal(initiator.isComplete, false);
    assert.deepEqual(responder.readMessage3(initiator.writeMessage3(text("three"))), text("three"));
    agree("after message 3");
    assert.equal(seen.size, 4); // h changed at every step
    assert.deepEqual(responder.remoteStaticKey, initiatorStatic.publicKey);
    assert.deepEqual(initiator.handshakeHash, responder.handshakeHash);

    const client = initiator.split(), server = responder.split();
    for (const size of [0, 1, 100, 65519]) {
      const plaintext = crypto.getRandomValues(new Uint8Array(Math.min(size, 65536)));
      sealOpen(client.send, server.receive, plaintext);
      sealOpen(server.send, client.receive, plaintext);
    }
    // each direction has its own key
    assert.throws(
      () => client.receive.decryptWithAd(EMPTY, client.send.encryptWithAd(EMPTY, text("x"))),
      DecryptError,
    );
  });
}

Deno.test("native and noble handshakes interoperate", () => {
  const initiatorStatic = native.generateKeyPair(), responderStatic = noble.generateKeyPair();
  const initiator = new XXHandshake({
    initiator: true,
    prologue: PROLOGUE,
    staticKeyPair: initiatorStatic,
    primitives: native,
  });
  const responder = new XXHandshake({
    initiator: false,
    prologue: PROLOGUE,
    staticKeyPair: responderStatic,
    primitives: noble,
  });
  handshake(initiator, responder);
  const client = initiator.split(), server = responder.split();
  sealOpen(client.send, server.receive, text("native to noble"));
  sealOpen(server.send, client.receive, text("noble to native"));
});

Deno.test("two handshakes with the same static keys derive different keys (fresh ephemerals)", () => {
  const a = parties(), b = parties();
  handshake(a.initiator, a.responder);
  handshake(b.initiator, b.responder);
  assert.notDeepEqual(a.initiator.handshakeHash, b.initiator.handshakeHash);
});

Deno.test("split() with rekeyInterval turns on auto rekey in both directions", () => {
  const { initiator, responder } = parties();
  handshake(initiator, responder);
  const client = initiator.split({ rekeyInterval: 2 }), server = responder.split();
  const sealed = [0, 1, 2].map((i) => client.send.encryptWithAd(EMPTY, text(`m${i}`)));
  assert.deepEqual(server.receive.decryptWithAd(EMPTY, sealed[0]), text("m0"));
  assert.deepEqual(server.receive.decryptWithAd(EMPTY, sealed[1]), text("m1"));
  // the server did not turn auto rekey on, so the third message (new key) does not open
  assert.throws(() => server.receive.decryptWithAd(EMPTY, sealed[2]), DecryptError);
  server.receive.rekey();
  assert.deepEqual(server.receive.decryptWithAd(EMPTY, sealed[2]), text("m2"));
});

Deno.test("split() leaves the caller's static and ephemeral key pairs intact", () => {
  const v = VECTORS[0];
  const ephemeral = keyPairOf(native, v.init_ephemeral);
  const staticPair = keyPairOf(native, v.init_static);
  const copies = [ephemeral.secretKey.slice(), staticPair.secretKey.slice()];
  const initiator = new XXHandshake({
    initiator: true,
    prologue: EMPTY,
    staticKeyPair: staticPair,
    ephemeralKeyPair: ephemeral,
  });
  const responder = new XXHandshake({
    initiator: false,
    prologue: EMPTY,
    staticKeyPair: native.generateKeyPair(),
  });
  handshake(initiator, responder);
  initiator.split();
  assert.deepEqual([ephemeral.secretKey, staticPair.secretKey], copies);
});

// --- Transport messages on the wire ----------------------------------------------

Deno.test("a replayed transport message throws DecryptError and the next genuine one still opens", () => {
  const { initiator, responder } = parties();
  handshake(initiator, responder);
  const client = initiator.split(), server = responder.split();
  const first = client.send.encryptWithAd(EMPTY, text("first"));
  const second = client.send.encryptWithAd(EMPTY, text("second"));
  assert.deepEqual(server.receive.decryptWithAd(EMPTY, first), text("first"));
  assert.throws(() => server.receive.decryptWithAd(EMPTY, first), DecryptError);
  assert.equal(server.receive.nonce, 1n);
  assert.deepEqual(server.receive.decryptWithAd(EMPTY, second), text("second"));
});

Deno.test("reordered transport messages fail to open", () => {
  const { initiator, responder } = parties();
  handshake(initiator, responder);
  const client = initiator.split(), server = responder.split();
  const first = client.send.encryptWithAd(EMPTY, text("first"));
  const second = client.send.encryptWithAd(EMPTY, text("second"));
  assert.throws(() => server.receive.decryptWithAd(EMPTY, second), DecryptError);
  assert.deepEqual(server.receive.decryptWithAd(EMPTY, first), text("first"));
  assert.deepEqual(server.receive.decryptWithAd(EMPTY, second), text("second"));
});

// --- Hostile handshake input -------------------------------------------------------

/** A copy of `bytes` with bit `bit` of byte `index` flipped (negative index: from the end). */
function flip(bytes: Uint8Array, index: number, bit = 0): Uint8Array {
  const copy = bytes.slice();
  const i = index < 0 ? copy.length + index : index;
  copy[i] ^= 1 << bit;
  return copy;
}

const isDecryptError = (e: unknown) =>
  e instanceof DecryptError && e.message === "failed to decrypt and authenticate message";

// Message 1 is not authenticated (no key yet): tampering shows when the initiator reads message 2.
const MESSAGE1_FLIPS: [string, number, number][] = [
  ["the first byte of e", 0, 0],
  ["the top bit of e, which X25519 ignores but h does not", 31, 7],
  ["the payload", 32, 3],
  ["the last payload byte", -1, 0],
];
for (const [where, index, bit] of MESSAGE1_FLIPS) {
  Deno.test(`a flipped bit in message 1 (${where}) makes the initiator reject message 2`, () => {
    const { initiator, responder } = parties();
    const m1 = initiator.writeMessage1(text("hello"));
    responder.readMessage1(flip(m1, index, bit));
    const m2 = responder.writeMessage2(text("secret"));
    assert.throws(() => initiator.readMessage2(m2), isDecryptError);
    assert.equal(initiator.remoteStaticKey, undefined);
  });
}

const MESSAGE2_FLIPS: [string, number][] = [
  ["e", 0],
  ["the end of e", 31],
  ["the encrypted static key", 40],
  ["the static key's tag", 79],
  ["the payload", 80],
  ["the payload tag", -1],
];
for (const [where, index] of MESSAGE2_FLIPS) {
  Deno.test(`a flipped bit in message 2 (${where}) fails with DecryptError and no payload`, () => {
    const { initiator, responder } = parties();
    responder.readMessage1(initiator.writeMessage1());
    const m2 = responder.writeMessage2(text("payload"));
    let payload: Uint8Array | undefined;
    assert.throws(() => {
      payload = initiator.readMessage2(flip(m2, index));
    }, isDecryptError);
    assert.equal(payload, undefined);
    assert.equal(initiator.remoteStaticKey, undefined);
    // a failed handshake is abandoned, not resumed with the genuine message
    assert.throws(() => initiator.readMessage2(m2), /invalid handshake state: .*has failed/);
  });
}

const MESSAGE3_FLIPS: [string, number][] = [
  ["the encrypted static key", 0],
  ["the static key's tag", 47],
  ["the payload", 48],
  ["the payload tag", -1],
];
for (const [where, index] of MESSAGE3_FLIPS) {
  Deno.test(`a flipped bit in message 3 (${where}) fails with DecryptError and no payload`, () => {
    const { initiator, responder } = parties();
    responder.readMessage1(initiator.writeMessage1());
    initiator.readMessage2(responder.writeMessage2());
    const m3 = initiator.writeMessage3(text("payload"));
    let payload: Uint8Array | undefined;
    assert.throws(() => {
      payload = responder.readMessage3(flip(m3, index));
    }, isDecryptError);
    assert.equal(payload, undefined);
    assert.equal(responder.remoteStaticKey, undefined);
    assert.equal(responder.isComplete, false);
    assert.throws(() => responder.split(), /invalid handshake state: cannot split/);
  });
}

Deno.test("short handshake messages throw a RangeError naming the message and the sizes", () => {
  assert.deepEqual([MESSAGE1_MIN_BYTES, MESSAGE2_MIN_BYTES, MESSAGE3_MIN_BYTES], [32, 96, 64]);
  const cases: [string, (length: number) => void, number][] = [
    ["1", (length) => parties().responder.readMessage1(new Uint8Array(length)), 32],
    ["2", (length) => {
      const { initiator } = parties();
      initiator.writeMessage1();
      initiator.readMessage2(new Uint8Array(length));
    }, 96],
    ["3", (length) => {
      const { initiator, responder } = parties();
      responder.readMessage1(initiator.writeMessage1());
      responder.writeMessage2();
      responder.readMessage3(new Uint8Array(length));
    }, 64],
  ];
  for (const [message, read, minimum] of cases) {
    for (const length of [0, 1, minimum - 1]) {
      assert.throws(() => read(length), {
        name: "RangeError",
        message:
          `handshake message ${message} is too short: ${length} bytes, at least ${minimum} expected`,
      });
    }
  }
});

Deno.test("a genuine message cut by one byte still fails: RangeError at the minimum, DecryptError above", () => {
  // empty payloads: messages 2 and 3 are exactly the minimum size
  const a = parties();
  a.responder.readMessage1(a.initiator.writeMessage1());
  const m2 = a.responder.writeMessage2();
  assert.equal(m2.length, MESSAGE2_MIN_BYTES);
  assert.throws(() => a.initiator.readMessage2(m2.subarray(0, m2.length - 1)), RangeError);

  const b = parties();
  b.responder.readMessage1(b.initiator.writeMessage1());
  b.initiator.readMessage2(b.responder.writeMessage2());
  const m3 = b.initiator.writeMessage3(text("payload"));
  assert.throws(() => b.responder.readMessage3(m3.subarray(0, m3.length - 1)), isDecryptError);
});

Deno.test("a message over 65535 bytes is refused (Noise §3)", () => {
  const { initiator, responder } = parties();
  assert.throws(() => initiator.writeMessage1(new Uint8Array(65535 - 31)), /at most 65535/);
  assert.throws(() => responder.readMessage1(new Uint8Array(65536)), /too long: 65536 bytes/);
});

Deno.test("a different prologue on one side makes the initiator reject message 2", () => {
  const { initiator, responder } = parties(native, [PROLOGUE, text("chat/2")]);
  responder.readMessage1(initiator.writeMessage1());
  const m2 = responder.writeMessage2();
  assert.notDeepEqual(initiator.transcriptHash, responder.transcriptHash);
  assert.throws(() => initiator.readMessage2(m2), isDecryptError);
});

Deno.test("an all-zero ephemeral key in message 1 fails with a RangeError at message 2", () => {
  const { responder } = parties();
  responder.readMessage1(new Uint8Array(32));
  assert.throws(() => responder.writeMessage2(), /all-zero shared secret/);
  assert.throws(() => responder.writeMessage2(), /has failed/);
});

Deno.test("calling handshake methods out of order or in the wrong role throws a state error", () => {
  const cases: [string, (h: ReturnType<typeof parties>) => unknown, RegExp][] = [
    [
      "initiator reads message 1",
      (h) => h.initiator.readMessage1(new Uint8Array(32)),
      /cannot read message 1 as initiator$/,
    ],
    [
      "responder writes message 1",
      (h) => h.responder.writeMessage1(),
      /cannot write message 1 as responder$/,
    ],
    [
      "initiator writes message 2",
      (h) => h.initiator.writeMessage2(),
      /^invalid handshake state: cannot write message 2 as initiator$/,
    ],
    [
      "responder reads message 2",
      (h) => h.responder.readMessage2(new Uint8Array(96)),
      /cannot read message 2 as responder$/,
    ],
    [
      "responder writes message 3",
      (h) => h.responder.writeMessage3(),
      /cannot write message 3 as responder$/,
    ],
    [
      "initiator reads message 3",
      (h) => h.initiator.readMessage3(new Uint8Array(64)),
      /cannot read message 3 as initiator$/,
    ],
    [
      "initiator writes message 3 first",
      (h) => h.initiator.writeMessage3(),
      /cannot write message 3 as initiator \(the next step is message 1\)/,
    ],
    [
      "responder writes message 2 first",
      (h) => h.responder.writeMessage2(),
      /cannot write message 2 as responder \(the next step is message 1\)/,
    ],
    ["initiator writes message 1 twice", (h) => {
      h.initiator.writeMessage1();
      h.initiator.writeMessage1();
    }, /cannot write message 1 as initiator \(the next step is message 2\)/],
    [
      "initiator reads message 2 before writing message 1",
      (h) => h.initiator.readMessage2(new Uint8Array(96)),
      /the next step is message 1/,
    ],
    [
      "split before completion",
      (h) => h.initiator.split(),
      /cannot split \(the next step is message 1\)/,
    ],
    [
      "handshake hash before completion",
      (h) => h.responder.handshakeHash,
      /no handshake hash before completion/,
    ],
    ["split twice", (h) => {
      handshake(h.initiator, h.responder);
      h.initiator.split();
      h.initiator.split();
    }, /cannot split \(the handshake was already split\)/],
    ["message 3 after completion", (h) => {
      handshake(h.initiator, h.responder);
      h.initiator.writeMessage3();
    }, /cannot write message 3 as initiator \(the handshake is complete\)/],
  ];
  for (const [what, call, message] of cases) {
    assert.throws(() => call(parties()), (e: unknown) => {
      assert.ok(e instanceof Error && !(e instanceof DecryptError), what);
      assert.match(e.message, message, what);
      return true;
    });
  }
});

Deno.test("the handshake hash stays readable after split and the split CipherStates work", () => {
  const { initiator, responder } = parties();
  handshake(initiator, responder);
  const hash = initiator.handshakeHash;
  const client = initiator.split(), server = responder.split();
  assert.deepEqual(initiator.handshakeHash, hash);
  assert.equal(initiator.isComplete, true);
  sealOpen(client.send, server.receive, text("ok"));
});

Deno.test("an XXHandshake uses the backend it is given: 3 DH per side and one key pair each", () => {
  const calls = new Map<string, number>();
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  const p: Primitives = {
    name: "noble",
    generateKeyPair: () => (count("generateKeyPair"), noble.generateKeyPair()),
    publicKeyOf: (s) => (count("publicKeyOf"), noble.publicKeyOf(s)),
    dh: (s, k) => (count("dh"), noble.dh(s, k)),
    encrypt: (k, n, a, t) => (count("encrypt"), noble.encrypt(k, n, a, t)),
    encryptInto: (k, n, a, t, o, i) => (count("encrypt"), noble.encryptInto(k, n, a, t, o, i)),
    decrypt: (k, n, a, c) => (count("decrypt"), noble.decrypt(k, n, a, c)),
  };
  const { initiator, responder } = parties(p);
  calls.clear(); // parties() made the two static key pairs
  handshake(initiator, responder);
  initiator.split();
  responder.split();
  // encrypted: s twice and 2 payloads each way (message 1's payload has no key yet)
  assert.deepEqual(Object.fromEntries(calls), {
    generateKeyPair: 2,
    dh: 6,
    encrypt: 4,
    decrypt: 4,
  });
});
