/**
 * CipherState and SymmetricState (lib/noise.ts), and the two crypto backends against each other.
 * @module
 */
import assert from "node:assert/strict";
import { createHash, hkdfSync } from "node:crypto";
import { hkdf as rfc5869Hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { native, noble, type Primitives } from "../lib/protocol/crypto.ts";
import { CipherState, hkdf, SymmetricState } from "../lib/protocol/noise.ts";
import {
  MAX_NONCE,
  MAX_PLAINTEXT_BYTES,
  PROTOCOL_NAME,
  REKEY_INTERVAL,
} from "../lib/protocol/constants.ts";
import { DecryptError } from "../lib/errors.ts";

const BACKENDS: Primitives[] = [native, noble];
const EMPTY = new Uint8Array(0);
const random = (length: number) => {
  const bytes = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call
  for (let i = 0; i < length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
};
const text = (s: string) => new TextEncoder().encode(s);

/** The ChaChaPoly nonce of counter n, written out by hand (Noise §12.3). */
function nonceBytes(n: bigint): Uint8Array {
  const bytes = new Uint8Array(12);
  for (let i = 0; i < 8; i++) bytes[4 + i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

/** Two CipherStates sharing one random key. */
function pair(p: Primitives): [CipherState, CipherState, Uint8Array] {
  const key = random(32);
  const sender = new CipherState(p);
  const receiver = new CipherState(p);
  sender.initializeKey(key);
  receiver.initializeKey(key);
  return [sender, receiver, key];
}

// --- HKDF and SymmetricState -------------------------------------------------

Deno.test("hkdf() equals RFC 5869 HKDF with ck as salt and empty info, for 2 and 3 outputs", () => {
  for (const ikmLength of [0, 32, 100]) {
    const ck = random(32), ikm = random(ikmLength);
    for (const outputs of [2, 3] as const) {
      const expected = rfc5869Hkdf(sha256, ikm, ck, EMPTY, 32 * outputs);
      const openssl = new Uint8Array(hkdfSync("sha256", ikm, ck, EMPTY, 32 * outputs));
      assert.deepEqual(expected, openssl);
      const got = hkdf(ck, ikm, outputs);
      assert.equal(got.length, outputs);
      for (let i = 0; i < outputs; i++) {
        assert.deepEqual(got[i], expected.subarray(32 * i, 32 * (i + 1)), `output ${i + 1}`);
      }
    }
  }
});

Deno.test("initializeSymmetric() uses a 32-byte name as h, pads a shorter one and hashes a longer one", () => {
  const state = new SymmetricState();
  state.initializeSymmetric(PROTOCOL_NAME);
  assert.deepEqual(state.getHandshakeHash(), text(PROTOCOL_NAME));

  state.initializeSymmetric("Noise_NN_25519_AESGCM_SHA256"); // 28 bytes
  const padded = new Uint8Array(32);
  padded.set(text("Noise_NN_25519_AESGCM_SHA256"));
  assert.deepEqual(state.getHandshakeHash(), padded);

  const long = "Noise_XXfallback+psk0_25519_ChaChaPoly_SHA256";
  state.initializeSymmetric(long);
  assert.deepEqual(
    state.getHandshakeHash(),
    new Uint8Array(createHash("sha256").update(long).digest()),
  );
});

Deno.test("mixHash() sets h to SHA-256(h || data)", () => {
  const state = new SymmetricState();
  state.initializeSymmetric(PROTOCOL_NAME);
  state.mixHash(text("chat/1"));
  const expected = createHash("sha256").update(text(PROTOCOL_NAME)).update(text("chat/1")).digest();
  assert.deepEqual(state.getHandshakeHash(), new Uint8Array(expected));
});

for (const p of BACKENDS) {
  Deno.test(`mixKey() and mixKeyAndHash() key the cipher as Noise §5.2 says (${p.name})`, () => {
    const name = text(PROTOCOL_NAME);
    const ikm1 = random(32), ikm2 = random(32), plaintext = text("hello");
    const state = new SymmetricState(p);
    state.initializeSymmetric(PROTOCOL_NAME);
    // before any key, encryptAndHash() passes the plaintext through and hashes it
    assert.deepEqual(state.encryptAndHash(plaintext), plaintext);
    let h = new Uint8Array(createHash("sha256").update(name).update(plaintext).digest());
    assert.deepEqual(state.getHandshakeHash(), h);

    state.mixKey(ikm1);
    const okm1 = new Uint8Array(hkdfSync("sha256", ikm1, name, EMPTY, 64));
    const ct1 = state.encryptAndHash(plaintext);
    assert.deepEqual(ct1, p.encrypt(okm1.subarray(32), nonceBytes(0n), h, plaintext));
    h = new Uint8Array(createHash("sha256").update(h).update(ct1).digest());

    state.mixKeyAndHash(ikm2);
    const okm2 = new Uint8Array(hkdfSync("sha256", ikm2, okm1.subarray(0, 32), EMPTY, 96));
    h = new Uint8Array(createHash("sha256").update(h).update(okm2.subarray(32, 64)).digest());
    assert.deepEqual(state.getHandshakeHash(), h);
    const ct2 = state.encryptAndHash(plaintext);
    assert.deepEqual(ct2, p.encrypt(okm2.subarray(64), nonceBytes(0n), h, plaintext));

    // split() derives from the latest chaining key
    const [first, second] = state.split();
    const keys = new Uint8Array(hkdfSync("sha256", EMPTY, okm2.subarray(0, 32), EMPTY, 64));
    assert.deepEqual(
      first.encryptWithAd(EMPTY, plaintext),
      p.encrypt(keys.subarray(0, 32), nonceBytes(0n), EMPTY, plaintext),
    );
    assert.deepEqual(
      second.encryptWithAd(EMPTY, plaintext),
      p.encrypt(keys.subarray(32), nonceBytes(0n), EMPTY, plaintext),
    );
  });
}

Deno.test("decryptAndHash() throws DecryptError on a forged ciphertext and leaves h unchanged", () => {
  const writer = new SymmetricState(), reader = new SymmetricState();
  for (const s of [writer, reader]) {
    s.initializeSymmetric(PROTOCOL_NAME);
    s.mixKey(new Uint8Array(32).fill(9));
  }
  const sealed = writer.encryptAndHash(text("payload"));
  const before = reader.getHandshakeHash();
  const forged = sealed.slice();
  forged[0] ^= 1;
  assert.throws(() => reader.decryptAndHash(forged), DecryptError);
  assert.deepEqual(reader.getHandshakeHash(), before);
  assert.deepEqual(reader.decryptAndHash(sealed), text("payload"));
  assert.deepEqual(reader.getHandshakeHash(), writer.getHandshakeHash());
});

// --- CipherState -------------------------------------------------------------

for (const p of BACKENDS) {
  Deno.test(`encryptWithAd() uses 4 zero bytes then the counter little-endian as nonce (${p.name})`, () => {
    const [sender, , key] = pair(p);
    const n = 0x0102_0304_0506_0708n;
    sender.setNonce(n);
    const ad = text("ad");
    const plaintext = random(100);
    assert.deepEqual(
      sender.encryptWithAd(ad, plaintext),
      p.encrypt(key, nonceBytes(n), ad, plaintext),
    );
    assert.equal(sender.nonce, n + 1n);
    // the same nonce given as a number
    sender.setNonce(5);
    assert.deepEqual(
      sender.encryptWithAd(ad, plaintext),
      p.encrypt(key, nonceBytes(5n), ad, plaintext),
    );
    // the low 32 bits carry into the high ones
    sender.setNonce(0xffff_ffff);
    sender.encryptWithAd(ad, plaintext);
    assert.equal(sender.nonce, 0x1_0000_0000n);
    assert.deepEqual(
      sender.encryptWithAd(ad, plaintext),
      p.encrypt(key, nonceBytes(0x1_0000_0000n), ad, plaintext),
    );
  });

  Deno.test(`a CipherState seals and opens with and without ad, sizes 0 to 65519 (${p.name})`, () => {
    const [sender, receiver] = pair(p);
    for (const size of [0, 1, 100, MAX_PLAINTEXT_BYTES]) {
      for (const ad of [EMPTY, random(32)]) {
        const plaintext = random(size);
        const sealed = sender.encryptWithAd(ad, plaintext);
        assert.equal(sealed.length, size + 16);
        assert.deepEqual(receiver.decryptWithAd(ad, sealed), plaintext);
      }
    }
    assert.equal(receiver.nonce, 8n);
  });

  Deno.test(`a failed decryption throws DecryptError and does not advance the nonce (${p.name})`, () => {
    const [sender, receiver] = pair(p);
    const ad = text("ad");
    const sealed = sender.encryptWithAd(ad, text("genuine"));
    const forgeries: [string, Uint8Array, Uint8Array][] = [
      ["a flipped body bit", flip(sealed, 0), ad],
      ["a flipped tag bit", flip(sealed, sealed.length - 1), ad],
      ["a truncated tag", sealed.subarray(0, sealed.length - 1), ad],
      ["fewer bytes than a tag", sealed.subarray(0, 15), ad],
      ["no bytes", EMPTY, ad],
      ["other ad", sealed, text("AD")],
      ["missing ad", sealed, EMPTY],
    ];
    for (const [what, ciphertext, forgedAd] of forgeries) {
      assert.throws(
        () => receiver.decryptWithAd(forgedAd, ciphertext),
        (e: unknown) => e instanceof DecryptError && e.message === new DecryptError().message,
        what,
      );
      assert.equal(receiver.nonce, 0n, what);
    }
    assert.deepEqual(receiver.decryptWithAd(ad, sealed), text("genuine"));
    assert.equal(receiver.nonce, 1n);
  });

  Deno.test(`a CipherState uses nonce 2^64-2 and then refuses to encrypt or decrypt (${p.name})`, () => {
    const [sender, receiver, key] = pair(p);
    sender.setNonce(MAX_NONCE - 1n);
    receiver.setNonce(MAX_NONCE - 1n);
    const sealed = sender.encryptWithAd(EMPTY, text("last"));
    assert.deepEqual(sealed, p.encrypt(key, nonceBytes(MAX_NONCE - 1n), EMPTY, text("last")));
    assert.deepEqual(receiver.decryptWithAd(EMPTY, sealed), text("last"));
    assert.equal(sender.nonce, MAX_NONCE);
    assert.throws(() => sender.encryptWithAd(EMPTY, text("one more")), RangeError);
    assert.throws(() => receiver.decryptWithAd(EMPTY, sealed), /nonce exhausted/);
    assert.equal(sender.nonce, MAX_NONCE); // never wraps to 0
  });
}

Deno.test("setNonce() accepts 0..2^64-1 and rejects anything else", () => {
  const state = new CipherState();
  for (const good of [0, 1, Number.MAX_SAFE_INTEGER, 0n, MAX_NONCE - 1n, MAX_NONCE]) {
    state.setNonce(good);
    assert.equal(state.nonce, BigInt(good));
  }
  for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 64, -1n, MAX_NONCE + 1n]) {
    assert.throws(() => state.setNonce(bad), RangeError, String(bad));
  }
});

Deno.test("initializeKey() takes 32 bytes or none, and without a key text passes through uncounted", () => {
  const state = new CipherState();
  assert.equal(state.hasKey(), false);
  const plaintext = text("clear");
  assert.equal(state.encryptWithAd(EMPTY, plaintext), plaintext);
  assert.equal(state.decryptWithAd(EMPTY, plaintext), plaintext);
  assert.equal(state.nonce, 0n);
  assert.throws(
    () => state.initializeKey(new Uint8Array(31)),
    /cipher key \(when not empty\) must be 32 bytes, got 31/,
  );
  assert.throws(() => state.rekey(), /no key/);
  state.initializeKey(new Uint8Array(32));
  assert.equal(state.hasKey(), true);
  assert.notDeepEqual(state.encryptWithAd(EMPTY, plaintext), plaintext);
  state.initializeKey(EMPTY);
  assert.equal(state.hasKey(), false);
});

Deno.test("initializeKey() copies the key, so the caller's array may be reused", () => {
  const key = random(32);
  const [sender, receiver] = [new CipherState(), new CipherState()];
  sender.initializeKey(key);
  receiver.initializeKey(key.slice());
  key.fill(0);
  assert.deepEqual(
    receiver.decryptWithAd(EMPTY, sender.encryptWithAd(EMPTY, text("x"))),
    text("x"),
  );
});

Deno.test("a wiped CipherState throws instead of passing plaintext through", () => {
  const [sender] = pair(native);
  sender.wipe();
  assert.equal(sender.hasKey(), false);
  assert.throws(() => sender.encryptWithAd(EMPTY, text("secret")), /wiped/);
  assert.throws(() => sender.decryptWithAd(EMPTY, text("secret")), /wiped/);
  assert.throws(() => sender.rekey(), /wiped/);
});

// --- Rekey -------------------------------------------------------------------

for (const p of BACKENDS) {
  Deno.test(`rekey() sets k to ENCRYPT(k, 2^64-1, empty, zeros)[0..32] and keeps the nonce (${p.name})`, () => {
    const [sender, receiver, key] = pair(p);
    const stale = new CipherState(p);
    stale.initializeKey(key);
    for (const s of [sender, receiver, stale]) s.setNonce(3);

    const maxNonce = nonceBytes(MAX_NONCE);
    const expectedKey = p.encrypt(key, maxNonce, EMPTY, new Uint8Array(32)).subarray(0, 32);
    sender.rekey();
    receiver.rekey();
    assert.equal(sender.nonce, 3n); // Noise §11.3: Rekey does not reset n

    const sealed = sender.encryptWithAd(EMPTY, text("after rekey"));
    assert.deepEqual(sealed, p.encrypt(expectedKey, nonceBytes(3n), EMPTY, text("after rekey")));
    assert.deepEqual(receiver.decryptWithAd(EMPTY, sealed), text("after rekey"));
    // the old key cannot open what the new key sealed
    assert.throws(() => stale.decryptWithAd(EMPTY, sealed), DecryptError);
    // and both directions still work after a second rekey
    sender.rekey();
    receiver.rekey();
    assert.deepEqual(
      sender.decryptWithAd(EMPTY, receiver.encryptWithAd(EMPTY, text("back"))),
      text("back"),
    );
  });
}

Deno.test("auto rekey every 65,536 messages keeps both sides in step across the boundary", () => {
  assert.equal(REKEY_INTERVAL, 65536);
  const key = random(32);
  const sender = new CipherState({ primitives: native, rekeyInterval: REKEY_INTERVAL });
  const receiver = new CipherState(native);
  receiver.enableAutoRekey(REKEY_INTERVAL);
  const plain = new CipherState(native); // no auto rekey
  for (const s of [sender, receiver, plain]) s.initializeKey(key);

  const total = REKEY_INTERVAL + 3;
  const message = new Uint8Array(4);
  const view = new DataView(message.buffer);
  let plainOpened = 0;
  for (let i = 0; i < total; i++) {
    view.setUint32(0, i);
    const sealed = sender.encryptWithAd(EMPTY, message);
    const opened = receiver.decryptWithAd(EMPTY, sealed);
    if (new DataView(opened.buffer, opened.byteOffset).getUint32(0) !== i) {
      assert.fail(`message ${i + 1} opened to the wrong plaintext`);
    }
    if (i < REKEY_INTERVAL) {
      plain.decryptWithAd(EMPTY, sealed);
      plainOpened++;
    } else if (i === REKEY_INTERVAL) {
      // message 65,537 is the first under the new key
      assert.throws(() => plain.decryptWithAd(EMPTY, sealed), DecryptError);
      // and the new key is exactly Rekey() of the old one
      plain.rekey();
      assert.deepEqual(plain.decryptWithAd(EMPTY, sealed), message);
    }
  }
  assert.equal(plainOpened, REKEY_INTERVAL);
  assert.equal(sender.nonce, BigInt(total)); // nonces keep counting (Noise §11.3)
  assert.equal(receiver.nonce, BigInt(total));
});

Deno.test("auto rekey counts messages under the current key, so a small interval rekeys repeatedly", () => {
  const [sender, receiver, key] = pair(native);
  sender.enableAutoRekey(2);
  receiver.enableAutoRekey(2);
  const manual = new CipherState(native);
  manual.initializeKey(key);
  for (let i = 0; i < 7; i++) {
    const sealed = sender.encryptWithAd(EMPTY, text(`m${i}`));
    assert.deepEqual(receiver.decryptWithAd(EMPTY, sealed), text(`m${i}`));
    assert.deepEqual(manual.decryptWithAd(EMPTY, sealed), text(`m${i}`));
    if (i % 2 === 1) manual.rekey();
  }
});

Deno.test("enableAutoRekey() rejects an interval that is not a positive integer", () => {
  for (const bad of [0, -1, 1.5, NaN]) {
    assert.throws(() => new CipherState().enableAutoRekey(bad), RangeError, String(bad));
    assert.throws(() => new CipherState({ rekeyInterval: bad }), RangeError, String(bad));
  }
});

// --- The two backends ----------------------------------------------------------

Deno.test("native and noble agree byte for byte on X25519 and ChaCha20-Poly1305", () => {
  for (let round = 0; round < 4; round++) {
    const a = native.generateKeyPair(), b = noble.generateKeyPair();
    assert.deepEqual(noble.publicKeyOf(a.secretKey), a.publicKey);
    assert.deepEqual(native.publicKeyOf(b.secretKey), b.publicKey);
    const shared = native.dh(a.secretKey, b.publicKey);
    assert.deepEqual(noble.dh(a.secretKey, b.publicKey), shared);
    assert.deepEqual(native.dh(b.secretKey, a.publicKey), shared);
    assert.deepEqual(noble.dh(b.secretKey, a.publicKey), shared);
  }
  for (const size of [0, 1, 100, MAX_PLAINTEXT_BYTES]) {
    for (const ad of [EMPTY, random(13)]) {
      const key = random(32), nonce = random(12), plaintext = random(size);
      const sealed = native.encrypt(key, nonce, ad, plaintext);
      assert.deepEqual(noble.encrypt(key, nonce, ad, plaintext), sealed, `size ${size}`);
      assert.deepEqual(native.decrypt(key, nonce, ad, sealed), plaintext);
      assert.deepEqual(noble.decrypt(key, nonce, ad, sealed), plaintext);
      for (const p of BACKENDS) {
        assert.throws(
          () => p.decrypt(key, nonce, ad, flip(sealed, sealed.length - 1)),
          DecryptError,
        );
      }
    }
  }
});

Deno.test("encryptInto() writes exactly encrypt()'s bytes at the offset, on both backends", () => {
  for (const size of [0, 1, 100, MAX_PLAINTEXT_BYTES]) {
    const key = random(32), nonce = random(12), ad = random(7), plaintext = random(size);
    const sealed = noble.encrypt(key, nonce, ad, plaintext);
    for (const p of BACKENDS) {
      const output = new Uint8Array(size + 16 + 9).fill(0xee);
      p.encryptInto(key, nonce, ad, plaintext, output, 5);
      assert.deepEqual(output.subarray(5, 5 + size + 16), sealed, `${p.name} size ${size}`);
      // the bytes around the window are untouched
      assert.ok(output.subarray(0, 5).every((byte) => byte === 0xee), p.name);
      assert.ok(output.subarray(5 + size + 16).every((byte) => byte === 0xee), p.name);
    }
  }
});

Deno.test("encryptInto() refuses an output without room, writing nothing", () => {
  const key = random(32), nonce = random(12), plaintext = random(100);
  for (const p of BACKENDS) {
    for (const [length, offset] of [[115, 0], [116, 1], [200, -1], [200, 0.5]]) {
      const output = new Uint8Array(length);
      assert.throws(
        () => p.encryptInto(key, nonce, EMPTY, plaintext, output, offset),
        RangeError,
        `${p.name} ${length}@${offset}`,
      );
      assert.ok(output.every((byte) => byte === 0), `${p.name} wrote into a refused output`);
    }
  }
});

for (const p of BACKENDS) {
  Deno.test(`encryptWithAdInto() seals like encryptWithAd() and advances the nonce (${p.name})`, () => {
    const [viaNew, viaInto, key] = pair(p);
    const opener = new CipherState(p);
    opener.initializeKey(key);
    for (const size of [0, 33, MAX_PLAINTEXT_BYTES]) {
      const plaintext = random(size);
      const output = new Uint8Array(size + 16 + 2);
      assert.equal(viaInto.encryptWithAdInto(EMPTY, plaintext, output, 2), size + 16);
      assert.deepEqual(output.subarray(2), viaNew.encryptWithAd(EMPTY, plaintext));
      assert.deepEqual(opener.decryptWithAd(EMPTY, output.subarray(2)), plaintext);
    }
    assert.equal(viaInto.nonce, 3n);
    const keyless = new CipherState(p), output = new Uint8Array(4);
    assert.equal(keyless.encryptWithAdInto(EMPTY, text("abc"), output, 1), 3);
    assert.deepEqual([...output], [0, 97, 98, 99]);
    assert.equal(keyless.nonce, 0n);
  });
}

/** A copy of `bytes` with one bit flipped at `index`. */
function flip(bytes: Uint8Array, index: number, bit = 0): Uint8Array {
  const copy = bytes.slice();
  copy[index] ^= 1 << bit;
  return copy;
}

/** `base` with every call counted by name. */
function counting(base: Primitives): [Primitives, Map<string, number>] {
  const calls = new Map<string, number>();
  const count = (name: string) => calls.set(name, (calls.get(name) ?? 0) + 1);
  return [{
    name: base.name,
    generateKeyPair: () => (count("generateKeyPair"), base.generateKeyPair()),
    publicKeyOf: (s) => (count("publicKeyOf"), base.publicKeyOf(s)),
    dh: (s, p) => (count("dh"), base.dh(s, p)),
    encrypt: (k, n, a, t) => (count("encrypt"), base.encrypt(k, n, a, t)),
    encryptInto: (k, n, a, t, o, i) => (count("encryptInto"), base.encryptInto(k, n, a, t, o, i)),
    decrypt: (k, n, a, c) => (count("decrypt"), base.decrypt(k, n, a, c)),
  }, calls];
}

Deno.test("CipherState and SymmetricState use the backend they are given, also after split()", () => {
  const [p, calls] = counting(noble);
  const [sender, receiver] = [new CipherState(p), new CipherState({ primitives: p })];
  const key = random(32);
  sender.initializeKey(key);
  receiver.initializeKey(key);
  receiver.decryptWithAd(EMPTY, sender.encryptWithAd(EMPTY, text("x")));
  sender.rekey();
  assert.deepEqual(Object.fromEntries(calls), { encrypt: 2, decrypt: 1 });

  calls.clear();
  const state = new SymmetricState(p);
  state.initializeSymmetric(PROTOCOL_NAME);
  state.mixKey(random(32));
  state.encryptAndHash(text("x"));
  const [first, second] = state.split();
  first.encryptWithAd(EMPTY, text("x"));
  second.encryptWithAd(EMPTY, text("x"));
  assert.deepEqual(Object.fromEntries(calls), { encrypt: 3 });
});
