/**
 * The peer process for bench/stream.ts (not run by hand): the other end of each measurement,
 * in its own process so sender and receiver each get their own thread.
 *
 *   raw-send PORT BYTES        connect, write BYTES plain bytes in 64 KiB writes, close
 *   channel-send PORT BYTES    connect, XX handshake, Channel<Message, Message>.sendPlaintext of pre-encoded
 *                              maximal (65519-byte) JSON messages until BYTES are sent, close
 *   bare-send PORT BYTES       the same messages without a Channel: a loop that seals each one
 *                              into one reused frame buffer and writes it (the serial floor:
 *                              seal, then write, nothing else)
 *   raw-server                 print "PORT\n", then per connection: read 1 byte, write it back
 *   secure-server              print "PORT\n", then per connection: XX handshake, send the first
 *                              message ({"type":"welcome",...}) through a Channel
 *
 * Needs only `--allow-net=127.0.0.1`. A sender prints one JSON line (its own view of the
 * elapsed time); a server runs until its parent kills it or closes its stdin.
 * @module
 */
import { acceptHandshake, initiateHandshake } from "../lib/protocol/handshake_io.ts";
import { Channel } from "../lib/protocol/channel.ts";
import { writeAll, writeFrameHeader } from "../lib/protocol/frame.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import {
  FRAME_HEADER_BYTES,
  MAX_FRAME_BYTES,
  MAX_PLAINTEXT_BYTES,
} from "../lib/protocol/constants.ts";
import { ANY_MESSAGE } from "../lib/protocol/messages.ts";

const HOST = "127.0.0.1";
const RAW_CHUNK_BYTES = 65536;
/** Frames a channel sender lets queue before waiting on the oldest one. */
const SEND_WINDOW = 4;
const HANDSHAKE_DEADLINE_MS = 10_000;

/** One valid message of exactly MAX_PLAINTEXT_BYTES: {"type":"data","pad":"xxx..."}. */
export function maximalDataMessage(): Uint8Array {
  const head = '{"type":"data","pad":"';
  const tail = '"}';
  const text = head + "x".repeat(MAX_PLAINTEXT_BYTES - head.length - tail.length) + tail;
  const bytes = new TextEncoder().encode(text);
  if (bytes.length !== MAX_PLAINTEXT_BYTES) throw new Error("bad maximal message size");
  return bytes;
}

function report(result: Record<string, unknown>): void {
  console.log(JSON.stringify(result));
}

async function rawSend(port: number, bytes: number): Promise<void> {
  const conn = await Deno.connect({ hostname: HOST, port });
  conn.setNoDelay(true);
  const chunk = new Uint8Array(RAW_CHUNK_BYTES).fill(0x78);
  const start = performance.now();
  let sent = 0;
  while (sent < bytes) {
    const n = Math.min(RAW_CHUNK_BYTES, bytes - sent);
    await writeAll(conn, n === RAW_CHUNK_BYTES ? chunk : chunk.subarray(0, n));
    sent += n;
  }
  const ms = performance.now() - start;
  conn.close();
  report({ sent, ms });
}

async function channelSend(port: number, bytes: number): Promise<void> {
  const identity = primitives.generateKeyPair();
  const conn = await Deno.connect({ hostname: HOST, port });
  conn.setNoDelay(true);
  const session = await initiateHandshake(conn, identity, "sender");
  const channel = new Channel(conn, session.send, session.receive, {
    codec: ANY_MESSAGE,
    reader: session.reader,
  });
  const plaintext = maximalDataMessage();
  const messages = Math.ceil(bytes / plaintext.length);
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let i = 0; i < messages; i++) {
    pending.push(channel.sendPlaintext(plaintext)); // queued; the channel seals as it writes
    if (pending.length >= SEND_WINDOW) await pending.shift();
  }
  await Promise.all(pending);
  await channel.flush();
  const ms = performance.now() - start;
  channel.close();
  report({ sent: messages * plaintext.length, messages, ms });
}

async function bareSend(port: number, bytes: number): Promise<void> {
  const identity = primitives.generateKeyPair();
  const conn = await Deno.connect({ hostname: HOST, port });
  conn.setNoDelay(true);
  const session = await initiateHandshake(conn, identity, "sender");
  const plaintext = maximalDataMessage();
  const messages = Math.ceil(bytes / plaintext.length);
  const frame = new Uint8Array(FRAME_HEADER_BYTES + MAX_FRAME_BYTES);
  writeFrameHeader(frame, 0, MAX_FRAME_BYTES);
  const start = performance.now();
  for (let i = 0; i < messages; i++) {
    session.send.encryptWithAdInto(new Uint8Array(0), plaintext, frame, FRAME_HEADER_BYTES);
    await writeAll(conn, frame);
  }
  const ms = performance.now() - start;
  conn.close();
  report({ sent: messages * plaintext.length, messages, ms });
}

async function serve(kind: "raw" | "secure"): Promise<void> {
  const identity = primitives.generateKeyPair();
  const listener = Deno.listen({ hostname: HOST, port: 0, transport: "tcp" });
  console.log(String(listener.addr.port));
  // The parent closing our stdin (or dying) ends the server.
  (async () => {
    const buffer = new Uint8Array(64);
    try {
      while (await Deno.stdin.read(buffer) !== null) { /* ignore input */ }
    } finally {
      listener.close();
    }
  })();
  try {
    for await (const conn of listener) {
      conn.setNoDelay(true);
      (kind === "raw" ? echoOnce(conn) : welcome(conn, identity)).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch {
          // already closed
        }
      });
    }
  } catch {
    // listener closed
  }
}

async function echoOnce(conn: Deno.TcpConn): Promise<void> {
  const byte = new Uint8Array(1);
  if (await conn.read(byte) === null) return;
  await writeAll(conn, byte);
  while (await conn.read(byte) !== null) { /* wait for the client to close */ }
}

async function welcome(
  conn: Deno.TcpConn,
  identity: ReturnType<typeof primitives.generateKeyPair>,
): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        conn.close();
      } catch { /* closed */ }
      reject(new Error("handshake deadline"));
    }, HANDSHAKE_DEADLINE_MS);
  });
  try {
    const session = await Promise.race([acceptHandshake(conn, identity, "server"), deadline]);
    const channel = new Channel(conn, session.send, session.receive, {
      codec: ANY_MESSAGE,
      reader: session.reader,
    });
    await channel.send({ type: "welcome", port: 7448 });
    await channel.receive(); // null when the client closes
  } finally {
    clearTimeout(timer);
  }
}

async function main(): Promise<void> {
  const [mode, portText, bytesText] = Deno.args;
  switch (mode) {
    case "raw-send":
      await rawSend(Number(portText), Number(bytesText));
      break;
    case "channel-send":
      await channelSend(Number(portText), Number(bytesText));
      break;
    case "bare-send":
      await bareSend(Number(portText), Number(bytesText));
      break;
    case "raw-server":
      await serve("raw");
      break;
    case "secure-server":
      await serve("secure");
      break;
    default:
      console.error(`unknown mode ${mode}`);
      Deno.exit(2);
  }
}

if (import.meta.main) await main();
