/**
 * Load: 200 clients in one room, each saying 100 lines, against a real `chat serve --headless`
 * process over real TCP. Every client must receive every other client's lines, none lost, in
 * order per sender: 200 x 100 lines x 199 recipients = 3,980,000 deliveries.
 *
 * The 200 clients are built from lib/client.ts inside this one test process: 200 `chat connect`
 * processes (a Deno runtime each) would exhaust this 2-core machine long before the server.
 */
import { assert } from "./helpers.ts";
import { Sandbox } from "./process.ts";
import {
  inBatches,
  makeIdentities,
  ONE_ADDRESS_CROWD,
  rssKiB,
  startServer,
  TestClient,
} from "./clients.ts";

const CLIENTS = 200;
const LINES = 100;
/**
 * Lines in flight (said, not yet delivered to everyone), room-wide. The senders keep under it,
 * as a paced room would: all 20,000 lines at once fit the rate limiter's burst, but would queue
 * ~4 M frames in the server at once, and a server queue past --max-queue-bytes drops its client
 * (the limit doing its job, not a lost line). 400 lines in flight is ~400 queued frames per
 * client at most, far under the 1 MiB default.
 */
const WINDOW_LINES = 400;

Deno.test({
  name: "200 clients each saying 100 lines all receive every other client's lines, in order",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    Sandbox.run(async (s) => {
      const identities = makeIdentities("u", CLIENTS);
      const { server, port } = await startServer(s, identities, [
        "--headless",
        ...ONE_ADDRESS_CROWD,
        "--rate",
        "20",
        "--burst",
        "100",
      ]);
      const rssAtStart = await rssKiB(server.pid);

      // everyone joins (20 at a time, so the handshakes do not all time out together)
      let started = performance.now();
      const clients: TestClient[] = new Array(CLIENTS);
      await inBatches(identities, 20, async (identity, i) => {
        clients[i] = await TestClient.join(port, identity);
      });
      const joinMs = performance.now() - started;
      assert.deepEqual(clients.map((c) => c.name), identities.map((id) => id.name));

      // each receiver checks every line as it arrives: from whom, and the next index expected
      const expectedNext = clients.map(() => new Int32Array(CLIENTS));
      const problems: string[] = [];
      let delivered = 0;
      let progress: () => void = () => {};
      for (const [r, client] of clients.entries()) {
        client.onMessage = ({ from, text }) => {
          const sender = Number(from.slice(1));
          const [who, index] = text.split(" ").map(Number);
          if (who !== sender || index !== expectedNext[r][sender]) {
            if (problems.length < 10) problems.push(`u${r} got "${from}: ${text}"`);
          }
          expectedNext[r][sender] = index + 1;
          delivered++;
          if (delivered % 1000 === 0) progress();
        };
      }
      // (a client is in the room before its welcome is sent, so all 200 are members now)

      // round robin over the senders, keeping at most WINDOW_LINES lines in flight
      started = performance.now();
      const total = CLIENTS * LINES * (CLIENTS - 1);
      let said = 0;
      for (let k = 0; k < LINES; k++) {
        for (let i = 0; i < CLIENTS; i++) {
          while (said * (CLIENTS - 1) - delivered > WINDOW_LINES * (CLIENTS - 1)) {
            await new Promise<void>((resolve) => progress = resolve);
          }
          clients[i].say(`${i} ${k}`).catch((error) => problems.push(`u${i}: ${error}`));
          said++;
        }
      }
      const deadline = Date.now() + 120_000;
      while (delivered < total && Date.now() < deadline && problems.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const deliverMs = performance.now() - started;
      const rssAtEnd = await rssKiB(server.pid);
      console.log(
        `joined ${CLIENTS} in ${joinMs.toFixed(0)} ms; ${delivered} deliveries in ` +
          `${(deliverMs / 1000).toFixed(1)} s (${(delivered / deliverMs * 1000).toFixed(0)}/s); ` +
          `server RSS ${(rssAtStart / 1024).toFixed(0)} -> ${(rssAtEnd / 1024).toFixed(0)} MiB`,
      );

      assert.deepEqual(problems, []);
      assert.equal(delivered, total, "deliveries");
      for (const [r, next] of expectedNext.entries()) {
        for (let sender = 0; sender < CLIENTS; sender++) {
          assert.equal(next[sender], sender === r ? 0 : LINES, `u${r} from u${sender}`);
        }
      }
      assert.ok(!server.stderr.some((line) => /dropped|failed/.test(line)), "nobody dropped");

      await inBatches(clients, 50, (client) => client.leave());
    }),
});
