import { assert } from "./helpers.ts";
import { backoffMs, isFinal, reconnect } from "../lib/cli/reconnect.ts";
import { ConnectError, ServerKeyChangedError, ServerRefusedError } from "../lib/errors.ts";

Deno.test("backoffMs() waits 1, 2, 4, 8, 15 s, then 30 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 24].map(backoffMs), [
    1000,
    2000,
    4000,
    8000,
    15000,
    30000,
    30000,
    30000,
  ]);
});

Deno.test("isFinal(): refusals and a changed key end reconnecting; failures to reach do not", () => {
  assert.ok(isFinal(new ServerRefusedError("not-allowed", "")));
  assert.ok(isFinal(new ServerRefusedError("revoked", "")));
  assert.ok(
    isFinal(new ServerKeyChangedError("h:1", new Uint8Array(32), new Uint8Array(32), false)),
  );
  assert.ok(!isFinal(new ServerRefusedError("busy", "")));
  assert.ok(!isFinal(new ConnectError("h:1", "refused", "cannot reach h:1")));
});

Deno.test("reconnect() retries until a join works, saying each step", async () => {
  const said: string[] = [];
  let tries = 0;
  const result = await reconnect("the server closed the connection", {
    join: () => ++tries < 2 ? Promise.reject(new Error("refused")) : Promise.resolve("session"),
    say: (line) => said.push(line),
    stopped: new Promise(() => {}),
  }, 3);
  assert.deepEqual(result, { kind: "joined", session: "session" });
  assert.equal(tries, 2);
  assert.match(
    said[0],
    /connection lost \(the server closed the connection\); reconnecting in 1 s \(attempt 1 of 3/,
  );
  assert.match(said[1], /connection lost \(refused\); reconnecting in 2 s \(attempt 2 of 3/);
});

Deno.test("reconnect() stops at once when the person leaves, and on a final refusal", async () => {
  const stopped = Promise.resolve();
  const left = await reconnect("x", { join: () => Promise.resolve(1), say: () => {}, stopped });
  assert.deepEqual(left, { kind: "stopped" });
  const refusal = new ServerRefusedError("revoked", "gone");
  const final = await reconnect("x", {
    join: () => Promise.reject(refusal),
    say: () => {},
    stopped: new Promise(() => {}),
  }, 2);
  assert.deepEqual(final, { kind: "final", error: refusal });
});
