/**
 * The Noise Protocol Framework (revision 34) CipherState and SymmetricState for
 * Noise_XX_25519_ChaChaPoly_SHA256: pure functions of their inputs, no sockets, no I/O.
 *
 * SHA-256 and HMAC come from `@noble/hashes`. Measured against `node:crypto`'s `createHash` /
 * `createHmac` on handshake-sized inputs (80 bytes) with `deno bench`: SHA-256 costs the same
 * (2.4 µs both) and noble's HMAC is 1.3x faster (7.5 µs vs 10 µs, the OpenSSL call overhead
 * dominates at this size), so noble is the one implementation kept here.
 *
 * @example
 * ```ts
 * import { CipherState } from "./noise.ts";
 *
 * const key = new Uint8Array(32).fill(7);
 * const alice = new CipherState();
 * const bob = new CipherState();
 * alice.initializeKey(key);
 * bob.initializeKey(key);
 * const ad = new Uint8Array(0);
 * const sealed = alice.encryptWithAd(ad, new TextEncoder().encode("hi"));
 * if (new TextDecoder().decode(bob.decryptWithAd(ad, sealed)) !== "hi") throw new Error();
 * ```
 * @module
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { hmac } from "@noble/hashes/hmac.js";
import { HASH_BYTES, KEY_BYTES, MAX_NONCE, TAG_BYTES } from "./constants.ts";
import { type Primitives, primitives as defaultPrimitives } from "./crypto.ts";
import { abytes } from "./bytes.ts";

/** Size of the ChaChaPoly nonce: 4 zero bytes then the 64-bit counter (Noise §12.3). */
const NONCE_BYTES = 12;
const EMPTY = new Uint8Array(0);
const HKDF_BYTE_1 = Uint8Array.of(0x01);
const HKDF_BYTE_2 = Uint8Array.of(0x02);
const HKDF_BYTE_3 = Uint8Array.of(0x03);
const UINT32_RANGE = 0x1_0000_0000;
const UINT32_MAX = 0xffff_ffff;

// Noise §4.2 REKEY(k): the reserved nonce 2^64-1, encoded as Noise §12.3 says.
const REKEY_NONCE = Uint8Array.of(0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/** Options of a {@link CipherState}. */
export interface CipherStateOptions {
  /** The X25519/ChaChaPoly backend; `primitives` from `lib/crypto.ts` when omitted. */
  primitives?: Primitives;
  /**
   * Rekey automatically after this many messages under one key (see
   * {@link CipherState.enableAutoRekey}); off when omitted.
   */
  rekeyInterval?: number;
}

function checkRekeyInterval(interval: number): void {
  if (!Number.isSafeInteger(interval) || interval < 1) {
    throw new RangeError(`rekey interval must be a positive integer, got ${interval}`);
  }
}

/**
 * A Noise CipherState (Noise §5.1): a ChaChaPoly key k and a 64-bit nonce counter n.
 *
 * The counter never wraps: n = 2^64-1 is reserved (Noise §5.1), so once n reaches it every
 * further encryptWithAd()/decryptWithAd() throws a RangeError. A failed decryption throws
 * `DecryptError` and leaves n unchanged. With auto rekey on (the transport turns it on),
 * the CipherState calls {@link CipherState.rekey} itself after every `rekeyInterval` messages.
 */
export class CipherState {
  readonly #primitives: Primitives;
  #key: Uint8Array | null = null;
  #wiped = false;
  // n as two 32-bit halves: exact up to 2^64-1 without bigint arithmetic on the hot path.
  #nonceLow = 0;
  #nonceHigh = 0;
  // The 12-byte ChaChaPoly nonce, kept equal to n and reused for every message.
  readonly #nonceBytes = new Uint8Array(NONCE_BYTES);
  readonly #nonceView = new DataView(this.#nonceBytes.buffer);
  #rekeyInterval = Infinity; // no auto rekey until enableAutoRekey()
  #sinceRekey = 0;

  /**
   * Creates an empty CipherState (no key). Pass a {@link Primitives} backend, or options with
   * a backend and an auto rekey interval.
   */
  constructor(options: Primitives | CipherStateOptions = {}) {
    const opts: CipherStateOptions = "encrypt" in options ? { primitives: options } : options;
    this.#primitives = opts.primitives ?? defaultPrimitives;
    if (opts.rekeyInterval !== undefined) this.enableAutoRekey(opts.rekeyInterval);
  }

  /** Noise §5.1 InitializeKey(key): sets k (copied; an empty array means no key) and n = 0. */
  initializeKey(key: Uint8Array): void {
    if (key.length !== 0) abytes(key, KEY_BYTES, "cipher key (when not empty)");
    this.#key?.fill(0);
    this.#key = key.length === 0 ? null : key.slice();
    this.#wiped = false;
    this.#setCounter(0, 0);
    this.#sinceRekey = 0;
  }

  /** Noise §5.1 HasKey(): whether k is set. */
  hasKey(): boolean {
    return this.#key !== null;
  }

  /** The next nonce n this CipherState will use. */
  get nonce(): bigint {
    return (BigInt(this.#nonceHigh) << 32n) | BigInt(this.#nonceLow);
  }

  /**
   * Noise §5.1 SetNonce(nonce): sets n, a number or bigint in 0..2^64-1 (2^64-1 itself leaves
   * the CipherState unusable, as Noise §5.1 reserves it).
   */
  setNonce(nonce: number | bigint): void {
    if (typeof nonce === "number" && Number.isSafeInteger(nonce) && nonce >= 0) {
      this.#setCounter(nonce % UINT32_RANGE, Math.floor(nonce / UINT32_RANGE));
      return;
    }
    if (typeof nonce !== "bigint" || nonce < 0n || nonce > MAX_NONCE) {
      throw new RangeError(`nonce must be an integer in 0..2^64-1, got ${nonce}`);
    }
    this.#setCounter(Number(nonce & 0xffff_ffffn), Number(nonce >> 32n));
  }

  /**
   * Turns on automatic rekeying: after every `interval` messages encrypted or successfully
   * decrypted under one key, this CipherState calls {@link CipherState.rekey} itself. Nonces
   * keep counting across a rekey (Noise §11.3).
   */
  enableAutoRekey(interval: number): void {
    checkRekeyInterval(interval);
    this.#rekeyInterval = interval;
  }

  /**
   * Noise §5.1 EncryptWithAd(ad, plaintext): ENCRYPT(k, n++, ad, plaintext), that is ciphertext
   * || 16-byte tag; the plaintext itself when there is no key yet.
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const key = this.#key;
    if (key === null) return this.#noKey(plaintext);
    this.#checkNonce();
    const ciphertext = this.#primitives.encrypt(key, this.#nonceBytes, ad, plaintext);
    this.#advance();
    return ciphertext;
  }

  /**
   * EncryptWithAd, writing its result into `output` at `offset` instead of a new buffer (the
   * transport seals straight into the buffer it writes). Returns the bytes written:
   * plaintext.length + 16, or plaintext.length when there is no key yet.
   */
  encryptWithAdInto(
    ad: Uint8Array,
    plaintext: Uint8Array,
    output: Uint8Array,
    offset: number,
  ): number {
    const key = this.#key;
    if (key === null) {
      output.set(this.#noKey(plaintext), offset);
      return plaintext.length;
    }
    this.#checkNonce();
    this.#primitives.encryptInto(key, this.#nonceBytes, ad, plaintext, output, offset);
    this.#advance();
    return plaintext.length + TAG_BYTES;
  }

  /**
   * Noise §5.1 DecryptWithAd(ad, ciphertext): DECRYPT(k, n++, ad, ciphertext); the ciphertext
   * itself when there is no key yet. Throws `DecryptError` on any authentication failure,
   * and then n does not advance.
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const key = this.#key;
    if (key === null) return this.#noKey(ciphertext);
    this.#checkNonce();
    // Throws DecryptError before #advance(): Noise §5.1, a failed decryption keeps n.
    const plaintext = this.#primitives.decrypt(key, this.#nonceBytes, ad, ciphertext);
    this.#advance();
    return plaintext;
  }

  /**
   * Noise §4.2 and §5.1 Rekey(): k = the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero
   * bytes). n is not reset (Noise §11.3).
   */
  rekey(): void {
    const key = this.#key;
    if (key === null) {
      throw new Error(
        this.#wiped ? "CipherState was wiped" : "cannot rekey a CipherState with no key",
      );
    }
    const sealed = this.#primitives.encrypt(key, REKEY_NONCE, EMPTY, new Uint8Array(KEY_BYTES));
    this.#key = sealed.slice(0, KEY_BYTES);
    sealed.fill(0);
    key.fill(0);
    this.#sinceRekey = 0;
  }

  /** Zeroes the key; afterwards every encrypt, decrypt or rekey throws until initializeKey(). */
  wipe(): void {
    this.#key?.fill(0);
    this.#key = null;
    this.#wiped = true;
  }

  #noKey(text: Uint8Array): Uint8Array {
    // A wiped CipherState must never fall back to Noise's "no key: pass the text through".
    if (this.#wiped) throw new Error("CipherState was wiped");
    return text;
  }

  #checkNonce(): void {
    // Noise §5.1: n = 2^64-1 is reserved; the counter must never wrap.
    if (this.#nonceHigh === UINT32_MAX && this.#nonceLow === UINT32_MAX) {
      throw new RangeError("CipherState nonce exhausted: 2^64-1 is reserved (Noise §5.1)");
    }
  }

  #advance(): void {
    if (++this.#nonceLow === UINT32_RANGE) {
      this.#nonceLow = 0;
      this.#nonceView.setUint32(8, ++this.#nonceHigh, true);
    }
    this.#nonceView.setUint32(4, this.#nonceLow, true);
    if (++this.#sinceRekey >= this.#rekeyInterval) this.rekey();
  }

  #setCounter(low: number, high: number): void {
    this.#nonceLow = low;
    this.#nonceHigh = high;
    // Noise §12.3: 32 bits of zeros, then the 64-bit counter little-endian.
    this.#nonceView.setUint32(4, low, true);
    this.#nonceView.setUint32(8, high, true);
  }
}

/** SHA-256 of the concatenation of the parts (Noise HASH()). */
function hash(...parts: Uint8Array[]): Uint8Array {
  const state = sha256.create();
  for (const part of parts) state.update(part);
  return state.digest();
}

/** HMAC-SHA256(key, data). */
function hmacHash(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(sha256, key, data);
}

/**
 * Noise §4.3 HKDF(chaining_key, input_key_material, num_outputs) with HMAC-SHA256: two or three
 * 32-byte outputs.
 */
export function hkdf(
  chainingKey: Uint8Array,
  inputKeyMaterial: Uint8Array,
  outputs: 2 | 3,
): Uint8Array[] {
  const tempKey = hmacHash(chainingKey, inputKeyMaterial);
  // Every output is HMAC(temp_key, ...): key the HMAC once and clone it (saves ~20% here).
  const keyed = hmac.create(sha256, tempKey);
  tempKey.fill(0);
  const output1 = keyed.clone().update(HKDF_BYTE_1).digest();
  if (outputs === 2) return [output1, keyed.update(output1).update(HKDF_BYTE_2).digest()];
  const output2 = keyed.clone().update(output1).update(HKDF_BYTE_2).digest();
  const output3 = keyed.update(output2).update(HKDF_BYTE_3).digest();
  return [output1, output2, output3];
}

/**
 * A Noise SymmetricState (Noise §5.2): the chaining key ck, the handshake hash h and a
 * CipherState.
 */
export class SymmetricState {
  readonly #primitives: Primitives;
  readonly #cipher: CipherState;
  #chainingKey: Uint8Array = new Uint8Array(HASH_BYTES);
  #hash: Uint8Array = new Uint8Array(HASH_BYTES);

  /** Creates a SymmetricState using the given backend (default: `primitives`). */
  constructor(primitives: Primitives = defaultPrimitives) {
    this.#primitives = primitives;
    this.#cipher = new CipherState(primitives);
  }

  /**
   * Noise §5.2 InitializeSymmetric(protocol_name): h = the name padded with zeros when it has
   * at most 32 bytes, else HASH(name); ck = h; no cipher key.
   */
  initializeSymmetric(protocolName: string | Uint8Array): void {
    const name = typeof protocolName === "string"
      ? new TextEncoder().encode(protocolName)
      : protocolName;
    if (name.length <= HASH_BYTES) {
      this.#hash = new Uint8Array(HASH_BYTES);
      this.#hash.set(name);
    } else {
      this.#hash = hash(name);
    }
    this.#chainingKey.fill(0);
    this.#chainingKey = this.#hash.slice();
    this.#cipher.initializeKey(EMPTY);
  }

  /** Noise §5.2 MixKey(input_key_material): ck, temp_k = HKDF(ck, ikm, 2); InitializeKey(temp_k). */
  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempKey] = hkdf(this.#chainingKey, inputKeyMaterial, 2);
    this.#chainingKey.fill(0);
    this.#chainingKey = chainingKey;
    this.#cipher.initializeKey(tempKey); // HASHLEN = 32: no truncation needed
    tempKey.fill(0);
  }

  /** Noise §5.2 MixHash(data): h = HASH(h || data). */
  mixHash(data: Uint8Array): void {
    this.#hash = hash(this.#hash, data);
  }

  /**
   * Noise §5.2 MixKeyAndHash(input_key_material): ck, temp_h, temp_k = HKDF(ck, ikm, 3);
   * MixHash(temp_h); InitializeKey(temp_k). (Used by PSK patterns, not by XX.)
   */
  mixKeyAndHash(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, tempHash, tempKey] = hkdf(this.#chainingKey, inputKeyMaterial, 3);
    this.#chainingKey.fill(0);
    this.#chainingKey = chainingKey;
    this.mixHash(tempHash);
    this.#cipher.initializeKey(tempKey);
    tempKey.fill(0);
  }

  /** Noise §5.2 GetHandshakeHash(): a copy of h. */
  getHandshakeHash(): Uint8Array {
    return this.#hash.slice();
  }

  /** Noise §5.2 EncryptAndHash(plaintext): ciphertext = EncryptWithAd(h, plaintext); MixHash. */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.#cipher.encryptWithAd(this.#hash, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  /**
   * Noise §5.2 DecryptAndHash(ciphertext): plaintext = DecryptWithAd(h, ciphertext); MixHash.
   * Throws `DecryptError` (and leaves h unchanged) when authentication fails.
   */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.#cipher.decryptWithAd(this.#hash, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  /**
   * Noise §5.2 Split(): temp_k1, temp_k2 = HKDF(ck, empty, 2); two CipherStates, the first for
   * initiator-to-responder messages, the second for responder-to-initiator.
   */
  split(options: { rekeyInterval?: number } = {}): [CipherState, CipherState] {
    const [key1, key2] = hkdf(this.#chainingKey, EMPTY, 2);
    const first = new CipherState({ primitives: this.#primitives, ...options });
    const second = new CipherState({ primitives: this.#primitives, ...options });
    first.initializeKey(key1);
    second.initializeKey(key2);
    key1.fill(0);
    key2.fill(0);
    return [first, second];
  }

  /** Zeroes ck and the handshake cipher key; h stays readable (it is not secret). */
  wipe(): void {
    this.#chainingKey.fill(0);
    this.#cipher.wipe();
  }
}
