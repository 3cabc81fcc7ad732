import { assert } from "./helpers.ts";
import { colorOf } from "../lib/cli/terminal.ts";
import { parseTarget } from "../lib/cli/connect.ts";
import { isDisplayName, keepaliveInterval, parseServerMessage } from "../lib/protocol/messages.ts";
import { KEEPALIVE_MISSES, MAX_KEEPALIVE_MS } from "../lib/protocol/constants.ts";
import { ProtocolError } from "../lib/errors.ts";
import { parseLimits } from "../lib/cli/args.ts";
import { withDefaults } from "../lib/chat/limits.ts";
import { UserError } from "../lib/cli/output.ts";
import { lineProblem, utf8Length } from "../lib/chat/lines.ts";
import { MAX_TIMER_MS } from "../lib/protocol/deadline.ts";
import { type Message } from "../lib/protocol/messages.ts";
import { safeJson, sanitize } from "../lib/chat/untrusted.ts";

Deno.test("sanitize() neutralises escape sequences, controls and bidi overrides", () => {
  assert.equal(sanitize("\x1b[2Jgotcha"), "\ufffd[2Jgotcha");
  assert.equal(sanitize("a\rb\nc\x00d\x7fe\x9bf"), "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf");
  assert.equal(sanitize("evil\u202egnp.exe"), "evil\ufffdgnp.exe");
  assert.equal(sanitize("tab\there ünïcödé ✓"), "tab here ünïcödé ✓");
});

Deno.test("colorOf() gives a name the same colour every time, and varies across names", () => {
  assert.equal(colorOf("alice"), colorOf("alice"));
  const colours = new Set(["alice", "bob", "carol", "dave", "erin", "frank"].map(colorOf));
  assert.ok(colours.size > 2);
});

Deno.test("parseTarget() reads HOST, HOST:PORT and IPv6 forms", () => {
  assert.deepEqual(parseTarget("example.org"), { hostname: "example.org", port: 7447 });
  assert.deepEqual(parseTarget("127.0.0.1:9000"), { hostname: "127.0.0.1", port: 9000 });
  assert.deepEqual(parseTarget("[::1]:9000"), { hostname: "::1", port: 9000 });
  assert.deepEqual(parseTarget("[::1]"), { hostname: "::1", port: 7447 });
  assert.deepEqual(parseTarget("::1"), { hostname: "::1", port: 7447 });
  for (const bad of ["", ":80", "host:0", "host:65536", "host:x"]) {
    assert.throws(
      () => parseTarget(bad),
      (e: unknown) => e instanceof UserError && e.exitCode === 2,
    );
  }
});

Deno.test("parseLimits() turns seconds into milliseconds and refuses values out of range", () => {
  const limits = parseLimits({
    host: "h",
    port: "1",
    name: "n",
    handshakeTimeout: "2.5",
    rate: "5",
    keepalive: "4",
  });
  assert.equal(limits.handshakeTimeoutMs, 2500);
  assert.equal(limits.rateLinesPerSecond, 5);
  assert.equal(withDefaults(limits).peerSilenceMs, 12_000); // three keepalive intervals
  for (const bad of ["0", "-1", "abc", "1e3", "", "1.5", "1201"]) {
    assert.throws(
      () => parseLimits({ host: "h", port: "1", name: "n", maxMembers: bad }),
      /--max-members: expected a whole number from 1 to 1200/,
    );
  }
});

Deno.test("lineProblem() refuses empty lines and lines over the server's limit, in bytes", () => {
  assert.equal(lineProblem("hello"), undefined);
  assert.match(lineProblem("")!, /empty/);
  assert.equal(lineProblem("é".repeat(5), 10), undefined);
  assert.match(lineProblem("é".repeat(6), 10)!, /12 bytes; this server takes at most 10/);
  assert.match(lineProblem("x".repeat(70_000))!, /too long for one message/);
});

Deno.test("utf8Length() agrees with TextEncoder, surrogate pairs and lone surrogates included", () => {
  const encoder = new TextEncoder();
  for (
    const text of [
      "",
      "ascii",
      "é",
      "€uro",
      "😀 emoji",
      "a\ud800b",
      "\udc00",
      "mixed ü € 😀 \ud83d",
    ]
  ) {
    assert.equal(utf8Length(text), encoder.encode(text).length, JSON.stringify(text));
  }
});

Deno.test("parseLimits() refuses a keepalive under one second", () => {
  assert.throws(
    () => parseLimits({ host: "h", port: "1", name: "n", keepalive: "0.5" }),
    /--keepalive: expected a number of seconds from 1 to 3600/,
  );
  assert.equal(
    parseLimits({ host: "h", port: "1", name: "n", keepalive: "1.5" }).keepaliveMs,
    1500,
  );
});

Deno.test("keepaliveInterval() follows the server, never below 1 s, 15 s when it said nothing", () => {
  assert.equal(keepaliveInterval(5000), 5000);
  assert.equal(keepaliveInterval(500), 1000);
  assert.equal(keepaliveInterval(1500.4), 1500);
  for (const nothing of [undefined, null, "5000", 0, -1, NaN, Infinity]) {
    assert.equal(keepaliveInterval(nothing), 15_000);
  }
});

Deno.test("keepaliveInterval() never exceeds 1 hour, so 3 intervals stay a valid timer delay", () => {
  assert.equal(MAX_KEEPALIVE_MS, 3_600_000);
  assert.equal(keepaliveInterval(MAX_KEEPALIVE_MS), MAX_KEEPALIVE_MS);
  for (const huge of [MAX_KEEPALIVE_MS + 1, 715_827_883, 2 ** 31, 2 ** 53, Number.MAX_VALUE]) {
    assert.equal(keepaliveInterval(huge), MAX_KEEPALIVE_MS);
  }
  assert.ok(KEEPALIVE_MISSES * MAX_KEEPALIVE_MS <= MAX_TIMER_MS);
});

Deno.test("safeJson() escapes what JSON.stringify leaves raw: DEL, C1, bidi, separators", () => {
  const text = "a\x1b[2J\x7f\x80\x9b\x9f\u2028\u2029\u202a\u202e\u2066\u2069 ünï ✓\ud800";
  const json = safeJson({ text });
  assert.equal(
    json,
    String
      .raw`{"text":"a\u001b[2J\u007f\u0080\u009b\u009f\u2028\u2029\u202a\u202e\u2066\u2069 ünï ✓\ud800"}`,
  );
  assert.deepEqual(JSON.parse(json), { text });
});

Deno.test("isDisplayName() takes a name, alone or with ~ and 4 to 16 hex digits", () => {
  for (const good of ["bob", "a", "x".repeat(32), "bob~3f9a", "b.o_b-1~0123456789abcdef"]) {
    assert.ok(isDisplayName(good), good);
  }
  for (
    const bad of [
      "",
      "x".repeat(33),
      "bob~3f9",
      "bob~0123456789abcdef0",
      "bob~3F9A",
      "~3f9a",
      "bob~3f9a~3f9a",
      "bob 3f9a",
      "bob\x1b",
      "\u202ebob",
      42,
      null,
    ]
  ) {
    assert.equal(isDisplayName(bad), false, JSON.stringify(bad));
  }
});

Deno.test("parseServerMessage() returns known messages exactly and ignores unknown types", () => {
  const parse = (m: Record<string, unknown>) => parseServerMessage(m as Message);
  assert.deepEqual(parse({ type: "msg", from: "bob~3f9a", text: "hi", extra: 1 }), {
    type: "msg",
    from: "bob~3f9a",
    text: "hi",
  });
  assert.deepEqual(
    parse({ type: "presence", event: "join", name: "bob", fingerprint: "3f9a:12bc:0d4e:77a1" }),
    { type: "presence", event: "join", name: "bob", fingerprint: "3f9a:12bc:0d4e:77a1" },
  );
  assert.deepEqual(parse({ type: "presence", event: "leave", name: "bob", reason: "new-one" }), {
    type: "presence",
    event: "leave",
    name: "bob",
    reason: "new-one",
  });
  assert.deepEqual(parse({ type: "who", members: [] }), { type: "who", members: [] });
  assert.deepEqual(parse({ type: "notice", code: "slow-down", message: "easy" }), {
    type: "notice",
    code: "slow-down",
    message: "easy",
  });
  assert.deepEqual(parse({ type: "keepalive" }), { type: "keepalive" });
  assert.equal(parse({ type: "future-thing", x: {} }), undefined);
});

Deno.test("parseServerMessage() refuses a field of the wrong type or form, saying which", () => {
  const table: [Record<string, unknown>, string][] = [
    [{ type: "msg", text: "hi" }, '"from" is not a display name'],
    [{ type: "msg", from: "bob", text: 1 }, '"text" is not a string'],
    [{ type: "msg", from: "bob\x1b]0;x\x07", text: "hi" }, '"from" is not a display name'],
    [{ type: "presence", event: "join", name: "bob" }, '"fingerprint" is not a fingerprint'],
    [{ type: "presence", event: "leave", name: "bob", reason: [] }, '"reason" is not a string'],
    [{ type: "presence", event: "dance", name: "bob" }, '"event" is not join or leave'],
    [{ type: "presence", event: "join", name: ["bob"] }, '"name" is not a display name'],
    [{ type: "who", members: "bob" }, '"members" is not a list of display names'],
    [{ type: "who", members: ["bob", "\u202e"] }, '"members" is not a list of display names'],
    [{ type: "notice", code: { toString: 1 }, message: "x" }, '"code" is not a code'],
    [{ type: "notice", code: "Slow Down", message: "x" }, '"code" is not a code'],
    [{ type: "error", code: "x".repeat(33), message: "x" }, '"code" is not a code'],
    [{ type: "error", code: "revoked", message: null }, '"message" is not a string'],
  ];
  for (const [message, why] of table) {
    assert.throws(
      () => parseServerMessage(message as Message),
      (e: unknown) =>
        e instanceof ProtocolError &&
        e.message === `the server sent a bad ${message.type}: ${why}`,
      JSON.stringify(message),
    );
  }
});

Deno.test("lineProblem() still encodes lines whose escaping could overflow a frame", () => {
  assert.equal(lineProblem("\u0001".repeat(10_000)), undefined); // 60,000 bytes escaped
  assert.match(lineProblem("\u0001".repeat(11_000))!, /too long for one message/);
});
