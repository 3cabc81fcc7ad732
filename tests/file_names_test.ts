/**
 * File names from an untrusted peer (lib/chat/file_names.ts): hostile names reduced to safe base
 * names, and the numbered names that avoid overwriting, all within the byte cap.
 * @module
 */
import { MAX_FILE_NAME_BYTES, numberedName, safeFileName } from "../lib/chat/file_names.ts";
import { assert, seededRandom } from "./helpers.ts";

const utf8Length = (text: string) => new TextEncoder().encode(text).length;

/** The promises every safe name keeps, whatever was offered. */
function assertSafe(name: string, offered: string): void {
  const context = `${JSON.stringify(offered)} -> ${JSON.stringify(name)}`;
  assert.ok(name.length > 0, context);
  assert.ok(utf8Length(name) <= MAX_FILE_NAME_BYTES, context);
  assert.ok(!/[/\\<>:"|?*]/.test(name), `separator or forbidden character: ${context}`);
  assert.ok(!name.startsWith(".") && !/^\s/u.test(name), `leading dot or space: ${context}`);
  assert.ok(!/[.\s]$/u.test(name), `trailing dot or space: ${context}`);
  assert.ok(
    !/[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u.test(name),
    `control or invisible character: ${context}`,
  );
  assert.equal(name, name.normalize("NFC"), `not NFC: ${context}`);
  assert.ok(name.isWellFormed(), `unpaired surrogate: ${context}`);
  assert.ok(!/^(con|prn|aux|nul|com\d|lpt\d)( *\.|$)/i.test(name), `reserved: ${context}`);
}

const HOSTILE: [string, string][] = [
  ["../../etc/passwd", "passwd"],
  ["..", "file"],
  [".", "file"],
  ["...", "file"],
  ["", "file"],
  ["/", "file"],
  ["a/b\\c", "c"],
  ["a/b/", "b"],
  ["..\\..\\", "file"],
  ["C:\\Windows\\evil.exe", "evil.exe"],
  ["C:evil.exe", "C_evil.exe"],
  ["file.txt:stream", "file.txt_stream"],
  ['<>:"|?*', "_______"],
  ["\u202Etxt.exe", "txt.exe"],
  ["invoice\u202Efdp.exe", "invoicefdp.exe"],
  ["photo\u2066\u2067\u2068\u2069\u200e\u200f\u061c.jpg", "photo.jpg"],
  ["a\u202a\u202b\u202c\u202d.txt", "a.txt"],
  ["zero\u200b\u200c\u200d\u2060\ufeffwidth", "zerowidth"],
  ["tag\u{e0001}\u{e0041}\u{e007f}s", "tags"],
  ["line\u2028para\u2029.txt", "linepara.txt"],
  ["\x1b]52;c;aGVsbG8=\x07.txt", "]52;c;aGVsbG8=.txt"],
  ["\x1b[2J\x1b[31mred", "[2J[31mred"],
  ["c1\x85\x9b.txt", "c1.txt"],
  ["del\x7f.txt", "del.txt"],
  ["nul\0byte.txt", "nulbyte.txt"],
  ["\0", "file"],
  ["lone\ud800surrogate", "lonesurrogate"],
  [".bashrc", "bashrc"],
  ["..bashrc", "bashrc"],
  [" . .hidden", "hidden"],
  ["trailing. . ", "trailing"],
  ["report.pdf.", "report.pdf"],
  ["CON", "_CON"],
  ["con", "_con"],
  ["con.txt", "_con.txt"],
  ["nul.txt", "_nul.txt"],
  ["NUL .txt", "_NUL .txt"],
  ["Com1.tar.gz", "_Com1.tar.gz"],
  ["LPT9.log", "_LPT9.log"],
  ["lpt1", "_lpt1"],
  ["aux.", "_aux"],
  ["COM²", "_COM²"],
  ["conin$", "_conin$"],
  ["COM10", "COM10"],
  ["console.log", "console.log"],
  ["connect", "connect"],
  ["  . . ", "file"],
  ["....  ....", "file"],
  ["😀.png", "😀.png"],
  ["family 👨\u200d👩\u200d👧.png", "family 👨👩👧.png"],
  ["e\u0301te\u0301.txt", "été.txt"],
  ["e\u200b\u0301.txt", "é.txt"],
];

Deno.test("safeFileName() reduces hostile names to safe base names", () => {
  for (const [offered, expected] of HOSTILE) {
    const name = safeFileName(offered);
    assert.equal(name, expected, JSON.stringify(offered));
    assertSafe(name, offered);
  }
});

Deno.test("safeFileName() keeps ordinary names as they are", () => {
  for (const name of ["report.pdf", "notes", "Résumé 2024.docx", "日本語.txt", "a b (1).tar.gz"]) {
    assert.equal(safeFileName(name), name);
  }
});

Deno.test("safeFileName() cuts a long name to 200 bytes, keeping the extension", () => {
  const offered = "é".repeat(150) + ".txt"; // 304 bytes
  const name = safeFileName(offered);
  assert.equal(name, "é".repeat(98) + ".txt");
  assert.equal(utf8Length(name), 200);
});

Deno.test("safeFileName() cuts between code points: a 3-byte character that does not fit goes", () => {
  const name = safeFileName("a" + "中".repeat(100) + ".md"); // 1 + 300 + 3 bytes
  // 197 bytes of stem room: "a" and 65 whole characters (196 bytes), never a partial one
  assert.equal(name, "a" + "中".repeat(65) + ".md");
  assert.equal(utf8Length(name), 199);
});

Deno.test("safeFileName() never splits a surrogate pair when it cuts emoji", () => {
  for (let prefix = 0; prefix < 4; prefix++) {
    const offered = "x".repeat(prefix) + "😀".repeat(80) + ".png"; // 4 bytes each
    const name = safeFileName(offered);
    assertSafe(name, offered);
    assert.ok(name.endsWith("😀.png"), name);
    assert.ok(utf8Length(name) > MAX_FILE_NAME_BYTES - 4, `${utf8Length(name)}`);
  }
});

Deno.test("safeFileName() keeps a double extension whole and cuts the stem", () => {
  const name = safeFileName("b".repeat(300) + ".tar.gz");
  assert.equal(name, "b".repeat(193) + ".tar.gz");
});

Deno.test("safeFileName() cuts a long name without an extension and drops a trailing dot", () => {
  assert.equal(safeFileName("x".repeat(199) + ".tail of no extension"), "x".repeat(199));
  assert.equal(safeFileName("y".repeat(300)), "y".repeat(200));
});

Deno.test("safeFileName() keeps the prefix of a reserved name within the cap", () => {
  const name = safeFileName("con." + "z".repeat(300));
  assert.ok(name.startsWith("_con."), name);
  assert.equal(utf8Length(name), MAX_FILE_NAME_BYTES);
});

Deno.test("safeFileName() gives a safe name for random hostile strings", () => {
  const random = seededRandom(0xf11e);
  const alphabet = [
    ...'./\\ :*?<>|"aZ09-_~',
    "\0",
    "\x1b",
    "\x07",
    "\x7f",
    "\x85",
    "\u202e",
    "\u2066",
    "\u200d",
    "\ufeff",
    "\u2028",
    "\ud83d",
    "\ude00",
    "😀",
    "é",
    "e\u0301",
    "中",
    "\u{e0041}",
    "CON",
    "lpt1",
    "nul",
  ];
  for (let i = 0; i < 5000; i++) {
    const length = Math.floor(random() * (i % 10 === 0 ? 400 : 20));
    const offered = Array.from(
      { length },
      () => alphabet[Math.floor(random() * alphabet.length)],
    ).join("");
    assertSafe(safeFileName(offered), offered);
  }
});

Deno.test("numberedName() puts the number before the extension", () => {
  assert.equal(numberedName("report.pdf", 1), "report (1).pdf");
  assert.equal(numberedName("report.pdf", 12), "report (12).pdf");
  assert.equal(numberedName("archive.tar.gz", 1), "archive (1).tar.gz");
  assert.equal(numberedName("archive.TAR.XZ", 2), "archive (2).TAR.XZ");
  assert.equal(numberedName("backup.tar.zst", 3), "backup (3).tar.zst");
  assert.equal(numberedName("logs.tar.bz2", 4), "logs (4).tar.bz2");
  assert.equal(numberedName("notes", 2), "notes (2)");
  assert.equal(numberedName("v1.2 release notes", 1), "v1.2 release notes (1)");
  assert.equal(numberedName("tar.gz", 1), "tar (1).gz");
  assert.equal(numberedName("😀.png", 5), "😀 (5).png");
});

Deno.test("numberedName() stays within the cap, cutting the stem", () => {
  const name = safeFileName("é".repeat(150) + ".txt"); // exactly 200 bytes
  for (const n of [1, 10, 1000, Number.MAX_SAFE_INTEGER]) {
    const numbered = numberedName(name, n);
    assert.ok(utf8Length(numbered) <= MAX_FILE_NAME_BYTES, numbered);
    assert.ok(numbered.endsWith(` (${n}).txt`), numbered);
    assert.ok(numbered.isWellFormed());
  }
  const emoji = numberedName("😀".repeat(50), 1); // 200 bytes, no extension
  assert.equal(emoji, "😀".repeat(49) + " (1)"); // 196 + 4 bytes
});

Deno.test("numberedName() refuses a number that is not a positive integer", () => {
  for (const n of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) {
    assert.throws(() => numberedName("a.txt", n), RangeError, String(n));
  }
});
