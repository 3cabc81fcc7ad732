/**
 * One JSON event schema (README "JSON events", lib/cli/json_events.ts) for all three commands
 * that print it: `serve --json`, `connect --json` and `listen --json`. Every line each prints in
 * a chat with lines, a private line, an action, history, joins, leaves, a notice and a refusal
 * is checked against the schema, and together they show every event.
 */
import { assert } from "./helpers.ts";
import { Sandbox } from "./process.ts";

/** The fields of each event of version 1: name and type ("s" string, "b" true, "?" optional). */
const SCHEMA: Record<string, Record<string, string>> = {
  line: { from: "s", text: "s", action: "b?", replay: "b?" },
  private: { from: "s", to: "s", text: "s", action: "b?" },
  join: { name: "s", fingerprint: "s", remote: "s?" },
  leave: { name: "s", reason: "s", detail: "s?" },
  notice: { code: "s", message: "s" },
  refused: { reason: "s", declared: "s", key: "s", fingerprint: "s", remote: "s" },
};

/** Throws unless `line` is one valid event of the schema; returns its `event`. */
function checkEvent(line: string, where: string): string {
  const value = JSON.parse(line);
  assert.equal(value.v, 1, `${where}: v in ${line}`);
  assert.ok(!Number.isNaN(Date.parse(value.time)), `${where}: time in ${line}`);
  const fields = SCHEMA[value.event];
  assert.ok(fields, `${where}: unknown event in ${line}`);
  for (const [name, type] of Object.entries(fields)) {
    const present = value[name] !== undefined;
    if (type.endsWith("?") && !present) continue;
    assert.ok(present, `${where}: ${value.event} without ${name}: ${line}`);
    if (type.startsWith("s")) assert.equal(typeof value[name], "string", `${where}: ${name}`);
    else assert.equal(value[name], true, `${where}: ${name}`);
  }
  for (const name of Object.keys(value)) {
    assert.ok(["v", "time", "event", ...Object.keys(fields)].includes(name), `${where}: ${name}`);
  }
  return value.event;
}

Deno.test({
  name: "serve --json, connect --json and listen --json all print the one versioned schema",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    Sandbox.run(async (s) => {
      await s.keygen("srv");
      for (const name of ["ann", "bob", "cat"]) {
        await s.run(["--keys", "srv", "allow", await s.keygen(name), "--name", name]);
      }
      await s.keygen("eve");
      const { server, address } = await s.serve("srv", ["--json", "--history", "5"]);
      await server.send("before anyone came");
      const listener = s.spawn(["--keys", "cat", "listen", address, "--json", "--accept-new"]);
      await listener.waitFor("stderr", /listening to/);
      const client = s.spawn(["--keys", "bob", "connect", address, "--json", "--stay"]);
      await client.waitFor("stderr", /joined server/);
      const ann = await s.run(["--keys", "ann", "connect", address], "hello all\n");
      assert.equal(ann.code, 0, ann.stderr);
      const psst = await s.run(["--keys", "ann", "send", address, "--to", "bob", "psst"]);
      assert.equal(psst.code, 0, psst.stderr);
      await server.send("/me waves", "/mute cat 1m"); // a notice to the room, and to cat
      assert.equal((await s.run(["--keys", "eve", "connect", address])).code, 3);
      await client.waitFor("stdout", /"event":"private"/);
      await client.waitFor("stdout", /"action":true/);
      await listener.waitFor("stdout", /"action":true/);
      await server.waitFor("stdout", /"event":"refused"/);
      const seen = new Set<string>();
      for (
        const [where, lines] of [
          ["serve", server.stdout],
          ["connect", client.stdout],
          ["listen", listener.stdout],
        ] as const
      ) {
        assert.ok(lines.length > 0, `${where} printed nothing`);
        for (const line of lines) seen.add(checkEvent(line, where));
      }
      assert.deepEqual([...seen].sort(), Object.keys(SCHEMA).sort(), "every event was seen");
      listener.signal("SIGTERM");
      assert.equal(await listener.exitCode(), 0);
    }),
});
