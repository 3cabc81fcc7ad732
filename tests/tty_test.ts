import { assert } from "./helpers.ts";
import { colorOf, sanitize } from "../lib/tty.ts";
import { parseTarget } from "../lib/cli/connect.ts";
import { keepaliveInterval } from "../lib/client.ts";
import { parseLimits } from "../lib/cli/serve.ts";
import { UserError } from "../lib/cli/output.ts";
import { lineProblem, utf8Length } from "../lib/lines.ts";

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

Deno.test("parseLimits() turns seconds into milliseconds and refuses non-positive values", () => {
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
  assert.equal(limits.peerSilenceMs, 12_000);
  for (const bad of ["0", "-1", "abc", "1e3", ""]) {
    assert.throws(
      () => parseLimits({ host: "h", port: "1", name: "n", maxMembers: bad }),
      /--max-members: expected a positive number/,
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
    /--keepalive: must be at least 1 s/,
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

Deno.test("lineProblem() still encodes lines whose escaping could overflow a frame", () => {
  assert.equal(lineProblem("\u0001".repeat(10_000)), undefined); // 60,000 bytes escaped
  assert.match(lineProblem("\u0001".repeat(11_000))!, /too long for one message/);
});
