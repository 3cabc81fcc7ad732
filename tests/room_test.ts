import { assert } from "./helpers.ts";
import type { Message } from "../lib/channel.ts";
import { displayName, type Member, Room, uniqueName } from "../lib/room.ts";

function member(id: number, name: string, inbox: Message[] = []): Member & { inbox: Message[] } {
  return { id, name, fingerprint: `${id}`.padStart(4, "0"), inbox, deliver: (m) => inbox.push(m) };
}

Deno.test("displayName() uses the label, else the declared name with a fingerprint fragment", () => {
  assert.equal(displayName("alice", "mallory", "3f9a:12bc"), "alice");
  assert.equal(displayName(undefined, "bob", "3f9a:12bc:0d4e:77a1"), "bob~3f9a");
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

Deno.test("uniqueName() adds 4, then 16 fingerprint digits until the name is free", () => {
  const taken = new Set(["hub", "bob~3f9a"]);
  const isTaken = (name: string) => taken.has(name);
  assert.equal(uniqueName("ann", "3f9a:12bc:0d4e:77a1", isTaken), "ann");
  assert.equal(uniqueName("hub", "3f9a:12bc:0d4e:77a1", isTaken), "hub~3f9a");
  assert.equal(uniqueName("bob~3f9a", "3f9a:12bc:0d4e:77a1", isTaken), "bob~3f9a12bc0d4e77a1");
});
