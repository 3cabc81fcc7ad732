/**
 * Pure tests of key text: round trips, a table of bad keys with the exact error, fingerprints,
 * names, and the allowlist, identity and known_servers line formats.
 */
import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { base64, bech32, bech32m } from "@scure/base";
import { primitives } from "../lib/protocol/crypto.ts";
import {
  checkBytes,
  encodePublicKey,
  encodePublicKeyBase64,
  encodeSecretKey,
  fingerprint,
  formatIdentity,
  isPublicKey,
  parseIdentity,
  parsePublicKey,
  parseSecretKey,
  PUBLIC_KEY_TEXT_LENGTH,
  sameKey,
  SECRET_KEY_TEXT_LENGTH,
} from "../lib/keys/key_text.ts";
import {
  formatAllowLine,
  formatKnownServerLine,
  normalizeAddress,
  parseAllowLine,
  parseAllowlist,
  parseKnownServers,
  splitLines,
} from "../lib/keys/key_files.ts";
import { isValidName, validateName } from "../lib/protocol/names.ts";

const ZERO = new Uint8Array(32);
const NINES = new Uint8Array(32).fill(9);
const NINES_TEXT = "chat1pyysjzgfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpyysjzgfpyys3rjjuk";
const NINES_BASE64 = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

/** BIP 173 checksum, written out here so the tests do not only trust @scure/base. */
function bip173Polymod(hrp: string, data: number[]): number {
  const GEN = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  const values = [
    ...[...hrp].map((c) => c.charCodeAt(0) >> 5),
    0,
    ...[...hrp].map((c) => c.charCodeAt(0) & 31),
    ...data,
  ];
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GEN[i];
  }
  return chk >>> 0;
}

function polymodOf(text: string): number {
  const charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
  const lower = text.toLowerCase();
  const separator = lower.lastIndexOf("1");
  const data = [...lower.slice(separator + 1)].map((c) => charset.indexOf(c));
  return bip173Polymod(lower.slice(0, separator), data);
}

Deno.test("encodePublicKey() writes chat1 and 58 lowercase characters", () => {
  strictEqual(encodePublicKey(NINES), NINES_TEXT);
  strictEqual(
    encodePublicKey(ZERO),
    "chat1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqaa3e5f",
  );
  strictEqual(PUBLIC_KEY_TEXT_LENGTH, 63);
  strictEqual(NINES_TEXT.length, 63);
});

Deno.test("encodePublicKey() uses the BIP 173 checksum constant 1, not bech32m", () => {
  for (let i = 0; i < 20; i++) {
    const text = encodePublicKey(primitives.generateKeyPair().publicKey);
    strictEqual(polymodOf(text), 1);
    strictEqual(polymodOf(encodeSecretKey(primitives.generateKeyPair().secretKey)), 1);
  }
});

Deno.test("parsePublicKey() round-trips both forms of random keys", () => {
  for (let i = 0; i < 50; i++) {
    const key = primitives.generateKeyPair().publicKey;
    deepStrictEqual(parsePublicKey(encodePublicKey(key)), key);
    deepStrictEqual(parsePublicKey(encodePublicKeyBase64(key)), key);
    deepStrictEqual(parsePublicKey(encodePublicKey(key).toUpperCase()), key);
    strictEqual(encodePublicKeyBase64(key).length, 44);
  }
  deepStrictEqual(parsePublicKey(NINES_BASE64), NINES);
  deepStrictEqual(parsePublicKey(NINES_TEXT), NINES);
});

Deno.test("parsePublicKey() reads 44 base64 characters as base64 even if they start chat1", () => {
  const bytes = base64.decode("chat1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
  deepStrictEqual(parsePublicKey("chat1AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), bytes);
});

const words31 = bech32.toWords(new Uint8Array(31));
const words33 = bech32.toWords(new Uint8Array(33));
const paddedWords = bech32.toWords(NINES);
paddedWords[paddedWords.length - 1] |= 1;

/** Bad public keys and the exact error each gives. */
const BAD_PUBLIC_KEYS: [string, string, string][] = [
  ["empty", "", `cannot parse public key "": it is empty`],
  [
    "bad checksum",
    NINES_TEXT.slice(0, -1) + "q",
    `cannot parse public key "chat1pyysjzg…": bad checksum (a typing error?)`,
  ],
  [
    "a typo in the data",
    NINES_TEXT.replace("pyysjzgf", "pyysjzgg"),
    `cannot parse public key "chat1pyysjzg…": bad checksum (a typing error?)`,
  ],
  [
    "one character short",
    NINES_TEXT.slice(0, -1),
    `cannot parse public key "chat1pyysjzg…": it is 62 characters long, expected 63`,
  ],
  [
    "trailing garbage",
    NINES_TEXT + "q",
    `cannot parse public key "chat1pyysjzg…": unexpected characters after the key ("q…")`,
  ],
  [
    "trailing punctuation",
    NINES_TEXT + ",",
    `cannot parse public key "chat1pyysjzg…": unexpected characters after the key (",…")`,
  ],
  [
    "white space inside",
    NINES_TEXT + " alice",
    `cannot parse public key "chat1pyysjzg…": it contains white space`,
  ],
  [
    "white space around",
    NINES_TEXT + "\n",
    `cannot parse public key "chat1pyysjzg…": it has white space around it`,
  ],
  [
    "mixed case",
    "Chat1" + NINES_TEXT.slice(5),
    `cannot parse public key "Chat1pyysjzg…": it mixes upper and lower case`,
  ],
  [
    "wrong prefix (an age key)",
    bech32.encode("age", bech32.toWords(NINES), false),
    `cannot parse public key "age1pyysjzgf…": wrong prefix "age1", expected "chat1"`,
  ],
  [
    "bech32m instead of bech32",
    bech32m.encode("chat", bech32m.toWords(NINES), false),
    `cannot parse public key "chat1pyysjzg…": it is bech32m (BIP 350); expected bech32 (BIP 173)`,
  ],
  [
    "31 bytes with a valid checksum",
    bech32.encode("chat", words31, false),
    `cannot parse public key "chat1qqqqqqq…": it holds 31 bytes, expected 32`,
  ],
  [
    "33 bytes with a valid checksum",
    bech32.encode("chat", words33, false),
    `cannot parse public key "chat1qqqqqqq…": it holds 33 bytes, expected 32`,
  ],
  [
    "non-zero padding bits",
    bech32.encode("chat", paddedWords, false),
    `cannot parse public key "chat1pyysjzg…": it has non-zero padding bits`,
  ],
  [
    "a character outside the bech32 alphabet",
    "chat1bpyysjzgf",
    `cannot parse public key "chat1bpyysjzgf": invalid character "b" at position 6`,
  ],
  ["only the prefix", "chat1", `cannot parse public key "chat1": it is too short (5 characters)`],
  [
    "base64 of 31 bytes",
    base64.encode(new Uint8Array(31)),
    `cannot parse public key "AAAAAAAAAAAA…": base64 of 31 bytes, expected 32`,
  ],
  [
    "base64 of 33 bytes",
    base64.encode(new Uint8Array(33)),
    `cannot parse public key "AAAAAAAAAAAA…": base64 of 33 bytes, expected 32`,
  ],
  [
    "base64 without padding",
    NINES_BASE64.slice(0, -1),
    `cannot parse public key "CQkJCQkJCQkJ…": base64 of the wrong length: 43 characters, expected 44`,
  ],
  [
    "base64 with trailing garbage",
    NINES_BASE64 + "x",
    `cannot parse public key "CQkJCQkJCQkJ…": unexpected characters after the key ("x…")`,
  ],
  [
    "non-canonical base64",
    NINES_BASE64.slice(0, 42) + "l=",
    `cannot parse public key "CQkJCQkJCQkJ…": non-canonical base64 (the character before '=' has stray low bits)`,
  ],
  [
    "URL-safe base64",
    base64.encode(new Uint8Array(32).fill(0xff)).replaceAll("/", "_"),
    `cannot parse public key "____________…": it looks like URL-safe base64 ('-', '_'); use standard base64 ('+', '/')`,
  ],
  [
    "a word",
    "alice",
    `cannot parse public key "alice": expected chat1… (63 characters) or 44 characters of base64`,
  ],
];

for (const [what, text, message] of BAD_PUBLIC_KEYS) {
  Deno.test(`parsePublicKey() rejects ${what}`, () => {
    throws(() => parsePublicKey(text), { name: "SyntaxError", message });
    strictEqual(isPublicKey(text), false);
  });
}

Deno.test("parsePublicKey() rejects a secret key without echoing it", () => {
  const secret = encodeSecretKey(primitives.generateKeyPair().secretKey);
  throws(() => parsePublicKey(secret), (error: Error) => {
    strictEqual(
      error.message,
      `cannot parse public key "CHAT-SECRET-KEY-1…": this is a secret key, not a public key ` +
        `(keep it private)`,
    );
    return true;
  });
  throws(() => parsePublicKey(secret.toLowerCase()), /this is a secret key/);
});

Deno.test("encodeSecretKey() writes CHAT-SECRET-KEY-1 in uppercase and parses back", () => {
  const { secretKey } = primitives.generateKeyPair();
  const text = encodeSecretKey(secretKey);
  ok(/^CHAT-SECRET-KEY-1[02-9AC-HJ-NP-Z]{58}$/.test(text), text);
  strictEqual(text.length, SECRET_KEY_TEXT_LENGTH);
  deepStrictEqual(parseSecretKey(text), secretKey);
  deepStrictEqual(parseSecretKey(text.toLowerCase()), secretKey);
});

Deno.test("parseSecretKey() errors never contain the key text", () => {
  const text = encodeSecretKey(NINES);
  const cases: [string, string][] = [
    [text.slice(0, -1) + (text.endsWith("Q") ? "P" : "Q"), "bad checksum (a typing error?)"],
    [text.slice(0, 20) + text.slice(20).toLowerCase(), "it mixes upper and lower case"],
    [NINES_TEXT, `wrong prefix "chat1", expected "chat-secret-key-1"`],
    ["", "it is empty"],
    [text + " ", "it contains white space"],
  ];
  for (const [input, reason] of cases) {
    throws(() => parseSecretKey(input), {
      name: "SyntaxError",
      message: `cannot parse secret key: ${reason}`,
    });
  }
});

Deno.test("formatIdentity() and parseIdentity() round-trip and derive the public key", () => {
  const pair = primitives.generateKeyPair();
  const text = formatIdentity(pair);
  const lines = text.split("\n");
  strictEqual(lines[0], "# chat secret key: keep private");
  strictEqual(lines[1], `# public key: ${encodePublicKey(pair.publicKey)}`);
  strictEqual(lines[2], encodeSecretKey(pair.secretKey));
  strictEqual(lines[3], "");
  const parsed = parseIdentity(text);
  deepStrictEqual(parsed.secretKey, pair.secretKey);
  deepStrictEqual(parsed.publicKey, pair.publicKey);
});

Deno.test("parseIdentity() names the bad line", () => {
  throws(() => parseIdentity("# nothing\n\n"), { message: "no secret key in the file" });
  const key = encodeSecretKey(NINES);
  throws(() => parseIdentity(`# a\n${key}\n${key}\n`), {
    message: "line 3: a second secret key (the first is on line 2)",
  });
  throws(() => parseIdentity(`# a\n\nCHAT-SECRET-KEY-1QQ\n`), {
    message: "line 3: cannot parse secret key: it is too short (19 characters)",
  });
});

Deno.test("fingerprint() is the first 8 bytes of SHA-256 as four groups of hex", () => {
  // SHA-256 of 32 zero bytes starts 66687aadf862bd77.
  strictEqual(fingerprint(ZERO), "6668:7aad:f862:bd77");
  const key = primitives.generateKeyPair().publicKey;
  ok(/^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/.test(fingerprint(key)));
  strictEqual(fingerprint(parsePublicKey(encodePublicKeyBase64(key))), fingerprint(key));
  throws(() => fingerprint(new Uint8Array(31)), RangeError);
});

Deno.test("checkBytes() takes exactly 32 bytes by default and names what it refused", () => {
  const key = new Uint8Array(32);
  strictEqual(checkBytes("public key", key), key);
  for (const length of [0, 1, 31, 33]) {
    throws(() => checkBytes("public key", new Uint8Array(length)), {
      name: "RangeError",
      message: `public key must be 32 bytes, got ${length}`,
    });
  }
  throws(() => checkBytes("nonce", new Uint8Array(32), 12), {
    name: "RangeError",
    message: "nonce must be 12 bytes, got 32",
  });
  throws(() => checkBytes("public key", "chat1…" as unknown as Uint8Array), {
    name: "TypeError",
    message: "public key must be a Uint8Array, got string",
  });
  throws(() => encodePublicKey(new Uint8Array(33)), {
    name: "RangeError",
    message: "public key must be 32 bytes, got 33",
  });
});

Deno.test("sameKey() compares bytes", () => {
  ok(sameKey(NINES, new Uint8Array(32).fill(9)));
  ok(!sameKey(NINES, ZERO));
});

Deno.test("validateName() accepts NAME_PATTERN and says what is wrong otherwise", () => {
  for (const name of ["a", "alice", "Bob_2", "x.y-z", "a".repeat(32), "-"]) {
    strictEqual(validateName(name, "label"), name);
    ok(isValidName(name));
  }
  const cases: [string, string][] = [
    ["", `invalid label "": it is empty`],
    ["a\nb", `invalid label "a\\nb": it contains a line break`],
    ["a\r", `invalid label "a\\r": it contains a line break`],
    [
      "a b",
      `invalid label "a b": it contains white space; use 1 to 32 letters, digits, '-', '_' or '.'`,
    ],
    [
      "a".repeat(33),
      `invalid label "${"a".repeat(33)}": it is 33 characters long; the limit is 32`,
    ],
    [
      "al#ce",
      `invalid label "al#ce": "#" is not allowed; use 1 to 32 letters, digits, '-', '_' or '.'`,
    ],
    [
      "élise",
      `invalid label "élise": "é" is not allowed; use 1 to 32 letters, digits, '-', '_' or '.'`,
    ],
  ];
  for (const [name, message] of cases) {
    throws(() => validateName(name, "label"), { name: "SyntaxError", message });
    strictEqual(isValidName(name), false);
  }
});

Deno.test("splitLines() handles LF, CRLF and a missing final newline", () => {
  deepStrictEqual(splitLines(""), []);
  deepStrictEqual(splitLines("a\nb\n"), ["a", "b"]);
  deepStrictEqual(splitLines("a\r\nb"), ["a", "b"]);
  deepStrictEqual(splitLines("\n\n"), ["", ""]);
});

Deno.test("parseAllowLine() reads KEY [LABEL] [# comment] and skips blanks and comments", () => {
  strictEqual(parseAllowLine(""), undefined);
  strictEqual(parseAllowLine("   "), undefined);
  strictEqual(parseAllowLine("# a comment"), undefined);
  deepStrictEqual(parseAllowLine(NINES_TEXT), { key: NINES });
  deepStrictEqual(parseAllowLine(`  ${NINES_TEXT}\talice  # laptop`), {
    key: NINES,
    label: "alice",
  });
  deepStrictEqual(parseAllowLine(`${NINES_BASE64} bob`), { key: NINES, label: "bob" });
  throws(() => parseAllowLine(`${NINES_TEXT} alice smith`), {
    message: `expected "KEY [LABEL]", found 3 fields (a label has no spaces)`,
  });
});

Deno.test("formatAllowLine() writes the chat1 form and refuses a bad label", () => {
  strictEqual(formatAllowLine(NINES), NINES_TEXT);
  strictEqual(formatAllowLine(NINES, "alice"), `${NINES_TEXT} alice`);
  throws(() => formatAllowLine(NINES, "a\nb"), { message: /line break/ });
});

Deno.test("parseAllowlist() returns entries and every bad line with its number", () => {
  const other = encodePublicKey(ZERO);
  const text = [
    "# allowlist", // 1
    "", // 2
    `${NINES_TEXT} alice`, // 3
    "chat1notakey", // 4
    `${other}`, // 5
    `${NINES_BASE64} again`, // 6: the same key as line 3
    `${encodePublicKey(new Uint8Array(32).fill(1))} alice`, // 7: label of line 3
    `${encodePublicKey(new Uint8Array(32).fill(2))} bad\u0007label`, // 8
  ].join("\r\n") + "\r\n";
  const list = parseAllowlist(text);
  deepStrictEqual(list.entries, [
    { key: NINES, label: "alice", line: 3 },
    { key: ZERO, line: 5 },
  ]);
  deepStrictEqual(list.errors.map((error) => error.line), [4, 6, 7, 8]);
  strictEqual(
    list.errors[0].message,
    `cannot parse public key "chat1notakey": invalid character "o" at position 7`,
  );
  strictEqual(list.errors[1].message, "the key is already listed on line 3");
  strictEqual(list.errors[2].message, `the label "alice" is already used on line 3`);
  ok(list.errors[3].message.startsWith(`invalid label "bad\\u0007label"`));
  strictEqual(list.lines.length, 8);
  strictEqual(list.lines[0], "# allowlist");
});

Deno.test("normalizeAddress() accepts host:port and bracketed IPv6", () => {
  strictEqual(normalizeAddress("Example.ORG:7447"), "example.org:7447");
  strictEqual(normalizeAddress("127.0.0.1:1"), "127.0.0.1:1");
  strictEqual(normalizeAddress("[::1]:65535"), "[::1]:65535");
  strictEqual(normalizeAddress("host:07447"), "host:7447");
  for (const bad of ["host", "host:", ":7447", "host:0", "host:65536", "::1:7447", "a b:1"]) {
    throws(() => normalizeAddress(bad), SyntaxError, bad);
  }
});

Deno.test("parseKnownServers() reads host:port KEY lines and reports bad ones", () => {
  const text = [
    "# pinned servers",
    `example.org:7447 ${NINES_TEXT}`,
    `[::1]:7447 ${NINES_BASE64}`,
    "",
    `example.org:7447 ${encodePublicKey(ZERO)}`,
    `nohost ${NINES_TEXT}`,
    `other:1 ${NINES_TEXT} extra`,
    `other:2 chat1xyz`,
  ].join("\n");
  const servers = parseKnownServers(text);
  deepStrictEqual(servers.entries, [
    { address: "example.org:7447", key: NINES, line: 2 },
    { address: "[::1]:7447", key: NINES, line: 3 },
  ]);
  deepStrictEqual(servers.errors.map((error) => error.line), [5, 6, 7, 8]);
  strictEqual(servers.errors[0].message, "example.org:7447 is already listed on line 2");
  strictEqual(
    servers.errors[1].message,
    `invalid server address "nohost": expected "host:port" (IPv6 as "[::1]:port")`,
  );
  strictEqual(servers.errors[2].message, `expected "HOST:PORT KEY", found 3 field(s)`);
  strictEqual(formatKnownServerLine("Example.org:7447", NINES), `example.org:7447 ${NINES_TEXT}`);
});

// Every spelling of one address that the resolver accepts must key one pin (issue 9).
const SAME_HOST: [string, string][] = [
  ["127.0.0.1:7447", "127.0.0.1:7447"],
  ["127.1:7447", "127.0.0.1:7447"], // inet_aton: a.b, b fills 24 bits
  ["127.0.1:7447", "127.0.0.1:7447"], // a.b.c, c fills 16 bits
  ["2130706433:7447", "127.0.0.1:7447"], // one 32-bit number
  ["127.0.0.01:7447", "127.0.0.1:7447"], // octal
  ["0177.0.0.1:7447", "127.0.0.1:7447"],
  ["0x7f.1:7447", "127.0.0.1:7447"], // hex
  ["0X7F.0X0.0.0x1:7447", "127.0.0.1:7447"],
  ["0x7f000001:7447", "127.0.0.1:7447"],
  ["0:7447", "0.0.0.0:7447"],
  ["255.255.255.255:1", "255.255.255.255:1"],
  ["[::ffff:127.0.0.1]:7447", "127.0.0.1:7447"], // IPv4-mapped IPv6 is the IPv4 host
  ["[::FFFF:7f00:1]:7447", "127.0.0.1:7447"],
  ["[0:0:0:0:0:ffff:127.0.0.1]:7447", "127.0.0.1:7447"],
  ["[::1]:7447", "[::1]:7447"],
  ["[0:0:0:0:0:0:0:1]:7447", "[::1]:7447"],
  ["[0000::0001]:7447", "[::1]:7447"],
  ["[::]:7447", "[::]:7447"],
  ["[2001:DB8::1]:7447", "[2001:db8::1]:7447"],
  ["[2001:0db8:0000:0000:0000:0000:0000:0001]:7447", "[2001:db8::1]:7447"],
  ["[2001:db8:0:0:1:0:0:1]:7447", "[2001:db8::1:0:0:1]:7447"], // RFC 5952 §4.2.3: first run
  ["[2001:db8:0:1:1:1:1:1]:7447", "[2001:db8:0:1:1:1:1:1]:7447"], // §4.2.2: one 0 stays
  ["[1:2:3:4:5:6:7::]:7447", "[1:2:3:4:5:6:7:0]:7447"],
  ["[::1.2.3.4]:7447", "[::102:304]:7447"], // IPv4-compatible is not mapped
  ["LocalHost:7447", "localhost:7447"],
  ["example.org.:7447", "example.org:7447"],
  // not IP literals: kept as names
  ["127.0.0.08:7447", "127.0.0.08:7447"], // 08 is not octal
  ["1.2.3.4.5:7447", "1.2.3.4.5:7447"],
  ["256.1.1.1:7447", "256.1.1.1:7447"],
  ["0x:7447", "0x:7447"],
];

Deno.test("normalizeAddress() gives every spelling of an IP address one form", () => {
  for (const [spelling, canonical] of SAME_HOST) {
    strictEqual(normalizeAddress(spelling), canonical, spelling);
  }
  for (const bad of ["[1:2:3:4:5:6:7:8:9]:1", "[1::2::3]:1", "[12345::]:1", "[::1.2.3.256]:1"]) {
    throws(() => normalizeAddress(bad), SyntaxError, bad);
  }
});

Deno.test("parseKnownServers() reads two spellings of one address with one key as one pin", () => {
  const servers = parseKnownServers(`127.1:7447 ${NINES_TEXT}\n127.0.0.1:7447 ${NINES_TEXT}\n`);
  deepStrictEqual(servers.entries, [{ address: "127.0.0.1:7447", key: NINES, line: 1 }]);
  deepStrictEqual(servers.errors, []);
  const clash = parseKnownServers(
    `127.1:7447 ${NINES_TEXT}\n127.0.0.1:7447 ${encodePublicKey(ZERO)}\n`,
  );
  strictEqual(clash.errors[0].message, "127.0.0.1:7447 is already listed on line 1");
});
