/**
 * A hostile server against the real `chat connect` process, over 127.0.0.1: the server completes
 * a genuine Noise XX handshake (it holds the key the client expects) and then sends what a
 * faulty or malicious server could: escape sequences in every field, fields of the wrong type,
 * durations that overflow the runtime's timers. The client must show none of those bytes to the
 * terminal, turn malformed messages into a protocol error (exit 5), and stay connected.
 */
import { assert } from "./helpers.ts";
import { Sandbox } from "./process.ts";
import { Channel } from "../lib/protocol/channel.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { encodePublicKey } from "../lib/keys/key_text.ts";
import { acceptHandshake } from "../lib/protocol/handshake_io.ts";
import { ANY_MESSAGE, type Message } from "../lib/protocol/messages.ts";
import { Exit } from "../lib/cli/exit.ts";

const hostile = (name: string, fn: (sandbox: Sandbox) => Promise<void>) =>
  Deno.test({ name, fn: () => Sandbox.run(fn), sanitizeResources: false, sanitizeOps: false });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** What the hostile server does once the client is on its data port and has sent `join`. */
type DataScript = (channel: Channel<Message, Message>) => Promise<void>;

/**
 * A one-client hostile server on 127.0.0.1: the real handshake as responder, then either
 * `control` on the control connection (a crafted refusal) or a `port` message to its own data
 * listener, where `data` runs after the client's join.
 */
function startHostileServer(script: { control?: Message; data?: DataScript }) {
  const identity = primitives.generateKeyPair();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const received: Message[] = [];
  const done = (async () => {
    const connection = await listener.accept();
    listener.close();
    const handshake = await acceptHandshake(connection, identity, "evil");
    const control = new Channel(connection, handshake.send, handshake.receive, {
      codec: ANY_MESSAGE,
      reader: handshake.reader,
    });
    if (script.control) {
      await control.send(script.control);
      await control.receive(5000).catch(() => null); // the client closes first
      control.close();
      return;
    }
    const dataListener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    await control.send({ type: "port", port: dataListener.addr.port });
    const data = await dataListener.accept();
    dataListener.close();
    const channel = new Channel(data, handshake.send, handshake.receive, { codec: ANY_MESSAGE });
    const join = await channel.receive(5000);
    assert.equal(join?.type, "join");
    control.close();
    try {
      await script.data!(channel);
      // keep reading until the client goes, as a server would
      for (let m = await channel.receive(15_000); m; m = await channel.receive(15_000)) {
        received.push(m);
      }
    } catch { /* the client closed or reset */ }
    channel.close();
  })();
  done.catch(() => {});
  return {
    port: listener.addr.port,
    key: encodePublicKey(identity.publicKey),
    received,
    done,
  };
}

/** A valid welcome, with `fields` replacing or adding to it. */
function welcome(fields: Record<string, unknown> = {}): Message {
  return {
    type: "welcome",
    name: "bob~3f9a",
    server: "evil",
    members: ["evil"],
    max_line_bytes: 16384,
    keepalive_ms: 15000,
    ...fields,
  };
}

/**
 * What a terminal acts on or a reader is fooled by: C0 (but tab), DEL, C1, bidi controls and
 * marks, line and paragraph separators, invisible characters and tags.
 */
const UNSAFE =
  // deno-lint-ignore no-control-regex -- finding control characters is the point
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff\u{e0000}-\u{e007f}]/u;

function assertNoControls(lines: string[], where: string): void {
  for (const line of lines) {
    assert.ok(!UNSAFE.test(line), `a control character reached ${where}: ${JSON.stringify(line)}`);
  }
}

/** Runs `chat connect` against `server` (stdin kept open) and returns the process. */
async function connectTo(s: Sandbox, server: { port: number; key: string }, extra: string[] = []) {
  await s.keygen("bob");
  return s.spawn([
    "--keys",
    "bob",
    "connect",
    `127.0.0.1:${server.port}`,
    "--server-key",
    server.key,
    "--name",
    "bob",
    ...extra,
  ]);
}

/** Runs the client to its end and checks the exit code and that no control reached its output. */
async function expectEnd(s: Sandbox, server: ReturnType<typeof startHostileServer>, code: number) {
  const client = await connectTo(s, server);
  const exit = await client.exitCode(15_000);
  await server.done;
  assertNoControls(client.stdout, "stdout");
  assertNoControls(client.stderr, "stderr");
  const stderr = client.stderr.join("\n");
  assert.equal(exit, code, stderr);
  assert.doesNotMatch(stderr, /this is a bug/);
  return stderr;
}

const OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"; // writes "rm -rf ~" to the clipboard
const TITLE = "\x1b]0;owned\x07";
const FAKE_PROMPT = "\x1b[2J\x1b[HPassword: ";

hostile(
  "a welcome with escape sequences in name, server and members is a protocol error",
  async (s) => {
    const server = startHostileServer({
      data: (channel) =>
        channel.send(
          welcome({ name: `bob${OSC52}`, server: `evil${TITLE}`, members: [FAKE_PROMPT] }),
        ),
    });
    const stderr = await expectEnd(s, server, Exit.CONNECTION);
    assert.match(
      stderr,
      /could not join .*: the server sent a bad welcome: "name" is not a display name/,
    );
  },
);

for (
  const [field, value] of [
    ["server", "\x9b2Jevil"],
    ["members", ["ok", "\u202eevil"]],
    ["members", "alice"],
    ["name", 42],
  ] as const
) {
  hostile(`a welcome whose ${field} is ${JSON.stringify(value)} is a protocol error`, async (s) => {
    const server = startHostileServer({ data: (ch) => ch.send(welcome({ [field]: value })) });
    const stderr = await expectEnd(s, server, Exit.CONNECTION);
    assert.match(stderr, new RegExp(`the server sent a bad welcome: "${field}"`));
  });
}

hostile("a refusal with escape sequences in its code and message shows none of them", async (s) => {
  const server = startHostileServer({
    control: { type: "error", code: `busy${TITLE}`, message: `${FAKE_PROMPT}${OSC52}` },
  });
  const stderr = await expectEnd(s, server, Exit.CONNECTION);
  assert.match(stderr, /the server sent a bad error: "code" is not a code/);
});

hostile(
  "a refusal with a printable code and an escape in its message shows it neutralised",
  async (s) => {
    const server = startHostileServer({
      control: { type: "error", code: "busy", message: `full${OSC52}` },
    });
    const stderr = await expectEnd(s, server, Exit.CONNECTION);
    assert.match(stderr, /refused: full\ufffd\]52;c;cm0gLXJmIH4=\ufffd \(busy\)/);
  },
);

hostile("a refusal whose code is an object is a protocol error, not a bug", async (s) => {
  const server = startHostileServer({
    control: { type: "error", code: { toString: 1 }, message: "x" },
  });
  const stderr = await expectEnd(s, server, Exit.CONNECTION);
  assert.match(stderr, /the server sent a bad error: "code" is not a code/);
});

hostile("a control message of an unknown type is not echoed raw", async (s) => {
  const server = startHostileServer({ control: { type: `${FAKE_PROMPT}${TITLE}` } });
  const stderr = await expectEnd(s, server, Exit.CONNECTION);
  assert.match(stderr, /expected a port message/);
});

hostile("a removal with escape sequences in its message shows none of them (exit 6)", async (s) => {
  const server = startHostileServer({
    data: async (channel) => {
      await channel.send(welcome());
      await channel.send({ type: "error", code: "revoked", message: `${FAKE_PROMPT}${OSC52}` });
    },
  });
  const stderr = await expectEnd(s, server, Exit.REMOVED);
  assert.match(stderr, /the server removed you: \ufffd\[2J\ufffd\[HPassword: .* \(revoked\)/);
});

hostile(
  "invisible characters, bidi marks, separators and tags in a line show as U+FFFD",
  async (s) => {
    const text = "a\u2028b\u2029c\u200bd\u200ee\u200ff\u061cg\u{e0041}h\ufeffi";
    const server = startHostileServer({
      data: async (channel) => {
        await channel.send(welcome());
        await channel.send({ type: "msg", from: "evil", text });
        await channel.send({ type: "notice", code: "slow-down", message: text });
        await channel.send({ type: "bye" });
      },
    });
    const client = await connectTo(s, server, ["--json"]);
    assert.equal(await client.exitCode(15_000), Exit.OK, client.stderr.join("\n"));
    await server.done;
    assertNoControls(client.stdout, "stdout");
    assertNoControls(client.stderr, "stderr");
    // --json keeps the exact text, escaped
    const line = client.stdout.find((l) => l.includes('"from":"evil"'))!;
    assert.equal(JSON.parse(line).text, text);
  },
);

hostile(
  "an error in place of the welcome with code revoked exits 3, not 'try again'",
  async (s) => {
    const server = startHostileServer({
      data: (channel) => channel.send({ type: "error", code: "revoked", message: "gone" }),
    });
    const stderr = await expectEnd(s, server, Exit.NOT_ALLOWED);
    assert.match(stderr, /removed your key from its allowlist/);
    assert.doesNotMatch(stderr, /try again later/);
  },
);

hostile("a 60,000-character error message is shown cut short", async (s) => {
  const server = startHostileServer({
    control: { type: "error", code: "busy", message: "x".repeat(60_000) },
  });
  const stderr = await expectEnd(s, server, Exit.CONNECTION);
  assert.ok(stderr.length < 2000, `${stderr.length} characters on stderr`);
});

hostile("a notice with escape sequences shows none of them", async (s) => {
  const server = startHostileServer({
    data: async (channel) => {
      await channel.send(welcome());
      await channel.send({ type: "notice", code: "slow-down", message: `${TITLE}${OSC52}` });
      await channel.send({ type: "bye" });
    },
  });
  const stderr = await expectEnd(s, server, Exit.OK);
  assert.match(stderr, /server: \ufffd\]0;owned\ufffd/);
});

for (
  const [what, message] of [
    ["a msg from a name with an escape", { type: "msg", from: `evil${TITLE}`, text: "hi" }],
    ["a msg whose text is not a string", { type: "msg", from: "evil", text: { a: 1 } }],
    ["a presence whose name has a bidi override", {
      type: "presence",
      event: "join",
      name: "\u202eevil",
      fingerprint: "3f9a:12bc:0d4e:77a1",
    }],
    ["a who whose members are not display names", { type: "who", members: ["ok", OSC52] }],
    ["a notice whose code is a number", { type: "notice", code: 7, message: "x" }],
    ["an error whose message is missing", { type: "error", code: "revoked" }],
  ] as const
) {
  hostile(`${what} is a protocol error: the connection is lost (exit 5)`, async (s) => {
    const server = startHostileServer({
      data: async (channel) => {
        await channel.send(welcome());
        await channel.send(message as unknown as Message);
      },
    });
    const stderr = await expectEnd(s, server, Exit.CONNECTION);
    assert.match(stderr, /lost the connection to .*: the server sent a bad \w+: "\w+"/);
  });
}

hostile("--json escapes C1 controls, DEL and bidi overrides in what it prints", async (s) => {
  const text = "a\x9b2J\x7fb\u202ec\u2066d\x1b[31m";
  const server = startHostileServer({
    data: async (channel) => {
      await channel.send(welcome());
      await channel.send({ type: "msg", from: "evil", text });
      await channel.send({ type: "bye" });
    },
  });
  const client = await connectTo(s, server, ["--json"]);
  assert.equal(await client.exitCode(15_000), Exit.OK, client.stderr.join("\n"));
  assertNoControls(client.stdout, "stdout");
  assert.equal(client.stdout.length, 1);
  assert.equal(JSON.parse(client.stdout[0]).text, text);
  assert.match(client.stdout[0], /a\\u009b2J\\u007fb\\u202ec\\u2066d\\u001b\[31m/);
});

for (const keepaliveMs of [715_827_883, 2 ** 53]) {
  hostile(`a keepalive_ms of ${keepaliveMs} does not overflow the client's timers`, async (s) => {
    let said: Message | null = null;
    const server = startHostileServer({
      data: async (channel) => {
        await channel.send(welcome({ keepalive_ms: keepaliveMs }));
        await sleep(3000);
        await channel.send({ type: "msg", from: "evil", text: "still there?" });
        said = await channel.receive(10_000);
        await channel.send({ type: "bye" });
      },
    });
    const client = await connectTo(s, server);
    await client.waitFor("stderr", /joined evil/);
    await client.waitFor("stdout", /^evil: still there\?$/, 10_000);
    await client.send("yes");
    assert.equal(await client.exitCode(15_000), Exit.OK, client.stderr.join("\n"));
    await server.done;
    assert.deepEqual(said, { type: "msg", text: "yes" });
    // a 1 ms keepalive interval would have flooded the server while it waited
    assert.ok(server.received.length <= 2, JSON.stringify(server.received.slice(0, 5)));
  });
}
