/**
 * Rekeying across the 65,536-message boundary (docs/PROTOCOL.md §5.5) over a real TCP pair on
 * 127.0.0.1, both directions at once, through Channel as the program uses it.
 */
import { assert } from "./helpers.ts";
import { Channel } from "../lib/protocol/channel.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { REKEY_INTERVAL } from "../lib/protocol/constants.ts";
import { acceptHandshake, initiateHandshake } from "../lib/protocol/handshake_io.ts";
import { ANY_MESSAGE, type Message } from "../lib/protocol/messages.ts";

/** Sends `count` numbered messages on `channel`. */
async function sendNumbered(channel: Channel<Message, Message>, count: number): Promise<void> {
  let last: Promise<void> = Promise.resolve();
  for (let i = 0; i < count; i++) {
    last = channel.send({ type: "n", i });
    // let the writer catch up now and then, so the queue stays small
    if (i % 4096 === 4095) await last;
  }
  await last;
}

/** Receives `count` messages and checks they are 0, 1, 2, … in order. */
async function receiveNumbered(channel: Channel<Message, Message>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const message = await channel.receive(10_000);
    assert.ok(message !== null, `closed after ${i} messages`);
    assert.equal(message.i, i, "in order, none lost");
  }
}

Deno.test({
  name: "65,536 + 5 messages each way cross the rekey boundary over TCP and all decrypt",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = listener.accept();
    const clientConn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const serverConn = await accepted;
    listener.close();
    try {
      const [client, server] = await Promise.all([
        initiateHandshake(clientConn, primitives.generateKeyPair(), "alice"),
        acceptHandshake(serverConn, primitives.generateKeyPair(), "server"),
      ]);
      const a = new Channel(clientConn, client.send, client.receive, {
        codec: ANY_MESSAGE,
        reader: client.reader,
      });
      const b = new Channel(serverConn, server.send, server.receive, {
        codec: ANY_MESSAGE,
        reader: server.reader,
      });

      const count = REKEY_INTERVAL + 5;
      const started = performance.now();
      await Promise.all([
        sendNumbered(a, count),
        sendNumbered(b, count),
        receiveNumbered(a, count),
        receiveNumbered(b, count),
      ]);
      const elapsed = performance.now() - started;
      console.log(`2 x ${count} messages in ${(elapsed / 1000).toFixed(1)} s`);

      // every CipherState went past the boundary: nonces count on across a rekey (Noise §11.3)
      for (const state of [client.send, client.receive, server.send, server.receive]) {
        assert.equal(state.nonce, BigInt(count));
      }
      // and the keys still agree after it, both ways
      await a.send({ type: "after" });
      assert.equal((await b.receive(5000))?.type, "after");
      await b.send({ type: "after" });
      assert.equal((await a.receive(5000))?.type, "after");
      a.close();
      assert.equal(await b.receive(5000), null);
      b.close();
    } finally {
      for (const conn of [clientConn, serverConn]) {
        try {
          conn.close();
        } catch { /* closed above */ }
      }
    }
  },
});
