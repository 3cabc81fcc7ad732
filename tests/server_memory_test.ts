/**
 * The server and client over MemoryNetwork: the whole session flow (handshake, allowlist, data
 * port, join, room, revocation, farewells) in one process, without sockets, as wireguard-go's
 * bindtest does. End-to-end tests run the same flow with real processes over TCP.
 */
import { assert } from "./helpers.ts";
import { ClientChat } from "../lib/chat/client.ts";
import { ChatServer } from "../lib/chat/server.ts";
import type { ServerEvent } from "../lib/chat/events.ts";
import { MemoryNetwork } from "../lib/chat/memory_network.ts";
import { Allowlist } from "../lib/keys/allowlist.ts";
import { type KeyPair, primitives } from "../lib/protocol/crypto.ts";
import { ServerRefusedError } from "../lib/errors.ts";
import { type ClientSession, joinServer, type ServerPins } from "../lib/chat/join.ts";

const NO_PINS: ServerPins = {
  lookupServer: () => Promise.resolve(undefined),
  pinServer: () => Promise.resolve(undefined),
};

/** A server on a fresh MemoryNetwork whose allowlist is `allowed` (changeable). */
function memoryServer(allowed: { key: KeyPair; label?: string }[]) {
  const network = new MemoryNetwork();
  const events: ServerEvent[] = [];
  const said: string[] = [];
  let allowlist = Allowlist.from(
    allowed.map((a, i) => ({ key: a.key.publicKey, label: a.label, line: i + 1 })),
  );
  const server = new ChatServer({
    hostname: "127.0.0.1",
    port: 7447,
    name: "hub",
    identity: primitives.generateKeyPair(),
    readAllowlist: () => Promise.resolve(allowlist),
    report: (event) => events.push(event),
    operator: (message) => {
      if (message.type === "msg") said.push(`${message.from}: ${message.text}`);
    },
    network,
    limits: { revokeCheckMs: 50 },
  });
  server.start();
  return {
    server,
    network,
    events,
    said,
    revokeAll: () => allowlist = Allowlist.EMPTY,
  };
}

/** Joins as `name` over the server's MemoryNetwork and starts a chat that records lines. */
async function join(network: MemoryNetwork, key: KeyPair, name: string) {
  const session: ClientSession = await joinServer({
    hostname: "127.0.0.1",
    port: 7447,
    identity: key,
    name,
    pins: NO_PINS,
    network,
  });
  const lines: string[] = [];
  const chat = new ClientChat(session, {
    message: (from, text) => lines.push(`${from}: ${text}`),
    presence: () => {},
    who: () => {},
    notice: () => {},
  });
  return { chat, lines };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), what);
}

Deno.test("over MemoryNetwork, two clients join, talk through the room and leave", async () => {
  const [a, b] = [primitives.generateKeyPair(), primitives.generateKeyPair()];
  const { server, network, events, said } = memoryServer([
    { key: a, label: "ann" },
    { key: b },
  ]);
  const ann = await join(network, a, "ann");
  const bob = await join(network, b, "bob");
  assert.equal(ann.chat.session.name, "ann");
  assert.match(bob.chat.session.name, /^bob~[0-9a-f]{4}$/);
  assert.deepEqual(bob.chat.session.members, ["hub", "ann"]);
  await ann.chat.say("hello");
  await until(() => bob.lines.length === 1 && said.length === 1, "the line reached bob and hub");
  assert.deepEqual(bob.lines, ["ann: hello"]);
  assert.deepEqual(ann.lines, [], "a line never comes back to its sender");
  server.say("welcome");
  await until(() => ann.lines.length === 1, "the operator's line reached ann");
  assert.equal((await ann.chat.leave()).kind, "left");
  await until(() => events.some((e) => e.kind === "left" && e.name === "ann"), "ann left");
  await server.close();
  assert.equal((await bob.chat.ended).kind, "server-ended");
  assert.deepEqual(events.filter((e) => e.kind === "joined").map((e) => e.kind), [
    "joined",
    "joined",
  ]);
});

Deno.test("over MemoryNetwork, a stranger is refused and a revoked member removed", async () => {
  const [member, stranger] = [primitives.generateKeyPair(), primitives.generateKeyPair()];
  const { server, network, events, revokeAll } = memoryServer([{ key: member, label: "m" }]);
  const refused = await joinServer({
    hostname: "127.0.0.1",
    port: 7447,
    identity: stranger,
    name: "eve",
    pins: NO_PINS,
    network,
  }).then(() => undefined, (error) => error);
  assert.ok(refused instanceof ServerRefusedError && refused.code === "not-allowed", `${refused}`);
  assert.ok(events.some((e) => e.kind === "refused" && e.reason === "not-allowed"));
  const m = await join(network, member, "m");
  revokeAll();
  const end = await m.chat.ended;
  assert.deepEqual(end.kind === "removed" && end.code, "revoked");
  await server.close();
});
