/**
 * Benchmarks of the Noise core against the raw primitives it wraps:
 * `deno bench --allow-read bench/crypto_bench.ts`.
 *
 * Targets: a full XX handshake pair costs no more than ~12 raw X25519 operations; sealing and
 * opening through a CipherState costs within a few percent of the raw AEAD call. The seal's
 * baseline is the bare node:crypto calls (createCipheriv, update, final, getAuthTag), which
 * leave ciphertext and tag in two buffers; `native.encrypt` joins them into a new one, and
 * `encryptWithAdInto` (the channel's path) writes them into a reused frame buffer.
 * @module
 */
import { createCipheriv } from "node:crypto";
import { native, noble, type Primitives } from "../lib/protocol/crypto.ts";
import { XXHandshake } from "../lib/protocol/handshake.ts";
import { CipherState } from "../lib/protocol/noise.ts";
import { MAX_PLAINTEXT_BYTES, PROLOGUE } from "../lib/protocol/constants.ts";

const EMPTY = new Uint8Array(0);
const SMALL_BYTES = 100;

/** One complete in-memory handshake, both sides, messages 1 to 3 and split. */
function handshakePair(
  p: Primitives,
  initiatorStatic: ReturnType<Primitives["generateKeyPair"]>,
  responderStatic: ReturnType<Primitives["generateKeyPair"]>,
): void {
  const initiator = new XXHandshake({
    initiator: true,
    prologue: PROLOGUE,
    staticKeyPair: initiatorStatic,
    primitives: p,
  });
  const responder = new XXHandshake({
    initiator: false,
    prologue: PROLOGUE,
    staticKeyPair: responderStatic,
    primitives: p,
  });
  responder.readMessage1(initiator.writeMessage1());
  initiator.readMessage2(responder.writeMessage2());
  responder.readMessage3(initiator.writeMessage3());
  initiator.split();
  responder.split();
}

// --- handshake ----------------------------------------------------------------

const alice = native.generateKeyPair();
const bob = native.generateKeyPair();

Deno.bench({
  name: "raw native X25519 dh",
  group: "handshake",
  baseline: true,
  fn() {
    native.dh(alice.secretKey, bob.publicKey);
  },
});

Deno.bench({
  name: "XX handshake pair (native)",
  group: "handshake",
  fn() {
    handshakePair(native, alice, bob);
  },
});

Deno.bench({
  name: "XX handshake pair (noble)",
  group: "handshake",
  fn() {
    handshakePair(noble, alice, bob);
  },
});

// --- seal and open ---------------------------------------------------------------

function sealAndOpen(size: number, label: string): void {
  const key = crypto.getRandomValues(new Uint8Array(32));
  const nonce = new Uint8Array(12);
  const plaintext = crypto.getRandomValues(new Uint8Array(size));
  const sealer = new CipherState(native);
  sealer.initializeKey(key);
  const sealed = native.encrypt(key, nonce, EMPTY, plaintext);
  const opener = new CipherState(native);
  opener.initializeKey(key);
  const frame = new Uint8Array(2 + size + 16);

  Deno.bench({
    name: `bare node:crypto seal ${size} B`,
    group: `seal-${label}`,
    baseline: true,
    fn() {
      const cipher = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
      cipher.update(plaintext);
      cipher.final();
      cipher.getAuthTag();
    },
  });
  Deno.bench({
    name: `raw native encrypt ${size} B`,
    group: `seal-${label}`,
    fn() {
      native.encrypt(key, nonce, EMPTY, plaintext);
    },
  });
  Deno.bench({
    name: `CipherState.encryptWithAdInto ${size} B (the channel's path)`,
    group: `seal-${label}`,
    fn() {
      sealer.encryptWithAdInto(EMPTY, plaintext, frame, 2);
    },
  });
  Deno.bench({
    name: `CipherState.encryptWithAd ${size} B`,
    group: `seal-${label}`,
    fn() {
      sealer.encryptWithAd(EMPTY, plaintext);
    },
  });
  Deno.bench({
    name: `raw native decrypt ${size} B`,
    group: `open-${label}`,
    baseline: true,
    fn() {
      native.decrypt(key, nonce, EMPTY, sealed);
    },
  });
  Deno.bench({
    name: `CipherState.decryptWithAd ${size} B`,
    group: `open-${label}`,
    fn() {
      // the same (nonce 0) message every time, so the cost is the same work as the baseline
      opener.setNonce(0);
      opener.decryptWithAd(EMPTY, sealed);
    },
  });
}

sealAndOpen(MAX_PLAINTEXT_BYTES, "64KiB");
sealAndOpen(SMALL_BYTES, "100B");
