/**
 * File-level tests of the keystore: atomic writes, modes, identity checks, the allowlist and
 * known servers under the lock. Each test works in its own temporary folder.
 */
import { deepStrictEqual, ok, rejects, strictEqual } from "node:assert/strict";
import { encodePublicKey, formatIdentity } from "../lib/keys/key_text.ts";
import { parseAllowlist } from "../lib/keys/key_files.ts";
import { Keystore } from "../lib/keys/keystore.ts";
import { writeFileAtomic } from "../lib/keys/fs.ts";
import { inTempDir, modeOf } from "./helpers.ts";
import { KeystoreError } from "../lib/errors.ts";
import { keystoreHints } from "../lib/cli/output.ts";

const isPosix = Deno.build.os !== "windows";

async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  return found.sort();
}

function key(fill: number): Uint8Array {
  return new Uint8Array(32).fill(fill);
}

function isCode(code: string, message?: RegExp) {
  return (error: unknown) => {
    ok(error instanceof KeystoreError, `expected a KeystoreError, got ${error}`);
    strictEqual(error.code, code);
    if (message) ok(message.test(error.message), error.message);
    return true;
  };
}

Deno.test("writeFileAtomic() writes the exact mode and leaves no temporary file", async () => {
  await inTempDir(async (dir) => {
    const path = `${dir}/secret`;
    await writeFileAtomic(path, "one\n", 0o600);
    strictEqual(await Deno.readTextFile(path), "one\n");
    if (isPosix) strictEqual(await modeOf(path), 0o600);
    await writeFileAtomic(path, new TextEncoder().encode("two\n"), 0o644);
    strictEqual(await Deno.readTextFile(path), "two\n");
    if (isPosix) strictEqual(await modeOf(path), 0o644);
    deepStrictEqual(await names(dir), ["secret"]);
  });
});

Deno.test("writeFileAtomic() keeps the old file when the write fails", async () => {
  await inTempDir(async (dir) => {
    // Renaming a file over a non-empty folder fails after the data was written.
    await Deno.mkdir(`${dir}/target`);
    await Deno.writeTextFile(`${dir}/target/keep`, "old");
    await rejects(
      writeFileAtomic(`${dir}/target`, "new", 0o644),
      isCode("IO", /^cannot write .*target: /),
    );
    strictEqual(await Deno.readTextFile(`${dir}/target/keep`), "old");
    deepStrictEqual(await names(dir), ["target"]);
    await rejects(
      writeFileAtomic(`${dir}/missing/file`, "x", 0o644),
      (error: unknown) => {
        isCode("IO", /no such file or folder/)(error);
        const { path, os, existed } = error as KeystoreError;
        deepStrictEqual({ path, os, existed }, {
          path: `${dir}/missing/file`,
          os: "not-found",
          existed: false,
        });
        deepStrictEqual(keystoreHints(error as KeystoreError), [
          `${dir}/missing/file was not created`,
        ]);
        return true;
      },
    );
  });
});

Deno.test("createIdentity() makes a 0700 folder, a 0600 secret file and identity.pub", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(`${dir}/keys`);
    const created = await store.createIdentity();
    strictEqual(created.createdFolder, true);
    strictEqual(created.replaced, false);
    if (isPosix) {
      strictEqual(await modeOf(store.dir), 0o700);
      strictEqual(await modeOf(store.paths.identity), 0o600);
      strictEqual(await modeOf(store.paths.publicKey), 0o644);
    }
    strictEqual(await Deno.readTextFile(store.paths.identity), formatIdentity(created.pair));
    strictEqual(
      await Deno.readTextFile(store.paths.publicKey),
      encodePublicKey(created.pair.publicKey) + "\n",
    );
    deepStrictEqual(await names(store.dir), [".lock", "identity", "identity.pub"]);
    deepStrictEqual(await store.loadIdentity(), created.pair);
  });
});

Deno.test("createIdentity() refuses to replace an identity unless forced", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    const first = await store.createIdentity();
    strictEqual(first.createdFolder, false);
    await rejects(store.createIdentity(), isCode("IDENTITY_EXISTS"));
    deepStrictEqual((await store.loadIdentity()).publicKey, first.pair.publicKey);
    const second = await store.createIdentity({ force: true });
    strictEqual(second.replaced, true);
    ok(encodePublicKey(second.pair.publicKey) !== encodePublicKey(first.pair.publicKey));
    deepStrictEqual(await store.loadIdentity(), second.pair);
  });
});

Deno.test({
  name: "loadIdentity() refuses a secret file readable by others, with the chmod hint",
  ignore: !isPosix,
  fn: async () => {
    await inTempDir(async (dir) => {
      const store = new Keystore(dir);
      await store.createIdentity();
      for (const mode of [0o640, 0o604, 0o660, 0o700 | 0o044]) {
        await Deno.chmod(store.paths.identity, mode);
        await rejects(store.loadIdentity(), (error: unknown) => {
          isCode("INSECURE_MODE", /is accessible by group or others \(mode 0[0-7]{3}\)/)(error);
          strictEqual((error as KeystoreError).path, store.paths.identity);
          strictEqual((error as KeystoreError).mode, mode);
          deepStrictEqual(keystoreHints(error as KeystoreError), [
            `make it private with: chmod 600 ${store.paths.identity}`,
          ]);
          return true;
        });
      }
      await Deno.chmod(store.paths.identity, 0o400);
      await store.loadIdentity();
    });
  },
});

Deno.test("loadIdentity() checks that identity.pub matches and accepts it missing", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    const { pair } = await store.createIdentity();
    await Deno.writeTextFile(store.paths.publicKey, encodePublicKey(key(5)) + "\n");
    await rejects(store.loadIdentity(), isCode("BAD_IDENTITY", /identity\.pub holds/));
    await Deno.writeTextFile(store.paths.publicKey, "not a key\n");
    await rejects(store.loadIdentity(), isCode("BAD_IDENTITY", /does not hold a public key/));
    await Deno.remove(store.paths.publicKey);
    deepStrictEqual(await store.loadIdentity(), pair);
  });
});

Deno.test("loadIdentity() says which of folder, identity and content is wrong", async () => {
  await inTempDir(async (dir) => {
    await rejects(new Keystore(`${dir}/nope`).loadIdentity(), isCode("NO_FOLDER"));
    await Deno.writeTextFile(`${dir}/file`, "");
    await rejects(new Keystore(`${dir}/file`).loadIdentity(), isCode("NOT_A_FOLDER"));
    const store = new Keystore(dir);
    await rejects(store.loadIdentity(), isCode("NO_IDENTITY"));
    await Deno.writeTextFile(store.paths.identity, "# empty\n", { mode: 0o600 });
    await rejects(store.loadIdentity(), isCode("BAD_IDENTITY", /no secret key in the file/));
  });
});

Deno.test("allow() appends lines, keeps comments, and does not add a key twice", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    await Deno.writeTextFile(store.paths.allowed, "# team\n\n" + encodePublicKey(key(1)));
    if (isPosix) await Deno.chmod(store.paths.allowed, 0o640);
    const outcomes = await store.allow([
      { key: key(2), label: "bob" },
      { key: key(1) }, // already there: no second line (a new label would relabel it)
      { key: key(3) },
    ]);
    deepStrictEqual(outcomes.map((outcome) => outcome.added), [true, false, true]);
    strictEqual(outcomes[1].existing?.line, 3);
    strictEqual(
      await Deno.readTextFile(store.paths.allowed),
      [
        "# team",
        "",
        encodePublicKey(key(1)),
        `${encodePublicKey(key(2))} bob`,
        encodePublicKey(key(3)),
        "",
      ].join("\n"),
    );
    if (isPosix) strictEqual(await modeOf(store.paths.allowed), 0o640); // mode kept
    deepStrictEqual(await names(dir), [".lock", "allowed"]);
  });
});

Deno.test("allow() refuses a taken label and writes nothing", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    await store.allow([{ key: key(1), label: "alice" }]);
    const before = await Deno.readTextFile(store.paths.allowed);
    await rejects(
      store.allow([{ key: key(2), label: "alice" }]),
      isCode("CONFLICT", /the label "alice" is already used by [0-9a-f:]{19} \(line 1 of /),
    );
    await rejects(
      store.allow([{ key: key(3), line: 1 }, { key: key(4), label: "alice", line: 2 }], {
        source: "stdin",
      }),
      (error: unknown) => {
        isCode("CONFLICT", /1 of the keys conflict/)(error);
        deepStrictEqual((error as KeystoreError).problems.map((p) => p.line), [2]);
        strictEqual((error as KeystoreError).source, "stdin");
        return true;
      },
    );
    strictEqual(await Deno.readTextFile(store.paths.allowed), before);
  });
});

Deno.test("allow() and revoke() refuse a file with bad lines and leave it untouched", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    const text = `# list\n${encodePublicKey(key(1))} alice\nchat1broken\n`;
    await Deno.writeTextFile(store.paths.allowed, text);
    for (const attempt of [() => store.allow([{ key: key(2) }]), () => store.revoke("alice")]) {
      await rejects(attempt(), (error: unknown) => {
        isCode("BAD_FILE", /has 1 bad line; nothing was changed/)(error);
        deepStrictEqual((error as KeystoreError).problems.map((p) => p.line), [3]);
        strictEqual((error as KeystoreError).source, store.paths.allowed);
        return true;
      });
    }
    strictEqual(await Deno.readTextFile(store.paths.allowed), text);
  });
});

Deno.test("revoke() removes by label or key and keeps the other lines", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    await Deno.writeTextFile(store.paths.allowed, "# a comment\n");
    await store.allow([{ key: key(1), label: "alice" }, { key: key(2) }, { key: key(3) }]);
    strictEqual((await store.revoke("alice")).line, 2);
    deepStrictEqual((await store.revoke(key(3))).key, key(3));
    await rejects(store.revoke("alice"), isCode("NOT_FOUND", /no key is labelled "alice"/));
    await rejects(store.revoke(key(9)), isCode("NOT_FOUND", /is not allowed/));
    strictEqual(
      await Deno.readTextFile(store.paths.allowed),
      `# a comment\n${encodePublicKey(key(2))}\n`,
    );
  });
});

Deno.test("allow() holds the lock: concurrent calls in one process lose nothing", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => store.allow([{ key: key(i + 1), label: `k${i}` }])),
    );
    const list = parseAllowlist(await Deno.readTextFile(store.paths.allowed));
    strictEqual(list.entries.length, 12);
    deepStrictEqual(list.errors, []);
  });
});

Deno.test("the allowlist needs the folder but not the file", async () => {
  await inTempDir(async (dir) => {
    deepStrictEqual((await new Keystore(dir).readAllowlist()).entries, []);
    await rejects(new Keystore(`${dir}/nope`).readAllowlist(), isCode("NO_FOLDER"));
    await rejects(new Keystore(`${dir}/nope`).allow([{ key: key(1) }]), isCode("NO_FOLDER"));
  });
});

Deno.test("pinServer() and lookupServer() keep one pin per address", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    strictEqual(await store.lookupServer("example.org:7447"), undefined);
    strictEqual(await store.pinServer("Example.org:7447", key(1)), undefined);
    deepStrictEqual(await store.lookupServer("example.org:7447"), key(1));
    deepStrictEqual(await store.pinServer("example.org:7447", key(1)), key(1));
    await store.pinServer("[::1]:7447", key(2));
    // a first contact only adds: another key pinned is returned and kept
    deepStrictEqual(await store.pinServer("example.org:7447", key(3)), key(1));
    deepStrictEqual(await store.lookupServer("example.org:7447"), key(1));
    // an explicit key replaces the pin
    deepStrictEqual(await store.pinServer("example.org:7447", key(3), { replace: true }), key(1));
    strictEqual(
      await Deno.readTextFile(store.paths.knownServers),
      `example.org:7447 ${encodePublicKey(key(3))}\n[::1]:7447 ${encodePublicKey(key(2))}\n`,
    );
  });
});

Deno.test("lookupServer() refuses a known_servers file with bad lines", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    await Deno.writeTextFile(store.paths.knownServers, "example.org:7447 chat1damaged\n");
    await rejects(store.lookupServer("example.org:7447"), isCode("BAD_FILE"));
    await rejects(store.pinServer("example.org:7447", key(1)), isCode("BAD_FILE"));
    strictEqual(
      await Deno.readTextFile(store.paths.knownServers),
      "example.org:7447 chat1damaged\n",
    );
  });
});

Deno.test("pinServer() pins a name and its IP address in one write, or neither", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    await store.pinServer("127.1:7447", key(1));
    const before = await Deno.readTextFile(store.paths.knownServers);
    // the IP address is pinned with another key: nothing is written for the name
    deepStrictEqual(await store.pinServer(["localhost:7447", "127.0.0.1:7447"], key(2)), key(1));
    strictEqual(await Deno.readTextFile(store.paths.knownServers), before);
    deepStrictEqual(await store.pinServer(["localhost:7447", "127.0.0.1:7447"], key(1)), key(1));
    deepStrictEqual(await store.lookupServer("LOCALHOST:7447"), key(1));
    await store.pinServer(["localhost:7447", "127.0.0.1:7447"], key(2), { replace: true });
    strictEqual(
      await Deno.readTextFile(store.paths.knownServers),
      `127.0.0.1:7447 ${encodePublicKey(key(2))}\nlocalhost:7447 ${encodePublicKey(key(2))}\n`,
    );
  });
});

Deno.test("allow(), revoke() and pinServer() refuse a key that is not 32 bytes, writing nothing", async () => {
  await inTempDir(async (dir) => {
    const store = new Keystore(dir);
    await rejects(store.allow([{ key: key(1) }, { key: new Uint8Array(31) }]), {
      name: "RangeError",
      message: "key to allow must be 32 bytes, got 31",
    });
    await rejects(store.revoke(new Uint8Array(33)), {
      name: "RangeError",
      message: "key to revoke must be 32 bytes, got 33",
    });
    await rejects(store.pinServer("example.org:7447", new Uint8Array(0)), {
      name: "RangeError",
      message: "server key must be 32 bytes, got 0",
    });
    deepStrictEqual(await names(dir), []);
  });
});
