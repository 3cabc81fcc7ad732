/**
 * Server key pinning (issues 8 and 9): two first contacts racing with different keys end with one
 * pin and one changed key, and one server has one pin whatever the spelling of its address,
 * checked also under the IP address connected to (as ssh's CheckHostIP).
 */
import { assert, inTempDir } from "./helpers.ts";
import { Sandbox } from "./process.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { encodePublicKey, parsePublicKey, sameKey } from "../lib/keys/key_text.ts";
import { parseKnownServers } from "../lib/keys/key_files.ts";
import { Keystore } from "../lib/keys/keystore.ts";
import { ServerKeyChangedError, ServerRefusedError } from "../lib/errors.ts";
import { joinServer } from "../lib/chat/join.ts";

const e2e = (name: string, fn: (sandbox: Sandbox) => Promise<void>) =>
  Deno.test({ name, fn: () => Sandbox.run(fn), sanitizeResources: false, sanitizeOps: false });

function newKey(): Uint8Array {
  return primitives.generateKeyPair().publicKey;
}

Deno.test("two racing first-contact pins with different keys: one pins, the other is told", () =>
  inTempDir(async (dir) => {
    const store = new Keystore(dir);
    for (let round = 0; round < 10; round++) {
      const address = `example.org:${7000 + round}`;
      const keys = [newKey(), newKey()];
      const before = await Promise.all(keys.map((key) => store.pinServer(address, key)));
      const winner = before.findIndex((key) => key === undefined);
      assert.ok(winner >= 0, "one of them pinned first");
      const loser = 1 - winner;
      assert.ok(before[loser] && sameKey(before[loser]!, keys[winner]), "the other sees the pin");
      assert.ok(sameKey((await store.lookupServer(address))!, keys[winner]), "the first pin stays");
    }
  }));

/**
 * A man in the middle on 127.0.0.1: the first connection goes to `targets[0]`, the second to
 * `targets[1]`; each server's first bytes (m2) are held until both have sent theirs, so that both
 * clients check their pins at the same moment.
 */
function splittingProxy(targets: number[]): { port: number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  let arrived = 0;
  let release!: () => void;
  const bothArrived = new Promise<void>((resolve) => release = resolve);
  (async () => {
    for (let index = 0; index < targets.length; index++) {
      const client = await listener.accept().catch(() => undefined);
      if (!client) return;
      const server = await Deno.connect({ hostname: "127.0.0.1", port: targets[index] });
      connections.push(client, server);
      client.readable.pipeTo(server.writable).catch(() => {});
      (async () => {
        const reader = server.readable.getReader();
        const writer = client.writable.getWriter();
        let first = true;
        while (true) {
          const { value, done } = await reader.read().catch(() => ({
            value: undefined,
            done: true,
          }));
          if (done || !value) break;
          if (first) {
            first = false;
            if (++arrived === targets.length) release();
            await bothArrived;
          }
          await writer.write(value).catch(() => {});
        }
        await writer.close().catch(() => {});
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close: () => {
      listener.close();
      for (const connection of connections) {
        try {
          connection.close();
        } catch { /* closed */ }
      }
    },
  };
}

e2e("two first contacts shown different server keys at once: one pins, one refuses", async (s) => {
  await s.keygen("one");
  await s.keygen("two");
  const servers = [await s.serve("one"), await s.serve("two")];
  const ports = servers.map(({ address }) => Number(address.split(":")[1]));
  const serverKeys = await Promise.all(
    ["one", "two"].map(async (keys) =>
      parsePublicKey((await Deno.readTextFile(`${s.dir}/${keys}/identity.pub`)).trim())
    ),
  );
  const store = new Keystore(`${s.dir}/client`);
  await store.createIdentity();
  const identity = await store.loadIdentity();
  for (let round = 0; round < 3; round++) {
    const proxy = splittingProxy(ports);
    const pinned: string[] = [];
    try {
      const outcomes = await Promise.allSettled([0, 1].map(() =>
        joinServer({
          hostname: "127.0.0.1",
          port: proxy.port,
          identity,
          name: "racer",
          pins: store,
          onPinned: (address) => pinned.push(address),
        })
      ));
      const changed = outcomes.filter((o) =>
        o.status === "rejected" && o.reason instanceof ServerKeyChangedError
      );
      const passed = outcomes.filter((o) =>
        o.status === "rejected" && o.reason instanceof ServerRefusedError // not allowed: after m3
      );
      assert.equal(changed.length, 1, `round ${round}: ${outcomes.map((o) => JSON.stringify(o))}`);
      assert.equal(passed.length, 1);
      assert.deepEqual(pinned, [`127.0.0.1:${proxy.port}`]);
      const pin = (await store.lookupServer(`127.0.0.1:${proxy.port}`))!;
      assert.ok(serverKeys.some((key) => sameKey(key, pin)));
    } finally {
      proxy.close();
    }
  }
});

e2e(
  "one server reached as localhost, 127.0.0.1 and 127.1 is pinned once per address",
  async (s) => {
    await s.keygen("srv");
    await s.keygen("bob");
    const { address } = await s.serve("srv");
    const port = address.split(":")[1];
    const serverKey = (await Deno.readTextFile(`${s.dir}/srv/identity.pub`)).trim();

    const first = await s.run(["--keys", "bob", "connect", `localhost:${port}`, "--name", "bob"]);
    assert.equal(first.code, 3, first.stderr); // not allowed: the pin check passed, m3 was sent
    assert.match(first.stderr, new RegExp(`pinned the key of localhost:${port}: fingerprint`));
    const pins = parseKnownServers(await Deno.readTextFile(`${s.dir}/bob/known_servers`));
    assert.deepEqual(pins.entries.map((entry) => entry.address), [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
    ]);
    assert.ok(pins.entries.every((entry) => encodePublicKey(entry.key) === serverKey));

    for (const spelling of ["127.0.0.1", "127.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"]) {
      const again = await s.run([
        "--keys",
        "bob",
        "connect",
        `${spelling}:${port}`,
        "--name",
        "bob",
      ]);
      assert.equal(again.code, 3, `${spelling}: ${again.stderr}`);
      assert.doesNotMatch(again.stderr, /pinned the key/, `${spelling} is not a first contact`);
    }
    assert.equal(
      parseKnownServers(await Deno.readTextFile(`${s.dir}/bob/known_servers`)).entries.length,
      2,
    );
  },
);

e2e("a name whose IP address has another key pinned is a changed key", async (s) => {
  await s.keygen("srv");
  await s.keygen("bob");
  const { address } = await s.serve("srv");
  const port = address.split(":")[1];
  const other = encodePublicKey(newKey());
  const pins = `127.0.0.1:${port} ${other}\n`;
  await Deno.writeTextFile(`${s.dir}/bob/known_servers`, pins);

  const result = await s.run(["--keys", "bob", "connect", `localhost:${port}`, "--name", "bob"]);
  assert.equal(result.code, 4, result.stderr);
  assert.match(result.stderr, new RegExp(`THE SERVER KEY FOR 127\\.0\\.0\\.1:${port} HAS CHANGED`));
  assert.doesNotMatch(result.stderr, /pinned the key/);
  assert.equal(await Deno.readTextFile(`${s.dir}/bob/known_servers`), pins, "pins untouched");
});
