/**
 * End-to-end: `chat send` and `chat listen`, the unattended commands, as real processes over
 * 127.0.0.1: delivery in order, exit 0 only once the server has every line, first contact
 * refused unless opted into, and the documented exit codes.
 */
import { assert } from "./helpers.ts";
import { type ChatProcess, Sandbox } from "./process.ts";

const e2e = (name: string, fn: (sandbox: Sandbox) => Promise<void>) =>
  Deno.test({ name, fn: () => Sandbox.run(fn), sanitizeResources: false, sanitizeOps: false });

/** Starts `chat listen` as `name` (pinning on first contact) and waits until it listens. */
async function listener(s: Sandbox, name: string, address: string, args: string[] = []) {
  const process = s.spawn(["--keys", name, "listen", address, "--accept-new", ...args]);
  await process.waitFor("stderr", /^chat: listening to /);
  return process;
}

/** The `line` events a `listen --json` printed, as `from: text`. */
function jsonLines(process: ChatProcess): string[] {
  return process.stdout.map((line) => JSON.parse(line))
    .filter((event) => event.event === "line")
    .map((event) => `${event.from}: ${event.text}`);
}

e2e(
  "chat send - delivers 200 lines in order, and exits 0 only once the server has them all",
  async (s) => {
    const { address } = await s.room(["ann", "bob"]);
    const bob = await listener(s, "bob", address, ["--json"]);
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i + 1} of 200`);
    const sent = await s.run(
      ["--keys", "ann", "send", address, "--accept-new", "-"],
      lines.join("\n") + "\n",
      30_000,
    );
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stderr, /sent 200 line\(s\)/);
    // the server read every line before the send exited: relaying the last one takes no longer
    await bob.waitFor("stdout", /"text":"line 200 of 200"/, 2000);
    assert.deepEqual(jsonLines(bob), lines.map((line) => `ann: ${line}`));
    for (const line of bob.stdout) assert.equal(JSON.parse(line).v, 1);
  },
);

e2e(
  "chat send refuses an unpinned server (exit 4, nothing pinned) unless --accept-new or its --server-key",
  async (s) => {
    const { address } = await s.room(["ann"]);
    const serverKey = (await s.run(["--keys", "srv", "pubkey"])).stdout.trim();
    const knownServers = `${s.dir}/ann/known_servers`;

    const refused = await s.run(["--keys", "ann", "send", address, "hello"]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /chat: error: the server at .* is not pinned/);
    assert.match(refused.stderr, /chat: hint: .*--server-key KEY/);
    assert.match(refused.stderr, /chat: hint: .*--accept-new/);
    await assert.rejects(Deno.stat(knownServers), Deno.errors.NotFound);

    const wrongKey = await s.keygen("other");
    const wrong = await s.run(["--keys", "ann", "send", address, "--server-key", wrongKey, "hi"]);
    assert.equal(wrong.code, 4, wrong.stderr);
    assert.match(wrong.stderr, /HAS CHANGED/);
    await assert.rejects(Deno.stat(knownServers), Deno.errors.NotFound);

    const accepted = await s.run(["--keys", "ann", "send", address, "--accept-new", "hello"]);
    assert.equal(accepted.code, 0, accepted.stderr);
    assert.match(accepted.stderr, /pinned the key of/);
    assert.ok((await Deno.readTextFile(knownServers)).includes(serverKey));
    // pinned now: no flag needed
    assert.equal((await s.run(["--keys", "ann", "send", address, "again"])).code, 0);
  },
);

e2e("chat send with the server's --server-key pins it and sends", async (s) => {
  const { address } = await s.room(["ann", "bob"]);
  const serverKey = (await s.run(["--keys", "srv", "pubkey"])).stdout.trim();
  const bob = await listener(s, "bob", address);
  const sent = await s.run([
    "--keys",
    "ann",
    "send",
    address,
    "--server-key",
    serverKey,
    "hi",
    "all",
  ]);
  assert.equal(sent.code, 0, sent.stderr);
  await bob.waitFor("stdout", /^ann: hi all$/, 2000);
});

e2e("chat send exits 3 for a key the server does not allow, 5 for no server", async (s) => {
  const { address } = await s.room([]);
  await s.keygen("eve");
  const refused = await s.run(["--keys", "eve", "send", address, "--accept-new", "hi"]);
  assert.equal(refused.code, 3, refused.stderr);
  assert.match(refused.stderr, /does not allow your key/);

  const free = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (free.addr as Deno.NetAddr).port;
  free.close();
  const down = await s.run(["--keys", "eve", "send", `127.0.0.1:${port}`, "--accept-new", "hi"]);
  assert.equal(down.code, 5, down.stderr);
  assert.match(down.stderr, /cannot reach 127\.0\.0\.1:\d+: connection refused/);
});

e2e(
  "chat send refuses a line over the server's limit (exit 1) and sends nothing of it",
  async (s) => {
    const { address } = await s.room(["ann", "bob"], ["--max-line-bytes", "10"]);
    const bob = await listener(s, "bob", address);
    const long = await s.run(
      ["--keys", "ann", "send", address, "--accept-new", "-"],
      "short\n" + "x".repeat(11) + "\n",
    );
    assert.equal(long.code, 1, long.stderr);
    assert.match(long.stderr, /line 2 of 2: the line is too long \(11 bytes; .* at most 10\)/);
    const fits = await s.run(["--keys", "ann", "send", address, "x".repeat(10)]);
    assert.equal(fits.code, 0, fits.stderr);
    await bob.waitFor("stdout", /^ann: x{10}$/, 2000);
    assert.deepEqual(bob.stdout, [`ann: ${"x".repeat(10)}`]); // not "short", nor the long line
  },
);

e2e("chat send with nothing to send is a usage error", async (s) => {
  const result = await s.run(["send", "127.0.0.1"]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /nothing to send/);
});

e2e("chat listen prints NAME: text and exits 0 on SIGTERM", async (s) => {
  const { address } = await s.room(["ann", "bob"]);
  const bob = await listener(s, "bob", address);
  assert.equal(
    (await s.run(["--keys", "ann", "send", address, "--accept-new", "hello", "bob"])).code,
    0,
  );
  await bob.waitFor("stdout", /^ann: hello bob$/, 2000);
  await bob.waitFor("stderr", /^chat: ann joined \(/);
  await bob.waitFor("stderr", /^chat: ann left \(left\)$/);
  bob.signal("SIGTERM");
  assert.equal(await bob.exitCode(), 0);
  assert.deepEqual(bob.stdout, ["ann: hello bob"]);
});

e2e(
  "chat listen exits 0 when the server ends the chat, and 4 on first contact without a pin",
  async (s) => {
    const { server, address } = await s.room(["bob"]);
    const unpinned = await s.run(["--keys", "bob", "listen", address, "--json"]);
    assert.equal(unpinned.code, 4, unpinned.stderr);
    assert.equal(unpinned.stdout, "");
    const bob = await listener(s, "bob", address, ["--json"]);
    server.signal("SIGTERM");
    assert.equal(await server.exitCode(), 0);
    assert.equal(await bob.exitCode(), 0);
    await bob.waitFor("stderr", /the server ended the chat/);
  },
);

Deno.test({
  name: "chat send --to delivers privately to one member; an unknown name is exit 1",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    Sandbox.run(async (s) => {
      await s.keygen("srv");
      for (const name of ["ana", "bo", "cy"]) {
        await s.run(["--keys", "srv", "allow", await s.keygen(name), "--name", name]);
      }
      const { address } = await s.serve("srv", ["--headless"]);
      const bo = s.spawn(["--keys", "bo", "listen", address, "--json", "--accept-new"]);
      const cy = s.spawn(["--keys", "cy", "listen", address, "--json", "--accept-new"]);
      await bo.waitFor("stderr", /listening to server/);
      await cy.waitFor("stderr", /listening to server/);
      const sent = await s.run([
        "--keys",
        "ana",
        "send",
        address,
        "--accept-new",
        "--to",
        "bo",
        "psst",
      ]);
      assert.equal(sent.code, 0, sent.stderr);
      await bo.waitFor("stdout", /"event":"private","from":"ana","to":"bo","text":"psst"/);
      const wrong = await s.run(["--keys", "ana", "send", address, "--to", "nobody", "x"]);
      assert.equal(wrong.code, 1, wrong.stderr);
      assert.match(wrong.stderr, /could not deliver: nobody here is called "nobody"/);
      bo.signal("SIGTERM");
      cy.signal("SIGTERM");
      assert.equal(await cy.exitCode(), 0);
      assert.ok(!cy.stdout.some((line) => line.includes("psst")), "a third member saw it");
    }),
});
