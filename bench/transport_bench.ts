/**
 * In-process transport benchmarks, each group against a raw baseline:
 * `deno bench --allow-net=127.0.0.1 bench/transport_bench.ts`.
 *
 * - frame-64KiB: encodeFrame and FrameReader (over an in-memory source) against a raw copy.
 * - decode-64KiB: decodeMessage (strict UTF-8 + JSON.parse) against a lenient decode + parse.
 * - channel-1MiB: 1 MiB through a pair of Channels over a real loopback TCP pair (both ends in
 *   this process, so one thread does the sealing, the opening and the I/O) against 1 MiB of
 *   plain bytes over another loopback pair.
 * - first-message: TCP connect, XX handshake and the first message decrypted, both ends in this
 *   process, against a TCP connect plus a 1-byte round trip.
 *
 * The cross-process figures (256 MiB streams, latency percentiles) are in bench/stream.ts.
 * @module
 */
import { MAX_FRAME_BYTES, MAX_PLAINTEXT_BYTES } from "../lib/protocol/constants.ts";
import { type ByteReader, encodeFrame, FrameReader, writeAll } from "../lib/protocol/frame.ts";
import { Channel } from "../lib/protocol/channel.ts";
import { acceptHandshake, initiateHandshake } from "../lib/protocol/handshake_io.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { CipherState } from "../lib/protocol/noise.ts";
import { maximalDataMessage } from "./stream_peer.ts";
import { ANY_MESSAGE, decodeMessage } from "../lib/protocol/messages.ts";

const HOST = "127.0.0.1";
const plaintext = maximalDataMessage(); // a valid 65519-byte {"type":"data",...} message

// --- frame-64KiB ----------------------------------------------------------------------

/** An endless in-memory byte source: the same frame over and over, as a socket would give it. */
class RepeatingSource implements ByteReader {
  #offset = 0;
  constructor(readonly bytes: Uint8Array) {}
  read(buffer: Uint8Array): Promise<number> {
    const n = Math.min(buffer.length, this.bytes.length - this.#offset);
    buffer.set(this.bytes.subarray(this.#offset, this.#offset + n));
    this.#offset = (this.#offset + n) % this.bytes.length;
    return Promise.resolve(n);
  }
}

const body = crypto.getRandomValues(new Uint8Array(MAX_FRAME_BYTES));
const copyTarget = new Uint8Array(MAX_FRAME_BYTES + 2);
const frameReader = new FrameReader(new RepeatingSource(encodeFrame(body)));

Deno.bench({
  name: "raw copy 65535 B (Uint8Array.set)",
  group: "frame-64KiB",
  baseline: true,
  fn() {
    copyTarget.set(body, 2);
  },
});

Deno.bench({
  name: "encodeFrame 65535 B",
  group: "frame-64KiB",
  fn() {
    encodeFrame(body);
  },
});

Deno.bench({
  name: "FrameReader.readFrame 65535 B (in-memory source)",
  group: "frame-64KiB",
  async fn() {
    const frame = await frameReader.readFrame();
    if (frame?.length !== MAX_FRAME_BYTES) throw new Error("bad frame");
  },
});

// --- decode-64KiB -------------------------------------------------------------------------

const lenientUtf8 = new TextDecoder("utf-8");

Deno.bench({
  name: "lenient TextDecoder + JSON.parse 65519 B",
  group: "decode-64KiB",
  baseline: true,
  fn() {
    JSON.parse(lenientUtf8.decode(plaintext));
  },
});

Deno.bench({
  name: "decodeMessage 65519 B (fatal TextDecoder + JSON.parse + checks)",
  group: "decode-64KiB",
  fn() {
    decodeMessage(plaintext);
  },
});

// --- channel-1MiB ---------------------------------------------------------------------------

const MESSAGES_PER_MIB = 16; // 16 x 65519 B = 1,048,304 B of plaintext
const RAW_BYTES = MESSAGES_PER_MIB * 65536;

async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: HOST, port: 0, transport: "tcp" });
  try {
    const [client, server] = await Promise.all([
      Deno.connect({ hostname: HOST, port: listener.addr.port }),
      listener.accept(),
    ]);
    client.setNoDelay(true);
    server.setNoDelay(true);
    return [client, server];
  } finally {
    listener.close();
  }
}

const [rawClient, rawServer] = await tcpPair();
const rawChunk = new Uint8Array(65536).fill(0x78);
const rawBuffer = new Uint8Array(2 * (MAX_FRAME_BYTES + 2));

const [secureClient, secureServer] = await tcpPair();
const alice = primitives.generateKeyPair();
const bob = primitives.generateKeyPair();
const [aliceSession, bobSession] = await Promise.all([
  initiateHandshake(secureClient, alice, "alice"),
  acceptHandshake(secureServer, bob, "bob"),
]);
const sender = new Channel(secureClient, aliceSession.send, aliceSession.receive, {
  codec: ANY_MESSAGE,
  reader: aliceSession.reader,
});
const receiver = new Channel(secureServer, bobSession.send, bobSession.receive, {
  codec: ANY_MESSAGE,
  reader: bobSession.reader,
});

// The process exits with the connections still open; close them first.
globalThis.addEventListener("unload", () => {
  for (const conn of [rawClient, rawServer]) conn.close();
  sender.close();
  receiver.close();
});

Deno.bench({
  name: "raw TCP 1 MiB (16 x 64 KiB writes), loopback, one process",
  group: "channel-1MiB",
  baseline: true,
  async fn() {
    const writing = (async () => {
      for (let i = 0; i < MESSAGES_PER_MIB; i++) await writeAll(rawClient, rawChunk);
    })();
    let received = 0;
    while (received < RAW_BYTES) {
      const n = await rawServer.read(rawBuffer.subarray(0, RAW_BYTES - received));
      if (n === null) throw new Error("closed");
      received += n;
    }
    await writing;
  },
});

Deno.bench({
  name: "Channel 1 MiB (16 x 65519 B sendPlaintext, receive()), loopback, one process",
  group: "channel-1MiB",
  async fn() {
    for (let i = 0; i < MESSAGES_PER_MIB; i++) sender.sendPlaintext(plaintext);
    for (let i = 0; i < MESSAGES_PER_MIB; i++) {
      const message = await receiver.receive();
      if (message?.type !== "data") throw new Error("bad message");
    }
    await sender.flush();
  },
});

const sealer = new CipherState(primitives);
const opener = new CipherState(primitives);
const sharedKey = crypto.getRandomValues(new Uint8Array(32));
sealer.initializeKey(sharedKey);
opener.initializeKey(sharedKey);
const NO_AD = new Uint8Array(0);

Deno.bench({
  name: "seal + open + decodeMessage 1 MiB in memory (no I/O)",
  group: "channel-1MiB",
  fn() {
    for (let i = 0; i < MESSAGES_PER_MIB; i++) {
      decodeMessage(opener.decryptWithAd(NO_AD, sealer.encryptWithAd(NO_AD, plaintext)));
    }
  },
});

// --- first-message ----------------------------------------------------------------------------

const listener = Deno.listen({ hostname: HOST, port: 0, transport: "tcp" });
globalThis.addEventListener("unload", () => listener.close());
const serverIdentity = primitives.generateKeyPair();
const clientIdentity = primitives.generateKeyPair();

async function connect(): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: HOST, port: listener.addr.port });
  conn.setNoDelay(true);
  return conn;
}

async function accept(): Promise<Deno.TcpConn> {
  const conn = await listener.accept();
  conn.setNoDelay(true);
  return conn;
}

Deno.bench({
  name: "raw TCP connect + 1-byte round trip, one process",
  group: "first-message",
  baseline: true,
  async fn() {
    const [client, server] = await Promise.all([connect(), accept()]);
    try {
      const byte = Uint8Array.of(1);
      await Promise.all([
        client.write(byte),
        server.read(byte).then(() => server.write(byte)),
      ]);
      if (await client.read(byte) !== 1) throw new Error("no echo");
    } finally {
      client.close();
      server.close();
    }
  },
});

Deno.bench({
  name: "connect + XX handshake + first message decrypted, one process",
  group: "first-message",
  async fn() {
    const [client, server] = await Promise.all([connect(), accept()]);
    try {
      const serving = acceptHandshake(server, serverIdentity, "server").then((session) =>
        new Channel(server, session.send, session.receive, {
          codec: ANY_MESSAGE,
          reader: session.reader,
        })
          .send({ type: "welcome", port: 7448 })
      );
      const session = await initiateHandshake(client, clientIdentity, "client");
      const channel = new Channel(client, session.send, session.receive, {
        codec: ANY_MESSAGE,
        reader: session.reader,
      });
      const message = await channel.receive();
      if (message?.type !== "welcome") throw new Error("no welcome");
      await serving;
    } finally {
      client.close();
      server.close();
    }
  },
});

if (MAX_PLAINTEXT_BYTES !== plaintext.length) throw new Error("unexpected message size");
