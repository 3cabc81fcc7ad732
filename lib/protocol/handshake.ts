/**
 * The Noise XX handshake (Noise §7.3) as an explicit state machine with create/consume pairs,
 * in the style of wireguard-go's `CreateMessageInitiation` / `ConsumeMessageInitiation`:
 *
 * ```text
 * XX:
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 * ```
 *
 * Each `write`/`read` method first checks the role and the step, each `read` checks the exact
 * minimum length before parsing. Any failure abandons the handshake: later calls throw.
 *
 * @example
 * ```ts
 * import { XXHandshake } from "./handshake.ts";
 * import { primitives } from "./crypto.ts";
 * import { PROLOGUE } from "./constants.ts";
 *
 * const client = new XXHandshake({
 *   initiator: true,
 *   prologue: PROLOGUE,
 *   staticKeyPair: primitives.generateKeyPair(),
 * });
 * const server = new XXHandshake({
 *   initiator: false,
 *   prologue: PROLOGUE,
 *   staticKeyPair: primitives.generateKeyPair(),
 * });
 * server.readMessage1(client.writeMessage1());
 * client.readMessage2(server.writeMessage2());
 * server.readMessage3(client.writeMessage3());
 * const c = client.split(), s = server.split();
 * const sealed = c.send.encryptWithAd(new Uint8Array(0), Uint8Array.of(42));
 * if (s.receive.decryptWithAd(new Uint8Array(0), sealed)[0] !== 42) throw new Error();
 * ```
 * @module
 */
import { KEY_BYTES, MAX_FRAME_BYTES, PROTOCOL_NAME, TAG_BYTES } from "./constants.ts";
import { type KeyPair, type Primitives, primitives as defaultPrimitives } from "./crypto.ts";
import { type CipherState, SymmetricState } from "./noise.ts";
import { abytes } from "./bytes.ts";

/** Smallest message 1 (`-> e`): the initiator's ephemeral key and an empty payload. */
export const MESSAGE1_MIN_BYTES = KEY_BYTES;
/**
 * Smallest message 2 (`<- e, ee, s, es`): ephemeral key, encrypted static key with its tag,
 * and the tag of an empty payload: 32 + 48 + 16 = 96.
 */
export const MESSAGE2_MIN_BYTES = KEY_BYTES + (KEY_BYTES + TAG_BYTES) + TAG_BYTES;
/**
 * Smallest message 3 (`-> s, se`): encrypted static key with its tag and the tag of an empty
 * payload: 48 + 16 = 64.
 */
export const MESSAGE3_MIN_BYTES = (KEY_BYTES + TAG_BYTES) + TAG_BYTES;

const ENCRYPTED_KEY_BYTES = KEY_BYTES + TAG_BYTES;
const EMPTY = new Uint8Array(0);

/** How an {@link XXHandshake} is set up. */
export interface XXHandshakeOptions {
  /** True for the side that sends message 1 (the client). */
  initiator: boolean;
  /** Bytes both sides mix in first (Noise §6); the program uses `PROLOGUE`. */
  prologue: Uint8Array;
  /** This side's long-term X25519 key pair; its public key must match its secret key. */
  staticKeyPair: KeyPair;
  /** A fixed ephemeral key pair, only for test vectors; a fresh one is generated otherwise. */
  ephemeralKeyPair?: KeyPair;
  /** The X25519/ChaChaPoly backend; `primitives` from `lib/crypto.ts` when omitted. */
  primitives?: Primitives;
}

/** The two transport CipherStates of one side, oriented for that side. */
export interface TransportKeys {
  /** Encrypts what this side sends. */
  send: CipherState;
  /** Decrypts what this side receives. */
  receive: CipherState;
}

type Step = 1 | 2 | 3 | "complete" | "split" | "failed";

/**
 * One side of a Noise_XX_25519_ChaChaPoly_SHA256 handshake. The initiator calls
 * writeMessage1, readMessage2, writeMessage3; the responder readMessage1, writeMessage2,
 * readMessage3; then both call split().
 */
export class XXHandshake {
  /** True for the side that sends message 1. */
  readonly initiator: boolean;
  readonly #primitives: Primitives;
  readonly #symmetric: SymmetricState;
  readonly #static: KeyPair;
  #ephemeral: KeyPair | undefined;
  #remoteEphemeral: Uint8Array | undefined;
  #remoteStatic: Uint8Array | undefined;
  #step: Step = 1;

  /** Starts a handshake: Noise §5.3 Initialize() with the XX pattern and no pre-messages. */
  constructor(options: XXHandshakeOptions) {
    this.initiator = options.initiator;
    this.#primitives = options.primitives ?? defaultPrimitives;
    this.#static = checkKeyPair("static", options.staticKeyPair);
    if (options.ephemeralKeyPair !== undefined) {
      const { secretKey, publicKey } = checkKeyPair("ephemeral", options.ephemeralKeyPair);
      // our own copy, so that wiping it leaves the caller's bytes alone
      this.#ephemeral = { secretKey: secretKey.slice(), publicKey: publicKey.slice() };
    }
    this.#symmetric = new SymmetricState(this.#primitives);
    this.#symmetric.initializeSymmetric(PROTOCOL_NAME);
    this.#symmetric.mixHash(options.prologue);
  }

  /** Whether all three messages have been written or read. */
  get isComplete(): boolean {
    return this.#step === "complete" || this.#step === "split";
  }

  /**
   * The peer's static public key (a copy): known to the initiator after readMessage2 and to the
   * responder after readMessage3; undefined before.
   */
  get remoteStaticKey(): Uint8Array | undefined {
    return this.#remoteStatic?.slice();
  }

  /**
   * The final handshake hash h (Noise §5.2 GetHandshakeHash()), equal on both sides; for
   * channel binding. Throws before the handshake is complete.
   */
  get handshakeHash(): Uint8Array {
    if (!this.isComplete) {
      throw new Error(
        `invalid handshake state: no handshake hash before completion (${this.#describeStep()})`,
      );
    }
    return this.#symmetric.getHandshakeHash();
  }

  /** The current h at any step (tests check both sides agree after every message). */
  get transcriptHash(): Uint8Array {
    return this.#symmetric.getHandshakeHash();
  }

  /** Initiator: writes message 1, `-> e`, then the payload (sent in clear). */
  writeMessage1(payload: Uint8Array = EMPTY): Uint8Array {
    this.#begin("write", 1);
    return this.#run(() => {
      const e = this.#ephemeralKeyPair();
      this.#symmetric.mixHash(e.publicKey);
      const body = this.#symmetric.encryptAndHash(payload);
      return this.#finishWrite(2, [e.publicKey, body]);
    });
  }

  /** Responder: reads message 1 and returns its payload. */
  readMessage1(message: Uint8Array): Uint8Array {
    this.#begin("read", 1);
    return this.#run(() => {
      checkLength(1, message, MESSAGE1_MIN_BYTES);
      const re = message.slice(0, KEY_BYTES);
      this.#remoteEphemeral = re;
      this.#symmetric.mixHash(re);
      const payload = this.#symmetric.decryptAndHash(message.subarray(KEY_BYTES));
      this.#step = 2;
      return payload;
    });
  }

  /** Responder: writes message 2, `<- e, ee, s, es`, then the encrypted payload. */
  writeMessage2(payload: Uint8Array = EMPTY): Uint8Array {
    this.#begin("write", 2);
    return this.#run(() => {
      const e = this.#ephemeralKeyPair();
      const re = this.#remoteEphemeral!;
      this.#symmetric.mixHash(e.publicKey);
      this.#mixDh(e.secretKey, re); // ee
      const encryptedStatic = this.#symmetric.encryptAndHash(this.#static.publicKey);
      this.#mixDh(this.#static.secretKey, re); // es: the responder holds s
      const body = this.#symmetric.encryptAndHash(payload);
      return this.#finishWrite(3, [e.publicKey, encryptedStatic, body]);
    });
  }

  /** Initiator: reads message 2, learns the responder's static key, returns the payload. */
  readMessage2(message: Uint8Array): Uint8Array {
    this.#begin("read", 2);
    return this.#run(() => {
      checkLength(2, message, MESSAGE2_MIN_BYTES);
      const e = this.#ephemeral!;
      const re = message.slice(0, KEY_BYTES);
      this.#remoteEphemeral = re;
      this.#symmetric.mixHash(re);
      this.#mixDh(e.secretKey, re); // ee
      const rs = this.#symmetric.decryptAndHash(
        message.subarray(KEY_BYTES, KEY_BYTES + ENCRYPTED_KEY_BYTES),
      );
      this.#mixDh(e.secretKey, rs); // es: the initiator holds e
      const payload = this.#symmetric.decryptAndHash(
        message.subarray(KEY_BYTES + ENCRYPTED_KEY_BYTES),
      );
      // only now, with the payload authenticated, is rs the peer's key
      this.#remoteStatic = rs;
      this.#step = 3;
      return payload;
    });
  }

  /** Initiator: writes message 3, `-> s, se`, then the encrypted payload. */
  writeMessage3(payload: Uint8Array = EMPTY): Uint8Array {
    this.#begin("write", 3);
    return this.#run(() => {
      const encryptedStatic = this.#symmetric.encryptAndHash(this.#static.publicKey);
      this.#mixDh(this.#static.secretKey, this.#remoteEphemeral!); // se: the initiator holds s
      const body = this.#symmetric.encryptAndHash(payload);
      return this.#finishWrite("complete", [encryptedStatic, body]);
    });
  }

  /** Responder: reads message 3, learns the initiator's static key, returns the payload. */
  readMessage3(message: Uint8Array): Uint8Array {
    this.#begin("read", 3);
    return this.#run(() => {
      checkLength(3, message, MESSAGE3_MIN_BYTES);
      const rs = this.#symmetric.decryptAndHash(message.subarray(0, ENCRYPTED_KEY_BYTES));
      this.#mixDh(this.#ephemeral!.secretKey, rs); // se: the responder holds e
      const payload = this.#symmetric.decryptAndHash(message.subarray(ENCRYPTED_KEY_BYTES));
      this.#remoteStatic = rs;
      this.#step = "complete";
      return payload;
    });
  }

  /**
   * Noise §5.2 Split(), oriented for this side: the first CipherState carries
   * initiator-to-responder messages. Wipes the ephemeral secret and the chaining key; can be
   * called once, after completion. `rekeyInterval` turns on auto rekey in both CipherStates.
   */
  split(options: { rekeyInterval?: number } = {}): TransportKeys {
    if (this.#step !== "complete") {
      throw new Error(`invalid handshake state: cannot split (${this.#describeStep()})`);
    }
    const [initiatorToResponder, responderToInitiator] = this.#symmetric.split(options);
    this.#step = "split";
    this.#wipe();
    return this.initiator
      ? { send: initiatorToResponder, receive: responderToInitiator }
      : { send: responderToInitiator, receive: initiatorToResponder };
  }

  // --- internals ------------------------------------------------------------

  #begin(action: "write" | "read", message: 1 | 2 | 3): void {
    // the initiator writes messages 1 and 3, the responder writes message 2
    const writer = message !== 2;
    if ((action === "write") !== (this.initiator === writer)) {
      throw new Error(
        `invalid handshake state: cannot ${action} message ${message} as ${this.#role()}`,
      );
    }
    if (this.#step !== message) {
      throw new Error(
        `invalid handshake state: cannot ${action} message ${message} as ${this.#role()} (${this.#describeStep()})`,
      );
    }
  }

  /** Runs one step; any error abandons the handshake and wipes its secrets. */
  #run<T>(step: () => T): T {
    try {
      return step();
    } catch (error) {
      this.#step = "failed";
      this.#wipe();
      throw error;
    }
  }

  #finishWrite(next: Step, parts: Uint8Array[]): Uint8Array {
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    if (length > MAX_FRAME_BYTES) {
      throw new RangeError(
        `handshake message is ${length} bytes; Noise allows at most ${MAX_FRAME_BYTES}`,
      );
    }
    const message = new Uint8Array(length);
    let offset = 0;
    for (const part of parts) {
      message.set(part, offset);
      offset += part.length;
    }
    this.#step = next;
    return message;
  }

  #ephemeralKeyPair(): KeyPair {
    this.#ephemeral ??= this.#primitives.generateKeyPair();
    return this.#ephemeral;
  }

  /** MixKey(DH(secret, public)), wiping the shared secret afterwards. */
  #mixDh(secretKey: Uint8Array, publicKey: Uint8Array): void {
    const shared = this.#primitives.dh(secretKey, publicKey);
    this.#symmetric.mixKey(shared);
    shared.fill(0);
  }

  #wipe(): void {
    this.#ephemeral?.secretKey.fill(0);
    this.#ephemeral = undefined;
    this.#symmetric.wipe();
  }

  #role(): string {
    return this.initiator ? "initiator" : "responder";
  }

  #describeStep(): string {
    switch (this.#step) {
      case "complete":
        return "the handshake is complete";
      case "split":
        return "the handshake was already split";
      case "failed":
        return "the handshake has failed";
      default:
        return `the next step is message ${this.#step}`;
    }
  }
}

function checkLength(message: 1 | 2 | 3, bytes: Uint8Array, minimum: number): void {
  abytes(bytes, { min: minimum, max: MAX_FRAME_BYTES }, `handshake message ${message}`);
}

function checkKeyPair(what: string, pair: KeyPair): KeyPair {
  abytes(pair?.secretKey, KEY_BYTES, `${what} secret key`);
  abytes(pair?.publicKey, KEY_BYTES, `${what} public key`);
  return pair;
}
