/**
 * Faults with real processes over 127.0.0.1: a client that dies mid-message, a server killed with
 * SIGKILL and restarted with the same keys, a server that never answers.
 */
import { assert, assertRejects } from "./helpers.ts";
import { LISTENING, Sandbox } from "./process.ts";
import { NO_PINS } from "./clients.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { TimeoutError } from "../lib/errors.ts";
import { encodeFrame, writeAll } from "../lib/protocol/frame.ts";
import { encodePublicKey } from "../lib/keys/key_text.ts";
import { encodeMessage } from "../lib/protocol/messages.ts";
import { joinServer } from "../lib/chat/join.ts";

const fault = (name: string, fn: (sandbox: Sandbox) => Promise<void>) =>
  Deno.test({ name, fn: () => Sandbox.run(fn), sanitizeResources: false, sanitizeOps: false });

/** Creates identities `names` and allows them on the server `srv`. */
async function allowAll(s: Sandbox, names: string[]): Promise<void> {
  await s.keygen("srv");
  for (const name of names) {
    const key = await s.keygen(name);
    assert.equal((await s.run(["--keys", "srv", "allow", key, "--name", name])).code, 0);
  }
}

fault(
  "a client dying mid-message (half a frame, or SIGKILL) leaves the others untouched",
  async (s) => {
    await allowAll(s, ["ann", "ben", "cy"]);
    const raw = primitives.generateKeyPair();
    const allowed = await s.run([
      "--keys",
      "srv",
      "allow",
      encodePublicKey(raw.publicKey),
      "--name",
      "raw",
    ]);
    assert.equal(allowed.code, 0, allowed.stderr);
    const { server, address } = await s.serve("srv", ["--name", "hub"]);
    const [hostname, port] = [address.split(":")[0], Number(address.split(":")[1])];

    const ann = s.spawn(["--keys", "ann", "connect", address, "--stay"]);
    const ben = s.spawn(["--keys", "ben", "connect", address, "--stay"]);
    const cy = s.spawn(["--keys", "cy", "connect", address, "--stay"]);
    for (const client of [ann, ben, cy]) await client.waitFor("stderr", /joined hub/);

    // a raw client joins, writes half of a frame, and its connection dies
    const session = await joinServer({ hostname, port, identity: raw, name: "raw", pins: NO_PINS });
    await ann.waitFor("stderr", /raw joined/);
    await server.waitFor("stderr", /raw \(.*\) joined/);
    const half = halfFrame(encodeMessage({ type: "msg", text: "cut" }));
    await writeAll(session.channel.connection, half);
    session.channel.close();
    await server.waitFor(
      "stderr",
      /raw left \(dropped: connection closed in the middle of a frame/,
    );
    await ann.waitFor("stderr", /raw left \(dropped\)/);
    assert.ok(!server.stdout.some((line) => line.includes("cut")), "nothing of the cut line shown");

    // a real client process is killed outright
    cy.signal("SIGKILL");
    await cy.status;
    await server.waitFor("stderr", /cy left \(lost\)/);
    await ben.waitFor("stderr", /cy left \(lost\)/);

    // the others chat on, both ways, with the operator too
    await ann.send("still here");
    await ben.waitFor("stdout", /^ann: still here$/);
    await server.waitFor("stdout", /^ann: still here$/);
    await ben.send("me too");
    await ann.waitFor("stdout", /^ben: me too$/);
    await server.send("good");
    await ann.waitFor("stdout", /^hub: good$/);
    await ben.waitFor("stdout", /^hub: good$/);
    for (const client of [ann, ben]) {
      client.signal("SIGINT"); // --stay: they leave on Ctrl-C
      assert.equal(await client.exitCode(), 0);
    }
  },
);

/**
 * The first half of a frame as long as `plaintext` sealed (random bytes: the server never gets
 * to decrypt it, it only learns that the connection ended mid-frame).
 */
function halfFrame(plaintext: Uint8Array): Uint8Array {
  const frame = encodeFrame(crypto.getRandomValues(new Uint8Array(plaintext.length + 16)));
  return frame.subarray(0, Math.floor(frame.length / 2));
}

fault(
  "a SIGKILLed server makes every client exit 5 at once; a restart lets them back in",
  async (s) => {
    const names = ["dee", "eli", "fin"];
    await allowAll(s, names);
    const { server, address } = await s.serve("srv", ["--name", "hub"]);
    const port = address.split(":")[1];
    const clients = names.map((name) => s.spawn(["--keys", name, "connect", address, "--stay"]));
    for (const client of clients) await client.waitFor("stderr", /joined hub/);
    const pins = await Promise.all(
      names.map((n) => Deno.readTextFile(`${s.dir}/${n}/known_servers`)),
    );

    // the kernel closes a killed process's sockets: every client hears of it at once
    const killedAt = performance.now();
    server.signal("SIGKILL");
    const exits = await Promise.all(clients.map(async (client) => {
      const code = await client.exitCode(5000);
      return { code, ms: performance.now() - killedAt };
    }));
    console.log(
      `clients exited ${exits.map((e) => `${e.code} after ${e.ms.toFixed(0)} ms`).join(", ")}`,
    );
    for (const [i, client] of clients.entries()) {
      assert.equal(exits[i].code, 5, client.stderr.join("\n"));
      await client.waitFor(
        "stderr",
        new RegExp(
          `chat: error: lost the connection to ${address}: the server closed the connection without a bye`,
        ),
      );
      await client.waitFor(
        "stderr",
        // pasted in the same shell it works: it names the client's own keys folder
        new RegExp(`chat: hint: reconnect with: chat --keys ${names[i]} connect ${address}`),
      );
      // a Deno process starts in ~0.1-0.3 s and exits as fast; 2 s is generous for "at once"
      assert.ok(exits[i].ms < 2000, `exited ${exits[i].ms} ms after the kill`);
    }

    // the same keys on the same port: everyone is let back in, pins untouched
    const again = s.spawn(["--keys", "srv", "serve", "--port", port, "--name", "hub"]);
    const [, relistening] = await again.waitFor("stderr", LISTENING);
    assert.equal(relistening, address);
    for (const name of names) {
      const result = await s.run(["--keys", name, "connect", address], `${name} is back\n`);
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /CHANGED|pinned the key/);
      await again.waitFor("stdout", new RegExp(`^${name}: ${name} is back$`));
    }
    const after = await Promise.all(
      names.map((n) => Deno.readTextFile(`${s.dir}/${n}/known_servers`)),
    );
    assert.deepEqual(after, pins, "known_servers unchanged");
  },
);

Deno.test("joinServer() against a server that never answers fails with TimeoutError in time", async () => {
  // accepts and stays silent: the client's deadline closes the connection; the error must say
  // so (before a fix, closing it a second time threw BadResource and hid the TimeoutError)
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const connection of listener) held.push(connection);
  })();
  try {
    const started = performance.now();
    await assertRejects(
      () =>
        joinServer({
          hostname: "127.0.0.1",
          port: listener.addr.port,
          identity: primitives.generateKeyPair(),
          name: "patient",
          pins: NO_PINS,
          timeoutMs: 500,
        }),
      TimeoutError,
      /the server did not complete the handshake in time/,
    );
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 450 && elapsed < 1500, `gave up after ${elapsed} ms`);
  } finally {
    listener.close();
    await accepting.catch(() => {});
    held.forEach((connection) => connection.close());
  }
});

fault(
  "with --reconnect, a client comes back by itself after its server is killed and restarted",
  async (s) => {
    await allowAll(s, ["gil", "hoa"]);
    const { server, address } = await s.serve("srv", ["--name", "hub"]);
    const port = address.split(":")[1];
    const gil = s.spawn(["--keys", "gil", "connect", address, "--stay", "--reconnect"]);
    await gil.waitFor("stderr", /joined hub/);
    server.signal("SIGKILL");
    await gil.waitFor("stderr", /connection lost \(.*\); reconnecting in 1 s \(attempt 1 of/);
    // the restart comes while the client waits: it joins again on its own, the pin checked
    const again = s.spawn(["--keys", "srv", "serve", "--port", port, "--name", "hub"]);
    await again.waitFor("stderr", LISTENING);
    await gil.waitFor("stderr", /reconnected to hub as gil/, 15_000);
    const hoa = await s.run(["--keys", "hoa", "connect", address], "hoa says hi\n");
    assert.equal(hoa.code, 0, hoa.stderr);
    await gil.waitFor("stdout", /^hoa: hoa says hi$/);
    // and the server's bye is final: no reconnecting after it
    again.signal("SIGTERM");
    assert.equal(await gil.exitCode(10_000), 0, gil.stderr.join("\n"));
    assert.ok(gil.stderr.some((line) => /the server ended the chat/.test(line)));
  },
);
