/**
 * The XX handshake over a connection, as `chat` runs it: each handshake message is one frame,
 * m1 carries no payload, m2 and m3 carry `{"name": ...}` (m3 maybe an `"invite"`), and the result is a pair of
 * CipherStates (with automatic rekeying on) ready for a Channel.
 *
 * The caller bounds the wait (withDeadline) and closes the connection on any error.
 * @module
 */
import {
  MAX_FRAME_BYTES,
  MAX_HANDSHAKE_FRAME_BYTES,
  PROLOGUE,
  REKEY_INTERVAL,
} from "./constants.ts";
import type { KeyPair } from "./crypto.ts";
import { DecryptError, ProtocolError } from "../errors.ts";
import type { Connection } from "./channel.ts";
import { encodeFrame, FrameReader, writeAll } from "./frame.ts";
import { XXHandshake } from "./handshake.ts";
import type { CipherState } from "./noise.ts";
import { bytesOfHex } from "./bytes.ts";
import { decodeHandshakePayload, decodeNamePayload, encodeNamePayload } from "./messages.ts";

/** What a completed handshake yields. */
export interface HandshakeResult {
  /** Encrypts what this side sends. */
  send: CipherState;
  /** Decrypts what this side receives. */
  receive: CipherState;
  /** The reader of the connection; it may already hold the peer's next frames. */
  reader: FrameReader;
  /** The peer's static public key (authenticated by the handshake). */
  remoteStaticKey: Uint8Array;
  /** The display name the peer declared in its handshake payload. */
  remoteName: string;
  /** The Noise handshake hash h, the same on both sides. */
  handshakeHash: Uint8Array;
  /** Responder only: the invite secret the client presented in m3, if any (section 4.4). */
  remoteInvite?: Uint8Array;
}

async function nextFrame(reader: FrameReader, which: string): Promise<Uint8Array> {
  const frame = await reader.readFrame();
  if (frame === null) throw new ProtocolError(`connection closed before handshake ${which}`);
  return frame;
}

function finish(
  handshake: XXHandshake,
  reader: FrameReader,
  remoteName: string,
): HandshakeResult {
  const remoteStaticKey = handshake.remoteStaticKey!;
  const handshakeHash = handshake.handshakeHash;
  const { send, receive } = handshake.split({ rekeyInterval: REKEY_INTERVAL });
  reader.maxFrameBytes = MAX_FRAME_BYTES;
  return { send, receive, reader, remoteStaticKey, remoteName, handshakeHash };
}

/** Runs a handshake step, turning any failure into a ProtocolError that names the message. */
function step<T>(which: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    // a payload's own ProtocolError says what is wrong already; a failed decryption does not
    if (error instanceof ProtocolError && !(error instanceof DecryptError)) throw error;
    throw new ProtocolError(`handshake ${which} rejected: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Runs the handshake as the initiator (the client): writes m1, reads m2, writes m3.
 * `verifyServer` sees the server's authenticated static key after m2 and before m3: throwing
 * there aborts before our own static key and name are sent to a server we do not trust.
 * `options.invite` is an invite's secret, presented in m3 (encrypted, after the server's key
 * was checked).
 */
export async function initiateHandshake(
  connection: Connection,
  identity: KeyPair,
  name: string,
  verifyServer?: (serverKey: Uint8Array, serverName: string) => Promise<void> | void,
  options: { invite?: Uint8Array } = {},
): Promise<HandshakeResult> {
  const reader = new FrameReader(connection, MAX_HANDSHAKE_FRAME_BYTES);
  const handshake = new XXHandshake({
    initiator: true,
    prologue: PROLOGUE,
    staticKeyPair: identity,
  });
  await writeAll(connection, encodeFrame(handshake.writeMessage1(new Uint8Array(0))));
  const m2 = await nextFrame(reader, "message 2");
  const serverName = step(
    "message 2",
    () => decodeNamePayload(handshake.readMessage2(m2), "server"),
  );
  await verifyServer?.(handshake.remoteStaticKey!, serverName);
  await writeAll(
    connection,
    encodeFrame(handshake.writeMessage3(encodeNamePayload(name, options.invite))),
  );
  return finish(handshake, reader, serverName);
}

/**
 * Runs the handshake as the responder (the server): reads m1 (refusing a payload), writes m2,
 * reads m3 (with the invite secret it may carry in `remoteInvite`).
 */
export async function acceptHandshake(
  connection: Connection,
  identity: KeyPair,
  name: string,
): Promise<HandshakeResult> {
  const reader = new FrameReader(connection, MAX_HANDSHAKE_FRAME_BYTES);
  const handshake = new XXHandshake({
    initiator: false,
    prologue: PROLOGUE,
    staticKeyPair: identity,
  });
  const m1 = await nextFrame(reader, "message 1");
  const payload = step("message 1", () => handshake.readMessage1(m1));
  if (payload.length !== 0) {
    throw new ProtocolError(
      `handshake message 1 rejected: it carries a ${payload.length}-byte payload`,
    );
  }
  await writeAll(connection, encodeFrame(handshake.writeMessage2(encodeNamePayload(name))));
  const m3 = await nextFrame(reader, "message 3");
  const client = step(
    "message 3",
    () => decodeHandshakePayload(handshake.readMessage3(m3), "client"),
  );
  const result = finish(handshake, reader, client.name);
  if (client.invite !== undefined) result.remoteInvite = bytesOfHex(client.invite);
  return result;
}
