/**
 * The handshake and channel over real TCP sockets on 127.0.0.1, with hostile peers: each bad
 * input must end that one connection with a clear error and never yield a decrypted message.
 */
import { assert, assertRejects, concatBytes } from "./helpers.ts";
import { Channel } from "../lib/protocol/channel.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { ProtocolError, TimeoutError } from "../lib/errors.ts";
import { encodeFrame, FrameError, writeAll } from "../lib/protocol/frame.ts";
import { XXHandshake } from "../lib/protocol/handshake.ts";
import { MAX_NONCE, MAX_PLAINTEXT_BYTES } from "../lib/protocol/constants.ts";
import { CipherState } from "../lib/protocol/noise.ts";
import {
  acceptHandshake,
  type HandshakeResult,
  initiateHandshake,
} from "../lib/protocol/handshake_io.ts";
import { ANY_MESSAGE, decodeMessage, type Message } from "../lib/protocol/messages.ts";
import { MAX_TIMER_MS, withDeadline } from "../lib/protocol/deadline.ts";

const serverIdentity = primitives.generateKeyPair();
const clientIdentity = primitives.generateKeyPair();

/** A connected TCP pair on 127.0.0.1. */
async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepted;
  listener.close();
  return [client, server];
}

/** Both sides of a completed handshake over a fresh TCP pair. */
async function securePair(): Promise<
  { client: HandshakeResult; server: HandshakeResult; conns: Deno.TcpConn[] }
> {
  const [clientConn, serverConn] = await tcpPair();
  const [client, server] = await Promise.all([
    initiateHandshake(clientConn, clientIdentity, "alice"),
    acceptHandshake(serverConn, serverIdentity, "server"),
  ]);
  return { client, server, conns: [clientConn, serverConn] };
}

function channels(
  pair: Awaited<ReturnType<typeof securePair>>,
): [Channel<Message, Message>, Channel<Message, Message>] {
  const [clientConn, serverConn] = pair.conns;
  return [
    new Channel(clientConn, pair.client.send, pair.client.receive, {
      codec: ANY_MESSAGE,
      reader: pair.client.reader,
    }),
    new Channel(serverConn, pair.server.send, pair.server.receive, {
      codec: ANY_MESSAGE,
      reader: pair.server.reader,
    }),
  ];
}

/** Captures the next raw frames the client channel writes, instead of sending them. */
function sealedFrames(
  channel: Channel<Message, Message>,
  messages: Message[],
): Promise<Uint8Array[]> {
  const frames: Uint8Array[] = [];
  const original = channel.connection.write.bind(channel.connection);
  channel.connection.write = (bytes: Uint8Array) => {
    frames.push(bytes.slice());
    return Promise.resolve(bytes.length);
  };
  return Promise.all(messages.map((m) => channel.send(m))).then(() => {
    channel.connection.write = original;
    // small frames queued together are coalesced into one write: cut them apart again
    const wire = concatBytes(...frames);
    const cut: Uint8Array[] = [];
    for (let offset = 0; offset < wire.length;) {
      const length = (wire[offset] << 8) | wire[offset + 1];
      cut.push(wire.slice(offset, offset + 2 + length));
      offset += 2 + length;
    }
    return cut;
  });
}

Deno.test("a handshake over TCP authenticates both static keys and names", async () => {
  const pair = await securePair();
  assert.deepEqual(pair.client.remoteStaticKey, serverIdentity.publicKey);
  assert.deepEqual(pair.server.remoteStaticKey, clientIdentity.publicKey);
  assert.equal(pair.client.remoteName, "server");
  assert.equal(pair.server.remoteName, "alice");
  assert.deepEqual(pair.client.handshakeHash, pair.server.handshakeHash);
  pair.conns.forEach((conn) => conn.close());
});

Deno.test("a channel carries messages both ways in order, then reports a clean close", async () => {
  const [client, server] = channels(await securePair());
  for (let i = 0; i < 50; i++) client.send({ type: "msg", text: `c${i}` });
  for (let i = 0; i < 50; i++) assert.equal((await server.receive(2000))?.text, `c${i}`);
  await server.send({ type: "msg", text: "ünïcödé ✓" });
  assert.deepEqual(await client.receive(2000), { type: "msg", text: "ünïcödé ✓" });
  client.close();
  assert.equal(await server.receive(2000), null);
  server.close();
});

Deno.test("a channel refuses to send a message larger than one frame, sending nothing", async () => {
  const [client, server] = channels(await securePair());
  assert.throws(() => client.send({ type: "msg", text: "x".repeat(70_000) }), RangeError);
  await client.send({ type: "msg", text: "after" });
  assert.equal((await server.receive(2000))?.text, "after");
  client.close();
  server.close();
});

Deno.test("a burst of mixed sizes arrives whole and in call order (frames sealed into one reused buffer)", async () => {
  const [client, server] = channels(await securePair());
  // Small frames coalesce into one write; a maximal frame goes alone; the drain's buffer is
  // reused and grown across writes, so a stale or overwritten byte would fail to decrypt.
  const sizes = [10, 200, MAX_PLAINTEXT_BYTES - 40, 5, 30_000, 30_000, 40_000, 1, 64, 20_000];
  const sends = sizes.map((size, i) =>
    client.send({ type: "msg", text: String.fromCharCode(97 + i).repeat(size) })
  );
  for (const [i, size] of sizes.entries()) {
    const message = await server.receive(5000);
    assert.equal(message?.text, String.fromCharCode(97 + i).repeat(size), `message ${i}`);
  }
  await Promise.all(sends);
  assert.equal(client.queuedBytes, 0);
  client.close();
  server.close();
});

Deno.test("one plaintext may be sent on several channels (the room's fan-out)", async () => {
  const first = channels(await securePair()), second = channels(await securePair());
  const plaintext = new TextEncoder().encode('{"type":"msg","text":"shared"}');
  await Promise.all([first[0].sendPlaintext(plaintext), second[0].sendPlaintext(plaintext)]);
  for (const [, receiver] of [first, second]) {
    assert.deepEqual(await receiver.receive(2000), { type: "msg", text: "shared" });
  }
  assert.equal(new TextDecoder().decode(plaintext), '{"type":"msg","text":"shared"}');
  [...first, ...second].forEach((channel) => channel.close());
});

Deno.test("sendPlaintext() refuses a plaintext over the frame limit at once, sending nothing", async () => {
  const [client, server] = channels(await securePair());
  assert.throws(
    () => client.sendPlaintext(new Uint8Array(MAX_PLAINTEXT_BYTES + 1)),
    { name: "RangeError", message: /exceeds the 65519-byte limit/ },
  );
  await client.sendPlaintext(new TextEncoder().encode('{"type":"msg","text":"fits"}'));
  assert.equal((await server.receive(2000))?.text, "fits");
  client.close();
  server.close();
});

Deno.test("a channel whose send nonces are used up closes instead of skipping a frame", async () => {
  const pair = await securePair();
  pair.client.send.setNonce(MAX_NONCE); // 2^64-1 is reserved: the next seal must fail
  const [client, server] = channels(pair);
  await assertRejects(() => client.send({ type: "msg", text: "never" }), RangeError, /exhausted/);
  assert.equal(client.closed, true);
  assert.equal(await server.receive(2000), null);
  server.close();
});

Deno.test("a flipped bit in a transport frame ends the connection and yields nothing", async () => {
  const [client, server] = channels(await securePair());
  const [frame] = await sealedFrames(client, [{ type: "msg", text: "secret" }]);
  for (const position of [2, 10, frame.length - 1]) {
    const [c2, s2] = channels(await securePair());
    const [good] = await sealedFrames(c2, [{ type: "msg", text: "secret" }]);
    good[position] ^= 0x01;
    await writeAll(c2.connection, good);
    await assertRejects(
      () => s2.receive(2000),
      ProtocolError,
      /failed to decrypt and authenticate/,
    );
    c2.close();
    s2.close();
  }
  client.close();
  server.close();
});

Deno.test("a replayed frame fails and does not advance the nonce; the next genuine one opens", async () => {
  const [client, server] = channels(await securePair());
  const [first, second] = await sealedFrames(client, [
    { type: "msg", text: "one" },
    { type: "msg", text: "two" },
  ]);
  await writeAll(client.connection, first);
  assert.equal((await server.receive(2000))?.text, "one");
  await writeAll(client.connection, first); // replay
  await assertRejects(() => server.receive(2000), ProtocolError, /failed to decrypt/);
  await writeAll(client.connection, second);
  assert.equal((await server.receive(2000))?.text, "two");
  client.close();
  server.close();
});

Deno.test("reordered frames fail to decrypt", async () => {
  const [client, server] = channels(await securePair());
  const [, second] = await sealedFrames(client, [
    { type: "msg", text: "one" },
    { type: "msg", text: "two" },
  ]);
  await writeAll(client.connection, second);
  await assertRejects(() => server.receive(2000), ProtocolError, /failed to decrypt/);
  client.close();
  server.close();
});

Deno.test("a truncated transport frame is a protocol error", async () => {
  const [client, server] = channels(await securePair());
  const [frame] = await sealedFrames(client, [{ type: "msg", text: "hello" }]);
  await writeAll(client.connection, frame.subarray(0, frame.length - 3));
  client.connection.close();
  await assertRejects(() => server.receive(2000), FrameError, /middle of a frame/);
  server.close();
});

Deno.test("a zero-length transport frame is a protocol error", async () => {
  const [client, server] = channels(await securePair());
  await writeAll(client.connection, new Uint8Array([0, 0]));
  await assertRejects(() => server.receive(2000), FrameError, /zero-length/);
  client.close();
  server.close();
});

Deno.test("a handshake frame over the handshake limit is refused before its body is read", async () => {
  const [attacker, serverConn] = await tcpPair();
  await writeAll(attacker, new Uint8Array([0xff, 0xff]));
  await assertRejects(
    () => acceptHandshake(serverConn, serverIdentity, "server"),
    FrameError,
    /65535 bytes exceeds the 1024-byte limit/,
  );
  attacker.close();
  serverConn.close();
});

Deno.test("a first handshake message with a payload is refused", async () => {
  const [attacker, serverConn] = await tcpPair();
  const handshake = new XXHandshake({
    initiator: true,
    prologue: new TextEncoder().encode("chat/1"),
    staticKeyPair: clientIdentity,
  });
  await writeAll(attacker, encodeFrame(handshake.writeMessage1(new Uint8Array([1, 2, 3]))));
  await assertRejects(
    () => acceptHandshake(serverConn, serverIdentity, "server"),
    ProtocolError,
    /message 1 rejected: it carries a 3-byte payload/,
  );
  attacker.close();
  serverConn.close();
});

Deno.test("a handshake message of the wrong size is refused with the sizes", async () => {
  const [attacker, serverConn] = await tcpPair();
  await writeAll(attacker, encodeFrame(new Uint8Array(31)));
  await assertRejects(
    () => acceptHandshake(serverConn, serverIdentity, "server"),
    ProtocolError,
    /message 1 rejected: .*31/,
  );
  attacker.close();
  serverConn.close();
});

Deno.test("a wrong prologue fails the handshake at message 2 on the initiator", async () => {
  const [clientConn, serverConn] = await tcpPair();
  const handshake = new XXHandshake({
    initiator: false,
    prologue: new TextEncoder().encode("chat/2"),
    staticKeyPair: serverIdentity,
  });
  const server = (async () => {
    const m1 = new Uint8Array(34);
    let got = 0;
    while (got < 34) got += (await serverConn.read(m1.subarray(got)))!;
    handshake.readMessage1(m1.subarray(2));
    await writeAll(
      serverConn,
      encodeFrame(handshake.writeMessage2(new TextEncoder().encode('{"name":"x"}'))),
    );
  })();
  await assertRejects(
    () => initiateHandshake(clientConn, clientIdentity, "alice"),
    ProtocolError,
    /message 2 rejected: failed to decrypt and authenticate/,
  );
  await server;
  clientConn.close();
  serverConn.close();
});

/** Reads one frame body from a raw connection (test side, no FrameReader). */
async function readRawFrame(conn: Deno.TcpConn): Promise<Uint8Array> {
  const read = async (n: number) => {
    const out = new Uint8Array(n);
    for (let got = 0; got < n;) got += (await conn.read(out.subarray(got)))!;
    return out;
  };
  const header = await read(2);
  return read((header[0] << 8) | header[1]);
}

const prologue = new TextEncoder().encode("chat/1");
const namePayload = new TextEncoder().encode('{"name":"mallory"}');

Deno.test("a flipped bit in handshake message 2 fails the client's handshake", async () => {
  for (const position of [0, 40, 90]) {
    const [clientConn, serverConn] = await tcpPair();
    const fake = new XXHandshake({ initiator: false, prologue, staticKeyPair: serverIdentity });
    const client = initiateHandshake(clientConn, clientIdentity, "alice");
    fake.readMessage1(await readRawFrame(serverConn));
    const m2 = fake.writeMessage2(namePayload);
    m2[position] ^= 0x04;
    await writeAll(serverConn, encodeFrame(m2));
    await assertRejects(() => client, ProtocolError, /message 2 rejected: failed to decrypt/);
    clientConn.close();
    serverConn.close();
  }
});

Deno.test("a flipped bit in handshake message 3 fails the server's handshake", async () => {
  for (const position of [0, 50, 70]) {
    const [clientConn, serverConn] = await tcpPair();
    const fake = new XXHandshake({ initiator: true, prologue, staticKeyPair: clientIdentity });
    const server = acceptHandshake(serverConn, serverIdentity, "server");
    await writeAll(clientConn, encodeFrame(fake.writeMessage1()));
    fake.readMessage2(await readRawFrame(clientConn));
    const m3 = fake.writeMessage3(namePayload);
    m3[position] ^= 0x04;
    await writeAll(clientConn, encodeFrame(m3));
    await assertRejects(() => server, ProtocolError, /message 3 rejected: failed to decrypt/);
    clientConn.close();
    serverConn.close();
  }
});

Deno.test("a handshake payload without a valid name is refused", async () => {
  const [clientConn, serverConn] = await tcpPair();
  const fake = new XXHandshake({ initiator: true, prologue, staticKeyPair: clientIdentity });
  const server = acceptHandshake(serverConn, serverIdentity, "server");
  await writeAll(clientConn, encodeFrame(fake.writeMessage1()));
  fake.readMessage2(await readRawFrame(clientConn));
  await writeAll(
    clientConn,
    encodeFrame(fake.writeMessage3(new TextEncoder().encode('{"name":"a b"}'))),
  );
  await assertRejects(
    () => server,
    ProtocolError,
    /client's handshake payload has no valid "name"/,
  );
  clientConn.close();
  serverConn.close();
});

Deno.test("a peer that sends nothing is cut off by a bounded wait", async () => {
  const [silent, serverConn] = await tcpPair();
  const started = performance.now();
  await assertRejects(
    () =>
      withDeadline(
        acceptHandshake(serverConn, serverIdentity, "server"),
        200,
        "handshake",
        () => serverConn.close(),
      ),
    TimeoutError,
  );
  assert.ok(performance.now() - started < 2000);
  silent.close();
});

Deno.test("a peer that closes mid-handshake is a clear error", async () => {
  const [clientConn, serverConn] = await tcpPair();
  const handshake = new XXHandshake({
    initiator: true,
    prologue: new TextEncoder().encode("chat/1"),
    staticKeyPair: clientIdentity,
  });
  await writeAll(clientConn, encodeFrame(handshake.writeMessage1(new Uint8Array(0))));
  const server = acceptHandshake(serverConn, serverIdentity, "server");
  // read m2, then vanish before m3
  await new Promise((r) => setTimeout(r, 50));
  clientConn.close();
  await assertRejects(() => server, ProtocolError, /closed before handshake message 3/);
  serverConn.close();
});

Deno.test("decodeMessage() refuses invalid UTF-8 but keeps a genuine U+FFFD", () => {
  const bad = new Uint8Array([
    ...new TextEncoder().encode('{"type":"msg","text":"'),
    0xff,
    0x22,
    0x7d,
  ]);
  assert.throws(() => decodeMessage(bad), /not UTF-8 JSON/);
  const genuine = new TextEncoder().encode('{"type":"msg","text":"\ufffd"}');
  assert.equal(decodeMessage(genuine).text, "\ufffd");
  assert.throws(() => decodeMessage(new TextEncoder().encode("[1]")), /not a JSON object/);
  assert.throws(() => decodeMessage(new TextEncoder().encode('{"type":1}')), /no string "type"/);
});

Deno.test("withDeadline() waits out a deadline beyond 2^31-1 ms instead of firing at once", async () => {
  // a timer's delay is a signed 32-bit number: 2^31 ms would otherwise run after 1 ms
  for (const ms of [MAX_TIMER_MS + 1, 3 * 715_827_883, 2 ** 53]) {
    let closed = false;
    const late = new Promise((resolve) => setTimeout(() => resolve("done"), 50));
    assert.equal(await withDeadline(late, ms, "long wait", () => closed = true), "done");
    assert.equal(closed, false);
  }
});

/** A pair of keyed CipherStates whose key buffers are recorded as they are used. */
function recordingCiphers(
  key: Uint8Array,
): { send: CipherState; receive: CipherState; keys: Uint8Array[] } {
  const keys: Uint8Array[] = [];
  const recording = {
    ...primitives,
    encryptInto(...args: Parameters<typeof primitives.encryptInto>) {
      keys.push(args[0]);
      return primitives.encryptInto(...args);
    },
    decrypt(...args: Parameters<typeof primitives.decrypt>) {
      keys.push(args[0]);
      return primitives.decrypt(...args);
    },
  };
  const send = new CipherState(recording), receive = new CipherState(recording);
  send.initializeKey(key);
  receive.initializeKey(key);
  return { send, receive, keys };
}

Deno.test("closing the last channel that owns its ciphers zeroes their keys", async () => {
  const [a, b] = await tcpPair();
  const key = primitives.generateKeyPair().publicKey; // any 32 bytes, one key both ways
  const mine = recordingCiphers(key), peer = recordingCiphers(key);
  const channel = new Channel(a, mine.send, mine.receive, {
    codec: ANY_MESSAGE,
    ownsCiphers: true,
  });
  const other = new Channel(b, peer.send, peer.receive, { codec: ANY_MESSAGE });
  await channel.send({ type: "msg", text: "hi" });
  assert.equal((await other.receive(2000))?.text, "hi");
  await other.send({ type: "msg", text: "back" });
  assert.equal((await channel.receive(2000))?.text, "back");
  assert.equal(mine.keys.length, 2);
  assert.ok(mine.keys.every((key) => key.some((byte) => byte !== 0)));

  channel.close();
  assert.ok(mine.keys.every((key) => key.every((byte) => byte === 0)));
  assert.equal(mine.send.hasKey(), false);
  assert.throws(() => mine.send.encryptWithAd(new Uint8Array(0), new Uint8Array(1)), /wiped/);
  assert.throws(() => mine.receive.decryptWithAd(new Uint8Array(0), new Uint8Array(17)), /wiped/);
  // a channel that does not own its ciphers leaves them alone
  other.close();
  assert.equal(peer.send.hasKey(), true);
  assert.equal(peer.receive.hasKey(), true);
});

Deno.test("the data channel keeps working after the control channel that shares its ciphers closes", async () => {
  const pair = await securePair();
  const [clientControl, serverControl] = channels(pair);
  const [dataClient, dataServer] = await tcpPair();
  // the client's way: both own the ciphers; the data channel is made before the control closes
  const control = new Channel(clientControl.connection, pair.client.send, pair.client.receive, {
    codec: ANY_MESSAGE,
    reader: pair.client.reader,
    ownsCiphers: true,
  });
  await serverControl.send({ type: "port", port: 1 });
  assert.equal((await control.receive(2000))?.type, "port");
  const data = new Channel(dataClient, pair.client.send, pair.client.receive, {
    codec: ANY_MESSAGE,
    ownsCiphers: true,
  });
  const serverData = new Channel(dataServer, pair.server.send, pair.server.receive, {
    codec: ANY_MESSAGE,
  });
  control.close();
  serverControl.close();
  await data.send({ type: "join" });
  assert.equal((await serverData.receive(2000))?.type, "join");
  await serverData.send({ type: "welcome" });
  assert.equal((await data.receive(2000))?.type, "welcome");
  assert.equal(pair.client.send.hasKey(), true);

  data.close();
  assert.equal(pair.client.send.hasKey(), false);
  assert.equal(pair.client.receive.hasKey(), false);
  assert.equal(await serverData.receive(2000), null);
  serverData.close();
});

Deno.test("a frame read just before the channel closes yields null, not a wiped-key error", async () => {
  const key = primitives.generateKeyPair().publicKey;
  const mine = recordingCiphers(key), peer = recordingCiphers(key);
  const sealed = encodeFrame(
    peer.send.encryptWithAd(new Uint8Array(0), new TextEncoder().encode('{"type":"msg"}')),
  );
  // a connection whose read completes when the test says so
  let deliver: ((n: number) => void) | undefined;
  let into: Uint8Array | undefined;
  const connection = {
    read(buffer: Uint8Array) {
      into = buffer;
      return new Promise<number | null>((resolve) => deliver = resolve);
    },
    write: (bytes: Uint8Array) => Promise.resolve(bytes.length),
    close() {},
  };
  const owner = new Channel(connection, mine.send, mine.receive, {
    codec: ANY_MESSAGE,
    ownsCiphers: true,
  });
  const pending = owner.receive(2000);
  await new Promise((resolve) => setTimeout(resolve, 10));
  into!.set(sealed);
  deliver!(sealed.length);
  owner.close(); // before the receive goes on to decrypt the frame
  assert.equal(await pending, null);
});
