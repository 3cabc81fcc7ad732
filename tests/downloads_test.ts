/**
 * The downloads folder (lib/chat/downloads.ts) on real files in a temporary folder: receiving,
 * resuming, verifying, never overwriting, and refusing links planted where chat writes.
 * @module
 */
import { join } from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import {
  DownloadFolder,
  type IncomingFile,
  partFileName,
  type PartialDownload,
} from "../lib/chat/downloads.ts";
import { FileHashError, UnsafePathError } from "../lib/errors.ts";
import { assert, assertRejects } from "./helpers.ts";

const SENDER = "3f9a:12bc:0d4e:77a1";
const UNIX = Deno.build.os !== "windows";

function randomBytes(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
}

function offer(name: string, content: Uint8Array, sender = SENDER): IncomingFile {
  return { name, size: content.length, sha256: sha256(content), sender };
}

/** Runs `body` with a fresh temporary folder and its `downloads` subfolder (not yet made). */
async function withFolder(body: (dir: string, downloads: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "chat-downloads-" });
  try {
    await body(dir, join(dir, "downloads"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function entries(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((entry) => entry.name).sort();
}

Deno.test("partFileName() is hidden, per sender, content and name, and under 255 bytes", () => {
  const content = new TextEncoder().encode("hello");
  const part = partFileName(offer("../report.pdf", content));
  assert.equal(part, `.report.pdf.3f9a12bc0d4e77a1-${"2cf24dba5fb0a30e"}.part`);
  assert.notEqual(part, partFileName(offer("report.pdf", content, "3f9a:12bc:0d4e:77a2")));
  assert.notEqual(part, partFileName(offer("report.pdf", new TextEncoder().encode("hellO"))));
  assert.notEqual(part, partFileName(offer("other.pdf", content)));
  assert.equal(part, partFileName(offer("report.pdf", content, "3F9A12BC0D4E77A1")));
  const longest = partFileName(offer("é".repeat(300) + ".txt", content));
  assert.equal(new TextEncoder().encode(longest).length, 240);
});

Deno.test("partFileName() refuses a bad size, hash or sender", () => {
  const good = offer("a", new Uint8Array(1));
  assert.throws(() => partFileName({ ...good, size: -1 }), RangeError);
  assert.throws(() => partFileName({ ...good, size: 1.5 }), RangeError);
  assert.throws(() => partFileName({ ...good, size: 2 ** 53 }), RangeError);
  assert.throws(() => partFileName({ ...good, sha256: new Uint8Array(31) }), RangeError);
  assert.throws(() => partFileName({ ...good, sender: "../../x" }), SyntaxError);
  assert.throws(() => partFileName({ ...good, sender: "3f9a:12bc:0d4e" }), SyntaxError);
});

Deno.test("a new download written in 3 pieces is finished under its name", async () => {
  await withFolder(async (_, downloads) => {
    const content = randomBytes(3000);
    const part = await new DownloadFolder(downloads).open(offer("../notes.txt", content));
    assert.equal(part.received, 0);
    assert.equal(part.partPath, join(downloads, partFileName(offer("notes.txt", content))));
    await part.write(0, content.subarray(0, 1000));
    await part.write(1000, content.subarray(1000, 1001));
    await part.write(1001, content.subarray(1001));
    assert.equal(part.received, 3000);
    const path = await part.finish();
    assert.equal(path, join(downloads, "notes.txt"));
    assert.deepEqual(await Deno.readFile(path), content);
    assert.deepEqual(await entries(downloads), ["notes.txt"]);
    if (UNIX) {
      assert.equal((await Deno.stat(downloads)).mode! & 0o777, 0o700);
      assert.equal((await Deno.stat(path)).mode! & 0o077, 0);
    }
    await assertRejects(() => part.write(3000, new Uint8Array(0)), Deno.errors.BadResource);
  });
});

Deno.test("a download closed half way resumes from the part, and finish() checks all of it", async () => {
  await withFolder(async (_, downloads) => {
    const folder = new DownloadFolder(downloads);
    const content = randomBytes(3 * 1024 * 1024 + 17); // more than one 1 MiB hashing read
    const half = 1024 * 1024 + 5;
    const first = await folder.open(offer("big.bin", content));
    await first.write(0, content.subarray(0, half));
    first.close();
    assert.equal((await Deno.stat(first.partPath)).size, half);
    const second = await folder.open(offer("big.bin", content));
    assert.equal(second.received, half);
    await assertRejects(() => second.write(0, content.subarray(0, 10)), RangeError, /offset 0/);
    await second.write(half, content.subarray(half));
    const path = await second.finish();
    assert.deepEqual(await Deno.readFile(path), content);
    assert.deepEqual(await entries(downloads), ["big.bin"]);
  });
});

Deno.test("a download flushed as it arrives: closed mid-flush it resumes, and finishes byte-identical", async () => {
  await withFolder(async (_, downloads) => {
    const folder = new DownloadFolder(downloads);
    // past two FLUSH_AHEAD_BYTES (16 MiB) marks, so background syncs start on both opens
    const content = randomBytes(40 * 1024 * 1024 + 3);
    const writeIn64KiB = async (part: PartialDownload, end: number) => {
      for (let offset = part.received; offset < end; offset += 65536) {
        await part.write(offset, content.subarray(offset, Math.min(end, offset + 65536)));
      }
    };
    const first = await folder.open(offer("flushed.bin", content));
    await writeIn64KiB(first, 17 * 1024 * 1024);
    first.close(); // the sync started at 16 MiB may still be running: it must not matter
    const second = await folder.open(offer("flushed.bin", content));
    assert.equal(second.received, 17 * 1024 * 1024);
    await writeIn64KiB(second, content.length);
    const path = await second.finish();
    assert.deepEqual(await Deno.readFile(path), content);
    assert.deepEqual(await entries(downloads), ["flushed.bin"]);
  });
});

Deno.test("resumed bytes that differ from the offer fail the hash: the part is removed", async () => {
  await withFolder(async (_, downloads) => {
    const folder = new DownloadFolder(downloads);
    const content = randomBytes(1000);
    const first = await folder.open(offer("a.bin", content));
    const wrong = content.slice(0, 500);
    wrong[7] ^= 1;
    await first.write(0, wrong);
    first.close();
    const second = await folder.open(offer("a.bin", content));
    await second.write(500, content.subarray(500));
    await assertRejects(() => second.finish(), FileHashError);
    assert.deepEqual(await entries(downloads), []);
  });
});

Deno.test("finish() with the wrong hash removes the part and throws FILE_HASH", async () => {
  await withFolder(async (_, downloads) => {
    const content = randomBytes(100);
    const file = { ...offer("a.txt", content), sha256: sha256(randomBytes(100)) };
    const part = await new DownloadFolder(downloads).open(file);
    await part.write(0, content);
    const error = await assertRejects(() => part.finish(), FileHashError) as FileHashError;
    assert.equal(error.code, "FILE_HASH");
    assert.equal(error.path, part.partPath);
    assert.deepEqual(error.expected, file.sha256);
    assert.deepEqual(error.actual, sha256(content));
    assert.deepEqual(await entries(downloads), []);
  });
});

Deno.test("finish() before the last byte is a RangeError and keeps the part", async () => {
  await withFolder(async (_, downloads) => {
    const content = randomBytes(100);
    const part = await new DownloadFolder(downloads).open(offer("a.txt", content));
    await part.write(0, content.subarray(0, 99));
    await assertRejects(() => part.finish(), RangeError, /99 of its 100 bytes/);
    await part.write(99, content.subarray(99));
    assert.equal(await part.finish(), join(downloads, "a.txt"));
  });
});

Deno.test("finish() never overwrites: a.txt, then a (1).txt, then a (2).txt", async () => {
  await withFolder(async (_, downloads) => {
    await Deno.mkdir(downloads);
    await Deno.writeTextFile(join(downloads, "a.txt"), "mine");
    const folder = new DownloadFolder(downloads);
    for (const [text, expected] of [["one", "a (1).txt"], ["two", "a (2).txt"]]) {
      const content = new TextEncoder().encode(text);
      const part = await folder.open(offer("a.txt", content));
      await part.write(0, content);
      assert.equal(await part.finish(), join(downloads, expected));
      assert.equal(await Deno.readTextFile(join(downloads, expected)), text);
    }
    assert.equal(await Deno.readTextFile(join(downloads, "a.txt")), "mine");
    assert.deepEqual(await entries(downloads), ["a (1).txt", "a (2).txt", "a.txt"]);
  });
});

Deno.test("finish() never follows or replaces a link at the final name", async () => {
  await withFolder(async (dir, downloads) => {
    await Deno.mkdir(downloads);
    const target = join(dir, "target");
    await Deno.writeTextFile(target, "untouched");
    await Deno.symlink(target, join(downloads, "a.txt"));
    await Deno.symlink(join(dir, "nowhere"), join(downloads, "a (1).txt"));
    const content = new TextEncoder().encode("new");
    const part = await new DownloadFolder(downloads).open(offer("a.txt", content));
    await part.write(0, content);
    assert.equal(await part.finish(), join(downloads, "a (2).txt"));
    assert.equal(await Deno.readTextFile(target), "untouched");
    assert.equal(await Deno.lstat(join(dir, "nowhere")).catch(() => "missing"), "missing");
  });
});

Deno.test("write() at a wrong offset or beyond the size is a RangeError", async () => {
  await withFolder(async (_, downloads) => {
    const content = randomBytes(10);
    const part = await new DownloadFolder(downloads).open(offer("a.bin", content));
    await assertRejects(() => part.write(1, content.subarray(1)), RangeError, /offset 1/);
    await assertRejects(() => part.write(-1, content), RangeError);
    await assertRejects(() => part.write(0, randomBytes(11)), RangeError, /run past the end/);
    await part.write(0, content.subarray(0, 4));
    await assertRejects(() => part.write(0, content.subarray(4)), RangeError);
    await assertRejects(() => part.write(5, content.subarray(4)), RangeError);
    await assertRejects(() => part.write(4, randomBytes(7)), RangeError);
    assert.equal(part.received, 4);
    await part.write(4, content.subarray(4));
    assert.deepEqual(await Deno.readFile(await part.finish()), content);
  });
});

Deno.test("a symlink planted at the part path is refused and its target untouched", async () => {
  await withFolder(async (dir, downloads) => {
    await Deno.mkdir(downloads);
    const content = randomBytes(64);
    const file = offer("a.txt", content);
    const target = join(dir, "victim");
    await Deno.writeTextFile(target, "precious, and longer than the offered size ".repeat(10));
    const before = await Deno.readFile(target);
    await Deno.symlink(target, join(downloads, partFileName(file)));
    const error = await assertRejects(
      () => new DownloadFolder(downloads).open(file),
      UnsafePathError,
      /symbolic link/,
    ) as UnsafePathError;
    assert.equal(error.code, "UNSAFE_PATH");
    assert.equal(error.reason, "symlink");
    assert.deepEqual(await Deno.readFile(target), before);
    // a dangling link must not be followed to create its target either
    await Deno.remove(join(downloads, partFileName(file)));
    const nowhere = join(dir, "nowhere");
    await Deno.symlink(nowhere, join(downloads, partFileName(file)));
    await assertRejects(() => new DownloadFolder(downloads).open(file), UnsafePathError);
    assert.equal(await Deno.lstat(nowhere).catch(() => "missing"), "missing");
  });
});

Deno.test("a folder at the part path is refused", async () => {
  await withFolder(async (_, downloads) => {
    const file = offer("a.txt", randomBytes(3));
    await Deno.mkdir(join(downloads, partFileName(file)), { recursive: true });
    const error = await assertRejects(
      () => new DownloadFolder(downloads).open(file),
      UnsafePathError,
      /not a plain file/,
    ) as UnsafePathError;
    assert.equal(error.reason, "not-a-file");
  });
});

Deno.test("a part hard-linked to another file is dropped, and the other file untouched", async () => {
  await withFolder(async (dir, downloads) => {
    await Deno.mkdir(downloads);
    const content = randomBytes(5);
    const file = offer("a.txt", content);
    const other = join(dir, "other");
    await Deno.writeTextFile(other, "a longer file, that truncation or appending would harm");
    const before = await Deno.readFile(other);
    await Deno.link(other, join(downloads, partFileName(file)));
    const part = await new DownloadFolder(downloads).open(file);
    assert.equal(part.received, 0);
    await part.write(0, content);
    assert.deepEqual(await Deno.readFile(await part.finish()), content);
    assert.deepEqual(await Deno.readFile(other), before);
  });
});

Deno.test("a downloads folder that is a symlink is refused, naming the path", async () => {
  await withFolder(async (dir, downloads) => {
    const real = join(dir, "real");
    await Deno.mkdir(real);
    await Deno.symlink(real, downloads);
    const error = await assertRejects(
      () => new DownloadFolder(downloads).open(offer("a.txt", randomBytes(1))),
      UnsafePathError,
    ) as UnsafePathError;
    assert.equal(error.reason, "symlink");
    assert.ok(error.message.includes(downloads), error.message);
    assert.deepEqual(await entries(real), []);
    await Deno.remove(downloads);
    await Deno.symlink(join(dir, "nowhere"), downloads);
    await assertRejects(
      () => new DownloadFolder(downloads).open(offer("a.txt", randomBytes(1))),
      UnsafePathError,
    );
    await Deno.remove(downloads);
    await Deno.writeTextFile(downloads, "a file");
    const notFolder = await assertRejects(
      () => new DownloadFolder(downloads).open(offer("a.txt", randomBytes(1))),
      UnsafePathError,
    ) as UnsafePathError;
    assert.equal(notFolder.reason, "not-a-folder");
  });
});

Deno.test("a part longer than the offered size is restarted from zero", async () => {
  await withFolder(async (_, downloads) => {
    await Deno.mkdir(downloads);
    const content = randomBytes(100);
    const file = offer("a.bin", content);
    await Deno.writeFile(join(downloads, partFileName(file)), randomBytes(150));
    const part = await new DownloadFolder(downloads).open(file);
    assert.equal(part.received, 0);
    assert.equal((await Deno.stat(part.partPath)).size, 0);
    await part.write(0, content);
    assert.deepEqual(await Deno.readFile(await part.finish()), content);
  });
});

Deno.test("a zero-byte file is received and finished", async () => {
  await withFolder(async (_, downloads) => {
    const empty = new Uint8Array(0);
    const part = await new DownloadFolder(downloads).open(offer("empty", empty));
    assert.equal(part.received, 0);
    await assertRejects(() => part.write(0, new Uint8Array(1)), RangeError);
    await part.write(0, empty);
    const path = await part.finish();
    assert.equal(path, join(downloads, "empty"));
    assert.equal((await Deno.stat(path)).size, 0);
    assert.deepEqual(await entries(downloads), ["empty"]);
  });
});

Deno.test("discard() removes the part; close() keeps it", async () => {
  await withFolder(async (_, downloads) => {
    const folder = new DownloadFolder(downloads);
    const content = randomBytes(10);
    const part = await folder.open(offer("a.bin", content));
    await part.write(0, content.subarray(0, 3));
    part.close();
    part.close(); // twice is harmless
    assert.equal((await Deno.stat(part.partPath)).size, 3);
    const again = await folder.open(offer("a.bin", content));
    assert.equal(again.received, 3);
    await again.discard();
    assert.deepEqual(await entries(downloads), []);
    const fresh = await folder.open(offer("a.bin", content));
    assert.equal(fresh.received, 0);
    fresh.close();
  });
});

Deno.test("one part cannot be open twice at once", async () => {
  await withFolder(async (_, downloads) => {
    const folder = new DownloadFolder(downloads);
    const file = offer("a.bin", randomBytes(10));
    const first = await folder.open(file);
    await assertRejects(() => folder.open(file), Deno.errors.Busy);
    first.close();
    (await folder.open(file)).close();
  });
});

Deno.test("where hard links are unsupported, finish() still never overwrites", async () => {
  const link = Deno.link;
  // as on FAT: link(2) fails with EPERM
  Object.defineProperty(Deno, "link", {
    value: () => Promise.reject(new Deno.errors.PermissionDenied("Operation not permitted")),
    configurable: true,
    writable: true,
  });
  try {
    await withFolder(async (dir, downloads) => {
      await Deno.mkdir(downloads);
      await Deno.writeTextFile(join(downloads, "a.txt"), "mine");
      await Deno.symlink(join(dir, "nowhere"), join(downloads, "a (1).txt"));
      const content = new TextEncoder().encode("theirs");
      const part = await new DownloadFolder(downloads).open(offer("a.txt", content));
      await part.write(0, content);
      assert.equal(await part.finish(), join(downloads, "a (2).txt"));
      assert.equal(await Deno.readTextFile(join(downloads, "a.txt")), "mine");
      assert.equal(await Deno.readTextFile(join(downloads, "a (2).txt")), "theirs");
      assert.equal(await Deno.lstat(join(dir, "nowhere")).catch(() => "missing"), "missing");
      assert.deepEqual(await entries(downloads), ["a (1).txt", "a (2).txt", "a.txt"]);
    });
  } finally {
    Object.defineProperty(Deno, "link", { value: link, configurable: true, writable: true });
  }
});

Deno.test({
  name: "a part that group or others may read is restarted: the received file is always 0600",
  ignore: !UNIX,
  fn: () =>
    withFolder(async (_dir, downloads) => {
      const content = randomBytes(1000);
      const file = offer("loose.txt", content);
      await Deno.mkdir(downloads, { mode: 0o700 });
      const part = join(downloads, partFileName(file));
      await Deno.writeFile(part, content.subarray(0, 500));
      await Deno.chmod(part, 0o666); // planted, or left by a careless tool
      const download = await new DownloadFolder(downloads).open(file);
      assert.equal(download.received, 0);
      await download.write(0, content);
      const path = await download.finish();
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    }),
});

Deno.test({
  name: "a downloads folder that group or others may write is refused, naming the fix",
  ignore: !UNIX,
  fn: () =>
    withFolder(async (_dir, downloads) => {
      await Deno.mkdir(downloads);
      await Deno.chmod(downloads, 0o777);
      await assertRejects(
        () => new DownloadFolder(downloads).open(offer("a.txt", new Uint8Array(1))),
        UnsafePathError,
        /writable by group or others \(chmod 700 /,
      );
      assert.deepEqual(await entries(downloads), []);
    }),
});
