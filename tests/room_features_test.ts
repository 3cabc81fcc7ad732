/**
 * The room's features with a real `chat serve` process: private lines, `/me`, history for late
 * joiners, the operator's kick and mute (typed into the server's stdin, as a supervising script
 * would), and the room log.
 */
import { assert } from "./helpers.ts";
import { Sandbox } from "./process.ts";
import { makeIdentities, startServer, TestClient, waitUntil } from "./clients.ts";
import { readRoomLog } from "../lib/cli/room_log.ts";
import { Exit } from "../lib/cli/exit.ts";

const room = (name: string, fn: (sandbox: Sandbox) => Promise<void>) =>
  Deno.test({ name, fn: () => Sandbox.run(fn), sanitizeResources: false, sanitizeOps: false });

room("a private line reaches only its target; an unknown name gets a notice", async (s) => {
  const [ann, ben, cat] = makeIdentities("p", 3);
  const { server, port } = await startServer(s, [ann, ben, cat]);
  const [a, b, c] = await Promise.all([ann, ben, cat].map((id) => TestClient.join(port, id)));
  await a.chat.tell("p1", "for ben only");
  await a.chat.tell("nobody", "lost");
  await a.say("for everyone");
  await c.expectLine("p0", "for everyone");
  await b.until(() => b.privates.length === 1, 5000, "the private line");
  assert.deepEqual(b.privates, ["p0: for ben only"]);
  assert.deepEqual(c.privates, [], "a third member sees nothing");
  assert.ok(!c.received.some((line) => line.text === "for ben only"));
  await a.until(() => a.notices.some((n) => n.code === "no-such-member"), 5000, "the notice");
  // the operator can be told privately too, and sees it marked
  await a.chat.tell("server", "hello operator");
  await server.waitFor("stdout", /^p0 \(private\): hello operator$/);
  await Promise.all([a, b, c].map((client) => client.leave()));
});

room("/me is an action; a late joiner gets the history, then live lines, in order", async (s) => {
  const [ann, ben] = makeIdentities("h", 2);
  const { port } = await startServer(s, [ann, ben], ["--history", "3"]);
  const a = await TestClient.join(port, ann);
  for (const text of ["one", "two", "three", "four"]) await a.say(text);
  await a.chat.say("waves", true);
  const b = await TestClient.join(port, ben);
  await a.say("live");
  await b.expectLine("h0", "live");
  // the last 3 of the 5 lines said before, oldest first, then the live one
  assert.deepEqual(b.replays, ["h0: three", "h0: four", "h0: waves"]);
  assert.deepEqual(b.received.map((line) => line.text), ["live"]);
  await a.leave();
  await b.leave();
});

room("the operator kicks from a pipe: the member exits 6, everyone is told why", async (s) => {
  await s.keygen("srv");
  for (const name of ["kim", "lee"]) {
    await s.run(["--keys", "srv", "allow", await s.keygen(name), "--name", name]);
  }
  const { server, address } = await s.serve("srv", ["--log", "room.jsonl"]);
  const kim = s.spawn(["--keys", "kim", "connect", address, "--stay"]);
  const lee = s.spawn(["--keys", "lee", "connect", address, "--stay"]);
  await kim.waitFor("stderr", /joined server/);
  await lee.waitFor("stderr", /joined server/);
  await server.send("/me opens the meeting", "//literally a slash", "/mute lee 1m");
  await kim.waitFor("stdout", /^\* server opens the meeting$/);
  await kim.waitFor("stdout", /^server: \/literally a slash$/);
  await lee.waitFor("stderr", /the operator muted you for 60 s/);
  await lee.send("am I muted?");
  await lee.waitFor("stderr", /you are muted for \d+ s more; the line was not sent/);
  await server.send("/kick kim flooding");
  assert.equal(await kim.exitCode(10_000), Exit.REMOVED, kim.stderr.join("\n"));
  assert.ok(kim.stderr.some((line) => /the operator removed you: flooding \(kicked\)/.test(line)));
  await lee.waitFor("stderr", /kim was removed by the operator: flooding/);
  await lee.waitFor("stderr", /kim left \(kicked\)/);
  // the room log has the story as JSON lines, mode 0600, flushed within a second
  await waitUntil(
    async () => {
      const events = readRoomLog(await Deno.readTextFile(`${s.dir}/room.jsonl`).catch(() => ""));
      return events.some((e) => e.event === "leave" && e.reason === "kicked");
    },
    5000,
    "the kick in the room log",
  );
  const events = readRoomLog(await Deno.readTextFile(`${s.dir}/room.jsonl`));
  assert.ok(events.some((e) => e.event === "line" && e.text === "opens the meeting" && e.action));
  assert.ok(!events.some((e) => e.text === "am I muted?"), "a muted line is not in the room");
  assert.equal((await Deno.stat(`${s.dir}/room.jsonl`)).mode! & 0o777, 0o600);
});

Deno.test("readRoomLog() skips a line cut short by a crash", () => {
  const text = '{"v":1,"event":"line","text":"a"}\n{"v":1,"event":"line","text":"b"}\n{"v":1,"ev';
  assert.deepEqual(readRoomLog(text).map((e) => e.text), ["a", "b"]);
});
