import { assert } from "./helpers.ts";
import { chooseName, type Member, type NamingFacts, Room } from "../lib/chat/room.ts";
import { confusable, skeleton } from "../lib/protocol/names.ts";
import type { ServerMessage as Message } from "../lib/protocol/messages.ts";

function member(id: number, name: string, inbox: Message[] = []): Member & { inbox: Message[] } {
  return {
    id,
    name,
    fingerprint: `${id}`.padStart(4, "0"),
    features: new Set(["private"]),
    inbox,
    deliver: (m) => inbox.push(m),
  };
}

const HEX = "3f9a12bc0d4e77a1";
function facts(overrides: Partial<NamingFacts> = {}): NamingFacts {
  return { serverName: "hub", labels: [], present: [], boundTo: () => undefined, ...overrides };
}

Deno.test("chooseName() uses the label, else the declared name with 4 fingerprint digits", () => {
  assert.deepEqual(chooseName("K", "alice", "mallory", HEX, facts()), {
    name: "alice",
    bind: false,
  });
  assert.deepEqual(chooseName("K", undefined, "bob", HEX, facts()), {
    name: "bob~3f9a",
    bind: true,
  });
});

Deno.test("Room.say() reaches every other member in order and never echoes to the sender", () => {
  const room = new Room();
  const [a, b, c] = [member(1, "a"), member(2, "b"), member(3, "c")];
  room.join(a);
  room.join(b);
  room.join(c);
  room.say(1, "one");
  room.say(2, "two");
  room.say(1, "three");
  const texts = (m: { inbox: Message[] }) =>
    m.inbox.filter((x) => x.type === "msg").map((x) => `${x.from}:${x.text}`);
  assert.deepEqual(texts(a), ["b:two"]);
  assert.deepEqual(texts(b), ["a:one", "a:three"]);
  assert.deepEqual(texts(c), ["a:one", "b:two", "a:three"]);
});

Deno.test("Room.join() announces newcomers to the others only, and refuses a taken name", () => {
  const room = new Room();
  const a = member(1, "a");
  room.join(a);
  const b = member(2, "b");
  room.join(b);
  assert.deepEqual(a.inbox, [{ type: "presence", event: "join", name: "b", fingerprint: "0002" }]);
  assert.deepEqual(b.inbox, []);
  assert.throws(() => room.join(member(3, "a")), /name "a" is taken/);
  assert.deepEqual(room.names(), ["a", "b"]);
});

Deno.test("Room.leave() tells the others why and stops delivery to the leaver", () => {
  const room = new Room();
  const [a, b] = [member(1, "a"), member(2, "b")];
  room.join(a);
  room.join(b);
  assert.equal(room.leave(2, "revoked")?.name, "b");
  assert.equal(room.leave(2, "left"), undefined);
  room.say(1, "anyone?");
  assert.deepEqual(a.inbox.at(-1), {
    type: "presence",
    event: "leave",
    name: "b",
    reason: "revoked",
  });
  assert.equal(b.inbox.some((m) => m.type === "msg"), false);
});

Deno.test("Room.say() from someone not present delivers nothing", () => {
  const room = new Room();
  const a = member(1, "a");
  room.join(a);
  room.say(99, "ghost");
  assert.deepEqual(a.inbox, []);
});

Deno.test("chooseName() adds 4, 8, then 16 fingerprint digits until the name is free", () => {
  const present = ["bob~3f9a"];
  assert.equal(nameOf(chooseName("K", "hub", "x", HEX, facts())), "hub~3f9a");
  assert.equal(nameOf(chooseName("K", undefined, "bob", HEX, facts({ present }))), "bob~3f9a12bc");
  const both = ["bob~3f9a", "bob~3f9a12bc"];
  assert.equal(
    nameOf(chooseName("K", undefined, "bob", HEX, facts({ present: both }))),
    "bob~" + HEX,
  );
});

Deno.test("chooseName() never gives a name this server once showed for another key", () => {
  const bound = new Map([["alice~3f9a", "OTHER"], ["carol~3f9a", "K"]]);
  const f = facts({ boundTo: (name) => bound.get(name) });
  // a ground key with alice's 4 digits gets a longer name, even with alice away
  assert.deepEqual(chooseName("K", undefined, "alice", HEX, f), {
    name: "alice~3f9a12bc",
    bind: true,
  });
  // the key a name is bound to keeps it, and it is not bound twice
  assert.deepEqual(chooseName("K", undefined, "carol", HEX, f), {
    name: "carol~3f9a",
    bind: false,
  });
});

Deno.test("chooseName() refuses a declared name that looks like a label, the server or a member", () => {
  const f = facts({ labels: ["alice"], present: ["bob~1234", "Mallory"] });
  assert.deepEqual(chooseName("K", undefined, "aIice", HEX, f), { confusableWith: "alice" });
  assert.deepEqual(chooseName("K", undefined, "b0b", HEX, f), { confusableWith: "bob" });
  assert.deepEqual(chooseName("K", undefined, "HUB", HEX, f), { confusableWith: "hub" });
  assert.deepEqual(chooseName("K", undefined, "rnallory", HEX, f), { confusableWith: "Mallory" });
  // the same name is not a look-alike: the fingerprint digits tell the two apart
  assert.equal(nameOf(chooseName("K", undefined, "alice", HEX, f)), "alice~3f9a");
  // a label is the operator's word and is not checked
  assert.equal(nameOf(chooseName("K", "aIice", "x", HEX, f)), "aIice");
});

Deno.test("chooseName() refuses a look-alike of a name once shown for another key, absent or not", () => {
  const bound = new Map([["carol~a945", "CAROL"]]);
  const f = facts({ boundTo: (name) => bound.get(name), bound: () => bound.entries() });
  for (const declared of ["caro1", "Carol", "CAROL", "car0l"]) {
    assert.deepEqual(chooseName("K", undefined, declared, HEX, f), { confusableWith: "carol" });
  }
  // carol herself is not her own look-alike
  assert.equal(
    nameOf(chooseName("CAROL", undefined, "carol", "a945" + HEX.slice(4), f)),
    "carol~a945",
  );
});

Deno.test("skeleton() folds case and the ASCII look-alikes of UTS #39", () => {
  for (const [a, b] of [["aIice", "alice"], ["a1ice", "alice"], ["B0B", "bob"], ["rn", "m"]]) {
    assert.equal(skeleton(a), skeleton(b), `${a} ~ ${b}`);
    assert.ok(confusable(a, b));
  }
  assert.ok(!confusable("alice", "alice"));
  assert.ok(!confusable("bob", "rob"));
});

function nameOf(choice: ReturnType<typeof chooseName>): string {
  if (!("name" in choice)) throw new Error(`refused: ${JSON.stringify(choice)}`);
  return choice.name;
}
