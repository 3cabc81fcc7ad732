import { assert } from "./helpers.ts";
import { MAX_TRACKED_SOURCES, sourceOf, SourceRateLimiter, TokenBucket } from "../lib/chat/rate.ts";
import { LogLimiter } from "../lib/chat/log_limit.ts";
import type { ServerEvent } from "../lib/chat/events.ts";
import { describeEvent } from "../lib/cli/server_log.ts";
import { isTransientAcceptError } from "../lib/chat/accept.ts";
import { parseNames } from "../lib/keys/name_book.ts";

Deno.test("TokenBucket.take() lets a burst through, then says how long to wait", () => {
  const bucket = new TokenBucket(10, 3, 0);
  assert.deepEqual([bucket.take(0), bucket.take(0), bucket.take(0)], [0, 0, 0]);
  assert.equal(bucket.take(0), 100); // one token in debt at 10 per second
  assert.equal(bucket.take(1000), 0); // refilled (to the burst, not beyond)
});

Deno.test("TokenBucket.tryTake() never goes into debt", () => {
  const bucket = new TokenBucket(1, 1, 0);
  assert.ok(bucket.tryTake(0));
  assert.ok(!bucket.tryTake(0));
  assert.ok(!bucket.tryTake(500));
  assert.ok(bucket.tryTake(1000));
});

Deno.test("sourceOf() counts IPv4 by address, IPv6 by /64, mapped IPv4 as IPv4", () => {
  assert.equal(sourceOf("127.0.0.2"), "127.0.0.2");
  assert.equal(sourceOf("::ffff:10.1.2.3"), "10.1.2.3");
  assert.equal(sourceOf("2001:db8:0:7::1"), "2001:db8:0:7::/64");
  assert.equal(sourceOf("2001:0db8:0000:0007:ffff::9"), "2001:db8:0:7::/64");
  assert.equal(sourceOf("::1"), "0:0:0:0::/64");
});

Deno.test("SourceRateLimiter keeps one address's flood from touching another's bucket", () => {
  const limiter = new SourceRateLimiter(20, 5);
  const flood = Array.from({ length: 50 }, () => limiter.allow("127.0.0.2", 0));
  assert.equal(flood.filter(Boolean).length, 5);
  assert.ok(limiter.allow("127.0.0.1", 0));
  assert.ok(limiter.allow("127.0.0.2", 50)); // one token back after 1/20 s
});

Deno.test("SourceRateLimiter remembers at most MAX_TRACKED_SOURCES addresses", () => {
  const limiter = new SourceRateLimiter(1, 1);
  for (let i = 0; i < MAX_TRACKED_SOURCES + 500; i++) {
    limiter.allow(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 0);
  }
  assert.ok(limiter.tracked <= MAX_TRACKED_SOURCES, `${limiter.tracked} tracked`);
});

Deno.test("LogLimiter reports 5 events of a kind per window, then one count", async () => {
  const reported: ServerEvent[] = [];
  const log = new LogLimiter((event) => reported.push(event), { windowMs: 200, perWindow: 5 });
  const left = (i: number): ServerEvent => ({ kind: "left", name: `m${i}`, reason: "dropped" });
  for (let i = 0; i < 2000; i++) log.report(left(i));
  log.report({ kind: "internal-error", reason: "another kind is not held back" });
  assert.equal(reported.length, 6);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(reported.at(-1), { kind: "suppressed", of: "left", count: 1995, seconds: 0 });
  assert.equal(
    describeEvent({ kind: "suppressed", of: "left", count: 1995, seconds: 10 }),
    `… and 1,995 more "left" lines in the last 10 s`,
  );
  log.report(left(2001));
  assert.deepEqual(reported.at(-1), left(2001));
  log.flush();
});

Deno.test("isTransientAcceptError() keeps listening on resets and shortages only", () => {
  for (const code of ["ENOTCONN", "ECONNABORTED", "EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]) {
    assert.ok(isTransientAcceptError(Object.assign(new Error(code), { code })), code);
  }
  assert.ok(!isTransientAcceptError(new Deno.errors.BadResource("closed")));
  assert.ok(!isTransientAcceptError(Object.assign(new Error("x"), { code: "EINVAL" })));
  assert.ok(!isTransientAcceptError(null));
});

Deno.test("parseNames() keeps the first binding of a name and reports unreadable lines", () => {
  const key = "chat1mvcwkpev9zep0ncw8tvgf8cjva6wm86uq7xc2m5vkgqnjx3rfy3su5n8nz";
  const other = "chat173r49585jgea9pfkt3vynf6vrmjep762edwlkwaxpkc2e435ygjsw5uu4q";
  const { bindings, bad } = parseNames(
    `# header\nalice~d1d3 ${key}\nalice~d1d3 ${other}\nbroken line here\nbob~0000 nokey\n`,
  );
  assert.equal(bindings.get("alice~d1d3"), key);
  assert.deepEqual(bad, [4, 5]);
});
