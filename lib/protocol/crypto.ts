/**
 * The primitives Noise_XX_25519_ChaChaPoly_SHA256 needs, behind one small interface, and a
 * streaming SHA-256 for files (`sha256Stream`).
 *
 * Two backends: `native` (Deno's `node:crypto`, OpenSSL; 4-6x faster here) for the hot paths
 * and `noble` (`@noble/*`, audited pure TypeScript) as the reference. Tests cross-check them
 * byte for byte; `noble` is also the fallback where native is missing.
 * @module
 */
import * as nodeCrypto from "node:crypto";
import { x25519 } from "@noble/curves/ed25519.js";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { KEY_BYTES, TAG_BYTES } from "./constants.ts";
import { DecryptError } from "../errors.ts";
import { abytes } from "./bytes.ts";

/** An X25519 key pair (raw 32-byte keys). */
export interface KeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** X25519 and ChaCha20-Poly1305 (IETF, 12-byte nonce, 16-byte tag appended). */
export interface Primitives {
  /** Which implementation this is. */
  readonly name: "native" | "noble";
  /** A fresh random key pair. */
  generateKeyPair(): KeyPair;
  /** The public key of a secret key. */
  publicKeyOf(secretKey: Uint8Array): Uint8Array;
  /** X25519(secretKey, publicKey); throws RangeError on an all-zero result (low-order point). */
  dh(secretKey: Uint8Array, publicKey: Uint8Array): Uint8Array;
  /** Returns ciphertext || tag. */
  encrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /**
   * Writes ciphertext || tag (plaintext.length + 16 bytes) into `output` at `offset`: the same
   * bytes `encrypt` returns, without allocating a buffer for them (the transport seals straight
   * into the buffer it writes to the socket). `output` must not overlap `plaintext`.
   */
  encryptInto(
    key: Uint8Array,
    nonce: Uint8Array,
    ad: Uint8Array,
    plaintext: Uint8Array,
    output: Uint8Array,
    offset: number,
  ): void;
  /** Returns the plaintext, or throws DecryptError. */
  decrypt(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): Uint8Array;
}

/** The `length`-byte window of `output` at `offset`; RangeError if it does not fit. */
function outputWindow(output: Uint8Array, offset: number, length: number): Uint8Array {
  if (!(Number.isInteger(offset) && offset >= 0 && offset + length <= output.length)) {
    throw new RangeError(`no room for ${length} sealed bytes at offset ${offset}`);
  }
  return output.subarray(offset, offset + length);
}

/** `encrypt` built on an `encryptInto` (both backends use it: one definition of the layout). */
function encryptingToNewBuffer(encryptInto: Primitives["encryptInto"]): Primitives["encrypt"] {
  return (key, nonce, ad, plaintext) => {
    const sealed = new Uint8Array(plaintext.length + TAG_BYTES);
    encryptInto(key, nonce, ad, plaintext, sealed, 0);
    return sealed;
  };
}

function checkLength(what: string, bytes: Uint8Array, length: number): void {
  abytes(bytes, length, what);
}

const nobleEncryptInto: Primitives["encryptInto"] = (key, nonce, ad, plaintext, output, offset) => {
  const window = outputWindow(output, offset, plaintext.length + TAG_BYTES);
  chacha20poly1305(key, nonce, ad).encrypt(plaintext, window);
};

/** The audited pure-TypeScript reference. */
export const noble: Primitives = {
  name: "noble",
  generateKeyPair() {
    const secretKey = x25519.utils.randomSecretKey();
    return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
  },
  publicKeyOf(secretKey) {
    checkLength("secret key", secretKey, KEY_BYTES);
    return x25519.getPublicKey(secretKey);
  },
  dh(secretKey, publicKey) {
    checkLength("secret key", secretKey, KEY_BYTES);
    checkLength("public key", publicKey, KEY_BYTES);
    try {
      return x25519.getSharedSecret(secretKey, publicKey);
    } catch {
      throw new RangeError("X25519 produced an all-zero shared secret (low-order public key)");
    }
  },
  encrypt: encryptingToNewBuffer(nobleEncryptInto),
  encryptInto: nobleEncryptInto,
  decrypt(key, nonce, ad, ciphertext) {
    try {
      return chacha20poly1305(key, nonce, ad).decrypt(ciphertext);
    } catch {
      throw new DecryptError();
    }
  },
};

/** Bytes from hex (for fixed DER prefixes). */
function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (pair) => parseInt(pair, 16));
}

// DER prefixes that wrap a raw X25519 key for OpenSSL (RFC 8410): PKCS#8 and SPKI.
const PKCS8_X25519_PREFIX = fromHex("302e020100300506032b656e04220420");
const SPKI_X25519_PREFIX = fromHex("302a300506032b656e032100");

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function nativeSecretKey(secretKey: Uint8Array): nodeCrypto.KeyObject {
  checkLength("secret key", secretKey, KEY_BYTES);
  return nodeCrypto.createPrivateKey({
    key: concat(PKCS8_X25519_PREFIX, secretKey) as Buffer,
    format: "der",
    type: "pkcs8",
  });
}

function rawPublicKey(key: nodeCrypto.KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "spki" });
  return new Uint8Array(der.subarray(SPKI_X25519_PREFIX.length));
}

function rawSecretKey(key: nodeCrypto.KeyObject): Uint8Array {
  const der = key.export({ format: "der", type: "pkcs8" });
  return new Uint8Array(der.subarray(PKCS8_X25519_PREFIX.length));
}

function toUint8(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

const nativeEncryptInto: Primitives["encryptInto"] = (
  key,
  nonce,
  ad,
  plaintext,
  output,
  offset,
) => {
  const window = outputWindow(output, offset, plaintext.length + TAG_BYTES);
  const cipher = nodeCrypto.createCipheriv("chacha20-poly1305", key, nonce, {
    authTagLength: TAG_BYTES,
  });
  if (ad.length > 0) cipher.setAAD(ad, { plaintextLength: plaintext.length });
  // node:crypto has no output argument: update() returns a fresh buffer, copied once here.
  window.set(cipher.update(plaintext));
  cipher.final();
  window.set(cipher.getAuthTag(), plaintext.length);
};

/** Deno's `node:crypto` (OpenSSL), cross-checked against `noble` in tests. */
export const native: Primitives = {
  name: "native",
  generateKeyPair() {
    const pair = nodeCrypto.generateKeyPairSync("x25519");
    return { secretKey: rawSecretKey(pair.privateKey), publicKey: rawPublicKey(pair.publicKey) };
  },
  publicKeyOf(secretKey) {
    return rawPublicKey(nodeCrypto.createPublicKey(nativeSecretKey(secretKey)));
  },
  dh(secretKey, publicKey) {
    checkLength("public key", publicKey, KEY_BYTES);
    const privateKey = nativeSecretKey(secretKey);
    const peer = nodeCrypto.createPublicKey({
      key: concat(SPKI_X25519_PREFIX, publicKey) as Buffer,
      format: "der",
      type: "spki",
    });
    try {
      return toUint8(nodeCrypto.diffieHellman({ privateKey, publicKey: peer }));
    } catch {
      // OpenSSL refuses an all-zero X25519 output, as noble does.
      throw new RangeError("X25519 produced an all-zero shared secret (low-order public key)");
    }
  },
  encrypt: encryptingToNewBuffer(nativeEncryptInto),
  encryptInto: nativeEncryptInto,
  decrypt(key, nonce, ad, ciphertext) {
    if (ciphertext.length < TAG_BYTES) throw new DecryptError();
    const bodyLength = ciphertext.length - TAG_BYTES;
    try {
      const decipher = nodeCrypto.createDecipheriv("chacha20-poly1305", key, nonce, {
        authTagLength: TAG_BYTES,
      });
      decipher.setAuthTag(ciphertext.subarray(bodyLength));
      if (ad.length > 0) decipher.setAAD(ad, { plaintextLength: bodyLength });
      const body = decipher.update(ciphertext.subarray(0, bodyLength));
      decipher.final(); // throws when the tag does not verify
      return toUint8(body);
    } catch {
      throw new DecryptError();
    }
  },
};

/**
 * Whether the native backend works here, probed cheaply at start-up: a key agreement both ways
 * and a seal/open round trip. (Byte-for-byte agreement with noble is the tests' job; running
 * noble's cold X25519 here cost every command ~20 ms.)
 */
function nativeWorks(): boolean {
  try {
    const a = native.generateKeyPair();
    const b = native.generateKeyPair();
    const ab = native.dh(a.secretKey, b.publicKey);
    const ba = native.dh(b.secretKey, a.publicKey);
    const key = new Uint8Array(32), nonce = new Uint8Array(12), msg = new Uint8Array([1, 2, 3]);
    const opened = native.decrypt(key, nonce, msg, native.encrypt(key, nonce, msg, msg));
    return ab.every((byte, i) => byte === ba[i]) && opened.length === 3 && opened[2] === 3;
  } catch {
    return false;
  }
}

/** The backend the program uses: native when it works here, else noble. */
export const primitives: Primitives = nativeWorks() ? native : noble;

// --- Streaming SHA-256 ---------------------------------------------------------------

/** A SHA-256 fed in pieces (a file as it arrives); `digest()` ends it and returns 32 bytes. */
export interface Sha256Stream {
  /** Hashes `bytes` after everything fed before. */
  update(bytes: Uint8Array): void;
  /** The 32-byte hash of everything fed; the stream cannot be fed or digested again. */
  digest(): Uint8Array;
}

/** The noble reference: audited pure TypeScript, and the fallback where native is missing. */
export function nobleSha256Stream(): Sha256Stream {
  const state = sha256.create();
  return {
    update: (bytes) => void state.update(bytes),
    digest: () => state.digest(),
  };
}

/** Deno's `node:crypto` (OpenSSL), several times faster on large files. */
export function nativeSha256Stream(): Sha256Stream {
  const state = nodeCrypto.createHash("sha256");
  return {
    update: (bytes) => void state.update(bytes),
    digest: () => toUint8(state.digest()),
  };
}

/** Whether `createHash("sha256")` works here (it is missing from some runtimes' node:crypto). */
function nativeSha256Works(): boolean {
  try {
    const hash = nativeSha256Stream();
    hash.update(new Uint8Array([0x61, 0x62, 0x63]));
    return hash.digest()[0] === 0xba; // SHA-256("abc") = ba7816bf…
  } catch {
    return false;
  }
}

const NATIVE_SHA256 = nativeSha256Works();

/**
 * A new streaming SHA-256: native when it works here, else noble (cross-checked in tests).
 *
 * @example
 * ```ts
 * import { sha256Stream } from "./crypto.ts";
 * const hash = sha256Stream();
 * hash.update(new TextEncoder().encode("ab"));
 * hash.update(new TextEncoder().encode("c"));
 * hash.digest()[0]; // 0xba: SHA-256("abc") = ba7816bf…
 * ```
 */
export function sha256Stream(): Sha256Stream {
  return NATIVE_SHA256 ? nativeSha256Stream() : nobleSha256Stream();
}
