/**
 * The pure parts of file transfer: the chunk codec and the file messages' parsers with hostile
 * input, the channel's priority of lines over chunks (over a real TCP pair), and the server's
 * relay over a room of plain members: its refusals, its order checks and its backpressure.
 */
import { assert, assertThrows } from "./helpers.ts";
import {
  CHUNK_HEADER_BYTES,
  chunkPlaintext,
  decodeChunk,
  type FileEnd,
  MAX_CHUNK_DATA_BYTES,
  parseFileClientMessage,
  parseFileServerMessage,
} from "../lib/protocol/file_messages.ts";
import { MAX_PLAINTEXT_BYTES } from "../lib/protocol/constants.ts";
import {
  CLIENT_SIDE,
  encodeMessage,
  Feature,
  isDisplayName,
  SERVER_SIDE,
  type ServerMessage,
} from "../lib/protocol/messages.ts";
import { ProtocolError } from "../lib/errors.ts";
import { type Member, Room } from "../lib/chat/room.ts";
import { TransferRelay } from "../lib/chat/transfers.ts";
import { RELAY_AHEAD_BYTES } from "../lib/chat/limits.ts";
import { Channel } from "../lib/protocol/channel.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { acceptHandshake, initiateHandshake } from "../lib/protocol/handshake_io.ts";

const ID = "00112233aabbccdd";

Deno.test("a chunk round-trips; the largest fills the largest plaintext exactly", () => {
  const plaintext = chunkPlaintext(ID, 2 ** 40, MAX_CHUNK_DATA_BYTES);
  assert.equal(plaintext.length, MAX_PLAINTEXT_BYTES);
  plaintext.fill(7, CHUNK_HEADER_BYTES);
  const chunk = decodeChunk(plaintext)!;
  assert.equal(chunk.id, ID);
  assert.equal(chunk.offset, 2 ** 40);
  assert.equal(chunk.data.length, MAX_CHUNK_DATA_BYTES);
  assert.ok(chunk.data.every((b) => b === 7));
  // the codecs tell it from JSON by its first byte, both ways
  assert.equal(SERVER_SIDE.decode(plaintext)?.type, "chunk");
  assert.equal(CLIENT_SIDE.decode(plaintext)?.type, "chunk");
  assertThrows(() => chunkPlaintext(ID, 0, MAX_CHUNK_DATA_BYTES + 1), RangeError);
  assertThrows(() => chunkPlaintext("nothex", 0, 1), RangeError);
});

Deno.test("hostile binary messages: no data, an offset past 2^53, an unknown kind (ignored)", () => {
  const empty = chunkPlaintext(ID, 0, 1).subarray(0, CHUNK_HEADER_BYTES);
  assertThrows(() => decodeChunk(empty), ProtocolError);
  const far = chunkPlaintext(ID, 0, 1);
  new DataView(far.buffer).setBigUint64(10, 2n ** 60n);
  assertThrows(() => decodeChunk(far), ProtocolError);
  const unknown = chunkPlaintext(ID, 0, 1);
  unknown[1] = 0x7f;
  assert.equal(SERVER_SIDE.decode(unknown), undefined);
  assert.equal(SERVER_SIDE.decode(new Uint8Array([0])), undefined);
});

Deno.test("file messages: exact fields, or a ProtocolError that names the field", () => {
  const offer = {
    type: "file-offer",
    id: ID,
    to: "bob",
    name: "a.txt",
    size: 3,
    sha256: "ab".repeat(32),
  };
  assert.deepEqual(parseFileClientMessage(offer), offer);
  for (
    const [field, value] of [
      ["id", "0011"],
      ["id", ID.toUpperCase()],
      ["size", -1],
      ["size", 1.5],
      ["size", 2 ** 53],
      ["size", "3"],
      ["sha256", "ab"],
      ["name", ""],
      ["name", "x".repeat(1025)],
    ] as const
  ) {
    assertThrows(
      () => parseFileClientMessage({ ...offer, [field]: value }),
      ProtocolError,
      new RegExp(`"${field}"`),
    );
  }
  const relayed = {
    ...offer,
    from: "ann",
    fingerprint: "0000:1111:2222:3333",
    expires_ms: 600000,
  };
  assert.equal(parseFileServerMessage(relayed, isDisplayName)?.type, "file-offer");
  assertThrows(
    () => parseFileServerMessage({ ...relayed, from: "ann\u001b[2J" }, isDisplayName),
    ProtocolError,
  );
  assert.equal(parseFileClientMessage({ type: "file-unknown" }), undefined);
  const end = parseFileClientMessage({ type: "file-end", id: ID, code: "done" }) as FileEnd;
  assert.equal(end.message, "");
});

Deno.test("a line sent after a run of chunks is written before the chunks still queued", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const clientConn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const serverConn = await accepted;
  listener.close();
  const [client, server] = await Promise.all([
    initiateHandshake(clientConn, primitives.generateKeyPair(), "ann"),
    acceptHandshake(serverConn, primitives.generateKeyPair(), "srv"),
  ]);
  const sending = new Channel(serverConn, server.send, server.receive, {
    codec: SERVER_SIDE,
    reader: server.reader,
  });
  const receiving = new Channel(clientConn, client.send, client.receive, {
    codec: CLIENT_SIDE,
    reader: client.reader,
  });
  try {
    const chunks = Array.from({ length: 64 }, (_, i) => {
      const plaintext = chunkPlaintext(ID, i * MAX_CHUNK_DATA_BYTES, MAX_CHUNK_DATA_BYTES);
      return sending.sendBulk(plaintext);
    });
    assert.ok(sending.bulkQueuedBytes > 2 << 20);
    const line = sending.send({ type: "msg", from: "ann", text: "urgent" } as ServerMessage);
    const order: string[] = [];
    for (let i = 0; i < 65; i++) {
      const message = (await receiving.receive(5000))!;
      order.push(message.type === "chunk" ? "chunk" : "line");
    }
    await Promise.all([...chunks, line]);
    const at = order.indexOf("line");
    // the chunks being written when the line came go first (at most one 256 KiB write)
    assert.ok(at >= 0 && at <= 5, `the line came after ${at} chunks`);
    assert.equal(sending.bulkQueuedBytes, 0);
  } finally {
    sending.close();
    receiving.close();
  }
});

/** A member that records what it is told, and takes chunks as `take` says. */
function member(
  id: number,
  name: string,
  take?: (plaintext: Uint8Array) => Promise<void> | undefined,
) {
  const told: ServerMessage[] = [];
  const chunks: Uint8Array[] = [];
  let m: Member = {
    id,
    name,
    fingerprint: "0000:1111:2222:" + String(id).padStart(4, "0"),
    features: new Set([Feature.files]),
    deliver: (message) => void (message.type.startsWith("file-") && told.push(message)),
    deliverChunk: (plaintext) => {
      chunks.push(plaintext);
      return take?.(plaintext);
    },
  };
  return {
    get m() {
      return m;
    },
    set m(value: Member) {
      m = value;
    },
    told,
    chunks,
  };
}

function relayOf(limits: Partial<ConstructorParameters<typeof TransferRelay>[1]> = {}) {
  const room = new Room();
  const relay = new TransferRelay(room, {
    maxFileBytes: 1000,
    maxTransfersPerMember: 2,
    offerTtlMs: 60_000,
    stallMs: 200,
    ...limits,
  });
  return { room, relay };
}

const offer = (id: string, to: string, size = 100) => ({
  type: "file-offer" as const,
  id,
  to,
  name: "a.txt",
  size,
  sha256: "ab".repeat(32),
});

const codes = (told: ServerMessage[]) =>
  told.filter((m) => m.type === "file-end").map((m) => (m as FileEnd).code);

Deno.test("the relay refuses offers it cannot carry, each with its code", () => {
  const { room, relay } = relayOf();
  const ann = member(1, "ann"), bob = member(2, "bob");
  const old = member(3, "old");
  old.m = { ...old.m, features: new Set(), deliverChunk: undefined };
  [ann, bob, old].forEach((x) => room.join(x.m));
  relay.offer(1, offer("0000000000000001", "nobody"));
  relay.offer(1, offer("0000000000000002", "ann"));
  relay.offer(1, offer("0000000000000003", "old"));
  relay.offer(1, offer("0000000000000004", "bob", 1001));
  relay.offer(1, offer("0000000000000005", "bob"));
  relay.offer(1, offer("0000000000000005", "bob"));
  relay.offer(1, offer("0000000000000006", "bob"));
  relay.offer(1, offer("0000000000000007", "bob"));
  assert.deepEqual(codes(ann.told), [
    "no-such-member",
    "no-such-member",
    "unsupported",
    "too-large",
    "bad-offer",
    "busy",
  ]);
  assert.equal(relay.size, 2);
  assert.equal(bob.told.filter((m) => m.type === "file-offer").length, 2);
  relay.close();
});

Deno.test("the relay routes accept, acks and chunks in order, and ends a transfer on a gap", async () => {
  const { room, relay } = relayOf();
  const ann = member(1, "ann"), bob = member(2, "bob"), eve = member(3, "eve");
  [ann, bob, eve].forEach((x) => room.join(x.m));
  relay.offer(1, offer(ID, "bob"));
  relay.accept(3, { type: "file-accept", id: ID, offset: 0 }); // not eve's to accept
  assert.equal(ann.told.length, 0);
  relay.accept(2, { type: "file-accept", id: ID, offset: 40 });
  assert.equal(ann.told[0].type, "file-accept");
  const chunk = (offset: number, length: number) =>
    decodeChunk(chunkPlaintext(ID, offset, length))!;
  await relay.chunk(3, chunk(40, 10)); // not eve's transfer: ignored
  await relay.chunk(1, chunk(40, 10));
  await relay.chunk(1, chunk(50, 10));
  assert.equal(bob.chunks.length, 2);
  relay.ack(2, { type: "file-ack", id: ID, offset: 60 });
  assert.equal(ann.told[1].type, "file-ack");
  await relay.chunk(1, chunk(70, 10)); // a gap
  assert.deepEqual(codes(ann.told), ["bad-offer"]);
  assert.deepEqual(codes(bob.told), ["bad-offer"]);
  assert.equal(relay.size, 0);
});

Deno.test("the relay waits for a receiver's backlog, and ends a stalled transfer for both", async () => {
  const { room, relay } = relayOf({ stallMs: 150 });
  let release: (() => void) | undefined;
  const ann = member(1, "ann");
  const bob = member(2, "bob", () => new Promise<void>((resolve) => release = resolve));
  [ann, bob].forEach((x) => room.join(x.m));
  relay.offer(1, offer(ID, "bob"));
  relay.accept(2, { type: "file-accept", id: ID, offset: 0 });
  const chunk = (offset: number) => decodeChunk(chunkPlaintext(ID, offset, 10))!;
  let done = false;
  const first = relay.chunk(1, chunk(0)).then(() => done = true);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(done, false); // the sender is not read while bob's backlog waits
  release!();
  await first;
  const second = relay.chunk(1, chunk(10));
  await second; // nobody releases it: after stallMs the transfer ends
  assert.deepEqual(codes(ann.told), ["stalled"]);
  assert.deepEqual(codes(bob.told), ["stalled"]);
});

Deno.test("a member leaving ends its transfers; the other side hears who left", () => {
  const { room, relay } = relayOf();
  const ann = member(1, "ann"), bob = member(2, "bob");
  [ann, bob].forEach((x) => room.join(x.m));
  relay.offer(1, offer(ID, "bob"));
  relay.left(2);
  room.leave(2, "left");
  const end = ann.told.find((m) => m.type === "file-end") as FileEnd;
  assert.equal(end.code, "gone");
  assert.equal(end.message, "bob left the room");
  assert.equal(relay.size, 0);
  assert.ok(encodeMessage(end).length < 200);
});

Deno.test("the relay sends a receiver at most RELAY_AHEAD_BYTES (2 MiB) past its last ack; an ack lets the rest go", async () => {
  const { room, relay } = relayOf({ maxFileBytes: 8 << 20, stallMs: 2000 });
  const ann = member(1, "ann"), bob = member(2, "bob");
  [ann, bob].forEach((x) => room.join(x.m));
  relay.offer(1, offer(ID, "bob", 4 << 20));
  relay.accept(2, { type: "file-accept", id: ID, offset: 0 });
  const chunk = (offset: number) => decodeChunk(chunkPlaintext(ID, offset, MAX_CHUNK_DATA_BYTES))!;
  let offset = 0;
  while (offset + MAX_CHUNK_DATA_BYTES <= RELAY_AHEAD_BYTES) {
    await relay.chunk(1, chunk(offset));
    offset += MAX_CHUNK_DATA_BYTES;
  }
  const delivered = bob.chunks.length;
  let done = false;
  const held = relay.chunk(1, chunk(offset)).then(() => done = true);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(done, false); // past the mark: the sender is not read until bob acks
  assert.equal(bob.chunks.length, delivered);
  relay.ack(2, { type: "file-ack", id: ID, offset: 128 << 10 });
  await held;
  assert.equal(bob.chunks.length, delivered + 1);
  assert.equal(relay.size, 1);
  relay.close();
});

Deno.test("outsider findings: a chunk before the accept, a done before the last byte, a third offer to one member, a transfer gone quiet", () => {
  const { room, relay } = relayOf({ maxTransfersPerMember: 4, stallMs: 1000 });
  const ann = member(1, "ann"), bob = member(2, "bob");
  [ann, bob].forEach((x) => room.join(x.m));
  const chunk = (id: string, offset: number) => decodeChunk(chunkPlaintext(id, offset, 10))!;
  // a chunk before the accept ends the offer for both (PROTOCOL.md 7.11)
  relay.offer(1, offer("0000000000000001", "bob"));
  void relay.chunk(1, chunk("0000000000000001", 0));
  assert.deepEqual(codes(bob.told), ["bad-offer"]);
  // a receiver's done before every byte was relayed is not passed on as done
  relay.offer(1, offer("0000000000000002", "bob"));
  relay.accept(2, { type: "file-accept", id: "0000000000000002", offset: 0 });
  relay.end(2, { type: "file-end", id: "0000000000000002", code: "done", message: "" });
  assert.deepEqual(codes(ann.told), ["bad-offer", "bad-offer"]);
  // one member may not take all of another's slots
  for (const id of ["0000000000000003", "0000000000000004", "0000000000000005"]) {
    relay.offer(1, offer(id, "bob"));
  }
  assert.deepEqual(codes(ann.told).slice(2), ["busy"]);
  // a running transfer in which nothing moves ends as stalled, freeing both sides' slots
  relay.accept(2, { type: "file-accept", id: "0000000000000003", offset: 0 });
  relay.sweep(performance.now() + 500);
  assert.equal(relay.size, 2);
  relay.sweep(performance.now() + 1500);
  assert.equal(relay.size, 1); // the offer not accepted waits for its own expiry
  assert.equal(codes(bob.told).at(-1), "stalled");
  relay.close();
});

Deno.test("a transfer that trickles a byte now and then ends as stalled; one that moves enough goes on", async () => {
  const { room, relay } = relayOf({ maxFileBytes: 1 << 20, stallMs: 1000 });
  const ann = member(1, "ann"), bob = member(2, "bob");
  [ann, bob].forEach((x) => room.join(x.m));
  const trickle = "0000000000000001", steady = "0000000000000002";
  for (const id of [trickle, steady]) {
    relay.offer(1, offer(id, "bob", 1 << 20));
    relay.accept(2, { type: "file-accept", id, offset: 0 });
  }
  const start = performance.now();
  await relay.chunk(1, decodeChunk(chunkPlaintext(trickle, 0, 1))!);
  for (let offset = 0; offset < 2 * MAX_CHUNK_DATA_BYTES; offset += MAX_CHUNK_DATA_BYTES) {
    await relay.chunk(1, decodeChunk(chunkPlaintext(steady, offset, MAX_CHUNK_DATA_BYTES))!);
  }
  relay.sweep(start + 1500);
  assert.deepEqual(codes(ann.told), ["stalled"]);
  assert.equal(relay.size, 1); // the steady one goes on, with a new window
  relay.sweep(start + 1600);
  assert.equal(relay.size, 1);
  relay.close();
});
