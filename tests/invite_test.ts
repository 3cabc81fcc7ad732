/**
 * End-to-end: one-paste invites with real `chat invite`, `chat invites`, `chat join`,
 * `chat serve` and `chat connect` processes over 127.0.0.1.
 */
import { assert } from "./helpers.ts";
import { Sandbox } from "./process.ts";
import { encodeInviteToken, parseInviteToken } from "../lib/keys/invite_token.ts";
import { primitives } from "../lib/protocol/crypto.ts";

const e2e = (name: string, fn: (sandbox: Sandbox) => Promise<void>) =>
  Deno.test({ name, fn: () => Sandbox.run(fn), sanitizeResources: false, sanitizeOps: false });

/** Makes an invite on `keys` for `address`; returns the token (the only line on stdout). */
async function makeInvite(s: Sandbox, keys: string, address: string, args: string[] = []) {
  const result = await s.run(["--keys", keys, "invite", "--address", address, ...args]);
  assert.equal(result.code, 0, result.stderr);
  const token = result.stdout.trim();
  assert.match(token, /^chatinvite1[02-9ac-hj-np-z]+$/);
  assert.ok(!token.includes("\n"));
  return { token, stderr: result.stderr };
}

/** A closed port: one just opened and closed again. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

e2e(
  "a fresh client joins with one pasted token, chats, and later reconnects with chat connect",
  async (s) => {
    await s.keygen("srv");
    const { server, address } = await s.serve("srv", ["--name", "hub"]);
    // the invite is made while the server runs: it sees it at once
    const { token } = await makeInvite(s, "srv", address, ["--name", "bob"]);

    const client = s.spawn(["--keys", "bob", "join", token, "--name", "bobby"]);
    await client.waitFor("stderr", /there was no identity in bob: created a NEW one/);
    await client.waitFor("stderr", /joined hub at .* as bob; here: hub/);
    await client.waitFor("stderr", new RegExp(`from now on, join with: chat --keys bob connect`));
    await server.waitFor("stderr", /redeemed invite [0-9a-f]{8}: allowed as bob/);
    await client.send("hello from a newcomer");
    await server.waitFor("stdout", /^bob: hello from a newcomer$/);
    await client.closeStdin();
    assert.equal(await client.exitCode(), 0, client.stderr.join("\n"));
    // no trust-on-first-use question: the token's key was pinned
    assert.ok(!client.stderr.some((line) => /HAS CHANGED/.test(line)));

    const allowed = await s.run(["--keys", "srv", "allowed"]);
    assert.match(allowed.stdout, /^bob {2}/m);
    const listed = await s.run(["--keys", "srv", "invites"]);
    assert.equal(listed.stdout, "", "the one use is used up and the invite gone");

    const again = s.spawn(["--keys", "bob", "connect", address]);
    await again.waitFor("stderr", /joined hub at .* as bob/);
    await again.send("back again");
    await server.waitFor("stdout", /^bob: back again$/);
    await again.closeStdin();
    assert.equal(await again.exitCode(), 0, again.stderr.join("\n"));
  },
);

e2e("a token's second use is refused with bad-invite and exit 7", async (s) => {
  await s.keygen("srv");
  const { server, address } = await s.serve("srv");
  const { token } = await makeInvite(s, "srv", address);
  assert.equal((await s.run(["--keys", "first", "join", token, "--name", "first"])).code, 0);
  const second = await s.run(["--keys", "second", "join", token, "--name", "second"]);
  assert.equal(second.code, 7, second.stderr);
  assert.match(
    second.stderr,
    /chat: error: the server at .* refused the invite: this invite is not valid: it was used up/,
  );
  assert.match(second.stderr, /chat: hint: .*ask the server's operator for a new one/);
  await server.waitFor("stderr", /refused second .*: key not on the allowlist, and its invite/);
  const allowed = await s.run(["--keys", "srv", "allowed"]);
  assert.ok(!allowed.stdout.includes("second"), allowed.stdout);
});

e2e("an expired token is refused with bad-invite and exit 7", async (s) => {
  await s.keygen("srv");
  const { address } = await s.serve("srv");
  const { token } = await makeInvite(s, "srv", address, ["--expires", "1s"]);
  await new Promise((resolve) => setTimeout(resolve, 2100));
  const listed = await s.run(["--keys", "srv", "invites"]);
  assert.match(listed.stdout, /\(expired\)/);
  const result = await s.run(["--keys", "late", "join", token]);
  assert.equal(result.code, 7, result.stderr);
  assert.match(result.stderr, /refused the invite: this invite has expired/);
});

e2e("a token with one changed character is caught locally, before any connection", async (s) => {
  await s.keygen("srv");
  // the address is a closed port: had the token been trusted, the error would be "refused"
  const { token } = await makeInvite(s, "srv", `127.0.0.1:${closedPort()}`);
  const at = token.length - 20;
  const changed = token.slice(0, at) + (token[at] === "q" ? "p" : "q") + token.slice(at + 1);
  const result = await s.run(["--keys", "typo", "join", changed]);
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, /chat: error: Cannot parse invite token ".*": bad checksum/);
  assert.match(result.stderr, /chat: hint: .*copy it again, whole/);
  assert.ok(!/cannot reach|refused/.test(result.stderr), result.stderr);
  // nothing was created either: the token is checked first
  assert.equal(await Deno.lstat(`${s.dir}/typo`).then(() => true, () => false), false);
});

e2e(
  "a token for another server key refuses before m3 and sends neither key nor secret",
  async (s) => {
    await s.keygen("srv");
    const { server, address } = await s.serve("srv");
    const { token } = await makeInvite(s, "srv", address);
    const real = parseInviteToken(token);
    const forged = encodeInviteToken({
      ...real,
      serverKey: primitives.generateKeyPair().publicKey,
    });
    const result = await s.run(["--keys", "mallory", "join", forged]);
    assert.equal(result.code, 4, result.stderr);
    assert.match(result.stderr, /chat: error: the server at .* is not the server of the invite/);
    // the handshake stopped after m2: the server saw no m3, so it refused nobody
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(
      !server.stderr.some((line) => /refused|redeemed/.test(line)),
      server.stderr.join("\n"),
    );
    // and the real invite is still there to be used
    const listed = await s.run(["--keys", "srv", "invites"]);
    assert.match(listed.stdout, /1 use left/);
  },
);

e2e("chat invites lists pending invites without secrets, and --revoke withdraws one", async (s) => {
  await s.keygen("srv");
  const { address } = await s.serve("srv");
  const first = await makeInvite(s, "srv", address, ["--name", "carol", "--uses", "3"]);
  await makeInvite(s, "srv", address, ["--expires", "7d"]);
  const listed = await s.run(["--keys", "srv", "invites"]);
  assert.equal(listed.code, 0, listed.stderr);
  const lines = listed.stdout.split("\n");
  assert.equal(lines.length, 2, listed.stdout);
  assert.match(lines[0], /^[0-9a-f]{8} {2}carol\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}3 uses left$/);
  assert.match(lines[1], /^[0-9a-f]{8} {2}\(their name\)\s+\S+Z {2}1 use left$/);
  const secretHex = [...parseInviteToken(first.token).secret]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  const file = await Deno.readTextFile(`${s.dir}/srv/invites`);
  assert.ok(!file.includes(secretHex) && !listed.stdout.includes(secretHex));
  assert.ok(!listed.stdout.includes("chatinvite1"));

  const id = lines[0].slice(0, 8);
  const revoked = await s.run(["--keys", "srv", "invites", "--revoke", id]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stderr, new RegExp(`withdrew invite ${id} for carol`));
  const after = await s.run(["--keys", "srv", "invites"]);
  assert.ok(!after.stdout.includes(id), after.stdout);
  const gone = await s.run(["--keys", "srv", "invites", "--revoke", id]);
  assert.equal(gone.code, 1, gone.stderr);
  assert.match(gone.stderr, /chat: error: there is no invite "[0-9a-f]{8}"/);
  assert.match(gone.stderr, /chat: hint: .*chat --keys srv invites/);
  // the withdrawn token lets nobody in
  const result = await s.run(["--keys", "carol", "join", first.token]);
  assert.equal(result.code, 7, result.stderr);
});

e2e("chat invite refuses a bad duration, use count or label as usage errors", async (s) => {
  await s.keygen("srv");
  for (
    const [args, pattern] of [
      [["--expires", "10"], /--expires: invalid duration "10"/],
      [["--expires", "0s"], /--expires: invalid duration "0s"/],
      [["--uses", "0"], /--uses: expected a whole number/],
      [["--name", "no spaces"], /label/],
    ] as const
  ) {
    const result = await s.run(["--keys", "srv", "invite", ...args]);
    assert.equal(result.code, 2, `${args}: ${result.stderr}`);
    assert.match(result.stderr, pattern);
  }
  const none = await s.run(["--keys", "empty", "invite"]);
  assert.equal(none.code, 1, none.stderr);
});
