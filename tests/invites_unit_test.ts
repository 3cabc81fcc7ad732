/**
 * Invites without processes: the token's encoding and parsing, durations, the `invites` file
 * format and redemption under the keystore's lock, and the m3 payload's `invite` field.
 */
import { assert } from "./helpers.ts";
import {
  encodeInviteToken,
  INVITE_HRP,
  InviteTokenError,
  parseInviteToken,
} from "../lib/keys/invite_token.ts";
import {
  constantTimeEqual,
  findInvite,
  formatInviteLine,
  freeLabel,
  hashSecret,
  parseInviteLine,
  parseInvites,
} from "../lib/keys/invites.ts";
import { Keystore } from "../lib/keys/keystore.ts";
import { parseDuration } from "../lib/cli/args.ts";
import { decodeHandshakePayload, encodeNamePayload } from "../lib/protocol/messages.ts";
import { ProtocolError } from "../lib/errors.ts";

const KEY = new Uint8Array(32).map((_, i) => i);
const SECRET = new Uint8Array(16).fill(0x5a);
const TOKEN = { hostname: "127.0.0.1", port: 7447, serverKey: KEY, secret: SECRET };

Deno.test("an invite token round-trips and is lowercase letters and digits only", () => {
  const token = encodeInviteToken(TOKEN);
  assert.match(token, /^chatinvite1[02-9ac-hj-np-z]+$/);
  assert.deepEqual(parseInviteToken(token), TOKEN);
  assert.deepEqual(parseInviteToken(`  ${token.toUpperCase()}\n`), TOKEN);
  for (const hostname of ["chat.example.org", "::1", "fe80::1"]) {
    assert.equal(parseInviteToken(encodeInviteToken({ ...TOKEN, hostname })).hostname, hostname);
  }
  // canonical host: the spelling of the address does not matter
  assert.equal(
    parseInviteToken(encodeInviteToken({ ...TOKEN, hostname: "0x7f.1" })).hostname,
    "127.0.0.1",
  );
});

Deno.test("parseInviteToken() catches every one-character change as a bad checksum", () => {
  const token = encodeInviteToken(TOKEN);
  const alphabet = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
  for (let at = INVITE_HRP.length + 1; at < token.length; at++) {
    const other = alphabet[(alphabet.indexOf(token[at]) + 7) % 32];
    const changed = token.slice(0, at) + other + token.slice(at + 1);
    assert.throws(
      () => parseInviteToken(changed),
      (error) => error instanceof InviteTokenError && error.problem === "checksum",
      `position ${at}`,
    );
  }
  // a character lost
  assert.throws(
    () => parseInviteToken(token.slice(0, 40) + token.slice(41)),
    (error) => error instanceof InviteTokenError && error.problem === "checksum",
  );
});

Deno.test("parseInviteToken() names what is wrong with text that is no token", () => {
  const token = encodeInviteToken(TOKEN);
  const table: [string, InviteTokenError["problem"], RegExp][] = [
    ["chat1abc", "prefix", /does not start with chatinvite1/],
    ["", "prefix", /does not start with chatinvite1/],
    [token.slice(0, 30) + "b" + token.slice(31), "characters", /only a-z and 0-9/],
    ["chatINVITE1" + token.slice(11), "characters", /mixed case/],
    ["chatinvite1qqqqqqqqqqqqqqq", "checksum", /bad checksum/],
  ];
  for (const [text, problem, pattern] of table) {
    assert.throws(
      () => parseInviteToken(text),
      (error) =>
        error instanceof InviteTokenError && error.problem === problem &&
        pattern.test(error.message),
      text,
    );
  }
});

Deno.test("encodeInviteToken() refuses a bad secret, port or host", () => {
  assert.throws(() => encodeInviteToken({ ...TOKEN, secret: new Uint8Array(15) }), RangeError);
  assert.throws(() => encodeInviteToken({ ...TOKEN, port: 0 }), RangeError);
  assert.throws(() => encodeInviteToken({ ...TOKEN, hostname: "a b" }), SyntaxError);
  assert.throws(() => encodeInviteToken({ ...TOKEN, hostname: "" }), SyntaxError);
});

Deno.test("parseDuration() reads s, m, h and d from 1s to 365d", () => {
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("30m"), 1_800_000);
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("7d"), 604_800_000);
  assert.equal(parseDuration("365d"), 365 * 86_400_000);
  for (const bad of ["", "10", "0s", "1.5h", "-1d", "366d", "1w", "h", "1 h"]) {
    assert.throws(() => parseDuration(bad), SyntaxError, bad);
  }
});

Deno.test("an invites line round-trips, and bad lines are reported with their numbers", () => {
  const entry = {
    id: "0a1b2c3d",
    hash: hashSecret(SECRET),
    expiresAt: Date.UTC(2030, 0, 31, 12),
    uses: 3,
    label: "bob",
  };
  const line = formatInviteLine(entry);
  assert.match(line, /^0a1b2c3d [0-9a-f]{64} 2030-01-31T12:00:00Z 3 bob$/);
  assert.deepEqual(parseInviteLine(line), entry);
  const text = [
    "# comment",
    line,
    "",
    "0a1b2c3d " + "00".repeat(32) + " 2030-01-31T12:00:00Z 1", // a duplicate id
    "zzzzzzzz " + "00".repeat(32) + " 2030-01-31T12:00:00Z 1",
    "0a1b2c3e " + "00".repeat(31) + " 2030-01-31T12:00:00Z 1",
    "0a1b2c3f " + "00".repeat(32) + " tomorrow 1",
    "0a1b2c40 " + "00".repeat(32) + " 2030-01-31T12:00:00Z 0",
    "0a1b2c41 " + "00".repeat(32) + " 2030-01-31T12:00:00Z 1 no/label",
    "0a1b2c42",
  ].join("\n");
  const parsed = parseInvites(text);
  assert.equal(parsed.entries.length, 1);
  assert.deepEqual(parsed.errors.map((e) => e.line), [4, 5, 6, 7, 8, 9, 10]);
  assert.match(parsed.errors[0].message, /earlier line/);
  assert.match(parsed.errors[2].message, /hash/);
});

Deno.test("findInvite() finds by the secret's hash, and tells unknown from expired", () => {
  const entries = parseInvites(
    formatInviteLine({ id: "00000001", hash: hashSecret(SECRET), expiresAt: 10_000, uses: 1 }),
  ).entries;
  assert.equal("entry" in findInvite(entries, SECRET, 9_999), true);
  assert.deepEqual(findInvite(entries, SECRET, 10_000), { refused: "expired" });
  assert.deepEqual(findInvite(entries, new Uint8Array(16), 0), { refused: "unknown" });
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])), true);
  assert.equal(constantTimeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3])), false);
  assert.equal(constantTimeEqual(new Uint8Array([1]), new Uint8Array([1, 2])), false);
});

Deno.test("freeLabel() disambiguates a label another key has", () => {
  const other = new Uint8Array(32).fill(9);
  const entries = [
    { key: other, label: "bob", line: 1 },
    { key: new Uint8Array(32).fill(8), label: "bob-2", line: 2 },
  ];
  assert.equal(freeLabel(entries, "carol", KEY), "carol");
  assert.equal(freeLabel(entries, "bob", KEY), "bob-3");
  assert.equal(freeLabel(entries, "bob", other), "bob", "its own label is no conflict");
  const long = "x".repeat(32);
  assert.equal(freeLabel([{ key: other, label: long, line: 1 }], long, KEY), "x".repeat(30) + "-2");
});

Deno.test("Keystore.redeemInvite() uses an invite up once and allows the key under its label", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const keystore = new Keystore(dir);
    const entry = await keystore.addInvite({
      hash: hashSecret(SECRET),
      expiresAt: Date.now() + 60_000,
      uses: 2,
      label: "team",
    });
    const info = await Deno.stat(keystore.paths.invites);
    if (Deno.build.os !== "windows") assert.equal(info.mode! & 0o777, 0o600);
    const [a, b, c] = [1, 2, 3].map((n) => new Uint8Array(32).fill(n));
    assert.deepEqual(await keystore.redeemInvite(SECRET, a, "ann"), {
      label: "team",
      id: entry.id,
    });
    assert.equal((await keystore.readInvites()).entries[0].uses, 1);
    // the same key again: already allowed, the invite is not used
    assert.deepEqual(await keystore.redeemInvite(SECRET, a, "ann"), { label: "team" });
    assert.deepEqual(await keystore.redeemInvite(SECRET, b, "ben"), {
      label: "team-2",
      id: entry.id,
    });
    assert.equal((await keystore.readInvites()).entries.length, 0, "used up: removed");
    assert.deepEqual(await keystore.redeemInvite(SECRET, c, "cy"), { refused: "unknown" });
    const labels = (await keystore.readAllowlist()).entries.map((e) => e.label);
    assert.deepEqual(labels, ["team", "team-2"]);
    // revoking
    const other = await keystore.addInvite({
      hash: hashSecret(new Uint8Array(16)),
      expiresAt: 0,
      uses: 1,
    });
    assert.deepEqual(await keystore.redeemInvite(new Uint8Array(16), c, "cy"), {
      refused: "expired",
    });
    assert.equal((await keystore.revokeInvite(other.id)).id, other.id);
    await assert.rejects(() => keystore.revokeInvite(other.id), /no invite/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the m3 payload carries an optional invite; a bad one is a protocol error", () => {
  const decode = (text: string) => decodeHandshakePayload(new TextEncoder().encode(text), "client");
  assert.deepEqual(decodeHandshakePayload(encodeNamePayload("bob"), "client"), { name: "bob" });
  assert.deepEqual(decodeHandshakePayload(encodeNamePayload("bob", SECRET), "client"), {
    name: "bob",
    invite: "5a".repeat(16),
  });
  // unknown fields are ignored (section 4.4)
  assert.deepEqual(decode('{"name":"bob","other":1}'), { name: "bob" });
  for (const bad of ['"x"', "12", '"5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A"', '"5a5a"', "null"]) {
    assert.throws(() => decode(`{"name":"bob","invite":${bad}}`), ProtocolError, bad);
  }
});
