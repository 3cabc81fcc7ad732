/**
 * The keys folder as an attacker on the same machine sees it (issues 5 and 6): a folder or file
 * that someone else owns or can write, symbolic links where files belong, a temporary file
 * swapped for a link while it is written, and the umask. Real files in temporary folders, and the
 * real program for what a user meets.
 */
import { deepStrictEqual, match, ok, rejects, strictEqual } from "node:assert/strict";
import { join } from "node:path";
import { encodePublicKey } from "../lib/keys/key_text.ts";
import { Keystore } from "../lib/keys/keystore.ts";
import { inTempDir, modeOf } from "./helpers.ts";
import { CHAT_RUN_FLAGS, ChatProcess, Sandbox } from "./process.ts";
import { fileURLToPath } from "node:url";
import { primitives } from "../lib/protocol/crypto.ts";
import { KeystoreError } from "../lib/errors.ts";
import { keystoreHints } from "../lib/cli/output.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));
const isPosix = Deno.build.os !== "windows";
/** Our user id: the owner of a file we create (Deno.uid() needs --allow-sys, which tests lack). */
async function ownUid(): Promise<number | null> {
  const probe = await Deno.makeTempFile();
  try {
    return (await Deno.stat(probe)).uid;
  } finally {
    await Deno.remove(probe);
  }
}
const isRoot = isPosix && await ownUid() === 0;
/** A user id that is not ours (nobody). */
const OTHER_UID = 65534;

function isUnsafe(message: RegExp, hint?: RegExp) {
  return (error: unknown) => {
    ok(error instanceof KeystoreError, `expected a KeystoreError, got ${error}`);
    strictEqual(error.code, "UNSAFE", error.message);
    match(error.message, message);
    const hints = keystoreHints(error);
    if (hint) ok(hints.some((h) => hint.test(h)), hints.join("\n"));
    return true;
  };
}

function newKey(): Uint8Array {
  return primitives.generateKeyPair().publicKey;
}

/** A keystore with an identity, an allowlist and a pin, in a fresh folder. */
async function fullStore(dir: string): Promise<Keystore> {
  const store = new Keystore(join(dir, "keys"));
  await store.createIdentity();
  await store.allow([{ key: newKey(), label: "alice" }]);
  await store.pinServer("example.org:7447", newKey());
  return store;
}

/** What reads each file of the folder. */
const READERS: [keyof Keystore["paths"], (store: Keystore) => Promise<unknown>][] = [
  ["identity", (store) => store.loadIdentity()],
  ["publicKey", (store) => store.loadIdentity()],
  ["allowed", (store) => store.readAllowlistText()],
  ["knownServers", (store) => store.lookupServer("example.org:7447")],
  ["lock", (store) => store.allow([{ key: newKey() }])],
];

Deno.test({
  name: "chat serve refuses a keys folder anyone can write, and says the chmod that fixes it",
  ignore: !isPosix,
  fn: () =>
    Sandbox.run(async (s) => {
      await s.keygen("srv");
      // someone else replaces the allowlist with their own key, labelled ops
      await Deno.chmod(join(s.dir, "srv"), 0o777);
      await Deno.writeTextFile(join(s.dir, "srv", "allowed"), `${encodePublicKey(newKey())} ops\n`);
      const served = await s.run(["--keys", "srv", "serve", "--port", "0"]);
      strictEqual(served.code, 1, served.stderr);
      match(
        served.stderr,
        /^chat: error: the keys folder srv is writable by group or others \(mode 0777\)/m,
      );
      match(served.stderr, /^chat: hint: make it private with: chmod 700 srv$/m);

      await Deno.chmod(join(s.dir, "srv"), 0o700);
      await Deno.chmod(join(s.dir, "srv", "allowed"), 0o666);
      const listed = await s.run(["--keys", "srv", "allowed"]);
      strictEqual(listed.code, 1, listed.stderr);
      match(
        listed.stderr,
        /^chat: error: srv\/allowed is writable by group or others \(mode 0666\)/m,
      );
      match(listed.stderr, /^chat: hint: .*chmod go-w srv\/allowed$/m);
      strictEqual(listed.stdout, "");
    }),
});

Deno.test({
  name: "every file chat reads in the keys folder is refused when group or others can write it",
  ignore: !isPosix,
  fn: () =>
    inTempDir(async (dir) => {
      const store = await fullStore(dir);
      await store.withLock(() => Promise.resolve());
      for (const [name, read] of READERS) {
        const path = store.paths[name];
        const mode = await modeOf(path);
        await Deno.chmod(path, 0o620); // group-writable: the secret check alone misses none
        await rejects(
          read(store),
          name === "identity"
            ? (error) => error instanceof KeystoreError && error.code === "INSECURE_MODE"
            : isUnsafe(/is writable by group or others \(mode 0620\)/, /chmod go-w /),
          name,
        );
        await Deno.chmod(path, 0o602);
        await rejects(read(store), KeystoreError, name);
        await Deno.chmod(path, mode);
        await read(store);
      }
    }),
});

Deno.test({
  name: "a keys folder or file owned by another user is refused (as root: chown 65534)",
  ignore: !isRoot,
  fn: () =>
    inTempDir(async (dir) => {
      const store = await fullStore(dir);
      await store.withLock(() => Promise.resolve());
      await Deno.chown(store.dir, OTHER_UID, OTHER_UID);
      await rejects(
        store.loadIdentity(),
        isUnsafe(
          new RegExp(`^the keys folder .*keys belongs to user ${OTHER_UID}, not to you`),
          /chown/,
        ),
      );
      await rejects(store.readAllowlistText(), isUnsafe(/belongs to user 65534/));
      await Deno.chown(store.dir, 0, 0);
      for (const [name, read] of READERS) {
        const path = store.paths[name];
        await Deno.chown(path, OTHER_UID, OTHER_UID);
        await rejects(read(store), isUnsafe(/belongs to user 65534, not to you/, /chown/), name);
        await Deno.chown(path, 0, 0);
        await read(store);
      }
    }),
});

Deno.test("a symbolic link in place of a keys file is refused, and its target left alone", () =>
  inTempDir(async (dir) => {
    const store = await fullStore(dir);
    await store.withLock(() => Promise.resolve());
    for (const [name, read] of READERS) {
      const path = store.paths[name];
      const copy = join(dir, `outside-${name}`);
      await Deno.rename(path, copy);
      await Deno.symlink(copy, path);
      const before = await Deno.readFile(copy);
      // a copy of what it points to replaces a link, but .lock is empty: removed, never copied
      const hint = name === "lock" ? /^remove the link .*: rm \S+$/ : /: cp .* && mv /;
      await rejects(read(store), isUnsafe(/is a symbolic link/, hint), name);
      deepStrictEqual(await Deno.readFile(copy), before, name);
      await Deno.remove(path);
      await Deno.rename(copy, path);
      await read(store);
    }
  }));

Deno.test("a .lock link to a missing file is refused without creating that file", () =>
  inTempDir(async (dir) => {
    const store = new Keystore(join(dir, "keys"));
    await store.createIdentity();
    await Deno.remove(store.paths.lock);
    const victim = join(dir, "victim");
    await Deno.symlink(victim, store.paths.lock);
    await rejects(
      store.allow([{ key: newKey() }]),
      isUnsafe(/\.lock is a symbolic link/, /^remove the link .*: rm \S+\.lock$/),
    );
    await rejects(Deno.lstat(victim), Deno.errors.NotFound);
  }));

Deno.test({
  name: "a temporary file swapped for a link while written never changes the mode of its target",
  ignore: !isPosix,
  fn: () =>
    inTempDir(async (dir) => {
      const store = new Keystore(join(dir, "keys"));
      await store.createIdentity();
      const victim = join(dir, "victim");
      await Deno.writeTextFile(victim, "private\n", { mode: 0o600 });
      const open = Deno.open;
      // an attacker swaps the temporary file for a link right after chat opened it
      Deno.open = async (path, options) => {
        const file = await open(path, options);
        if (String(path).endsWith(".tmp")) {
          await Deno.remove(path);
          await Deno.symlink(victim, path);
        }
        return file;
      };
      try {
        await store.allow([{ key: newKey() }]).catch(() => {});
      } finally {
        Deno.open = open;
      }
      strictEqual(await modeOf(victim), 0o600);
      strictEqual(await Deno.readTextFile(victim), "private\n");
    }),
});

Deno.test({
  name: "chat under umask 077 creates keys files no wider than it gives, the secret 0600",
  ignore: !isPosix,
  fn: () =>
    inTempDir(async (dir) => {
      // the real program in a shell that sets the umask first (Deno.umask needs --allow-sys)
      const run = async (...args: string[]) => {
        const chat = new ChatProcess(
          [
            "-c",
            'umask 077 && exec "$0" run "$@"',
            Deno.execPath(),
            ...CHAT_RUN_FLAGS,
            MAIN,
            ...args,
          ],
          { cwd: dir, executable: "sh" },
        );
        await chat.closeStdin();
        strictEqual(await chat.exitCode(), 0, chat.stderr.join("\n"));
      };
      await run("--keys", "keys", "keygen");
      await run("--keys", "keys", "allow", encodePublicKey(newKey()));
      strictEqual(await modeOf(join(dir, "keys")), 0o700);
      for (const name of ["identity", "identity.pub", "allowed", ".lock"]) {
        strictEqual(await modeOf(join(dir, "keys", name)), 0o600, name);
      }
      // an update keeps the file's mode, whatever the umask
      await Deno.chmod(join(dir, "keys", "allowed"), 0o640);
      const store = new Keystore(join(dir, "keys"));
      await store.allow([{ key: newKey() }]);
      strictEqual(await modeOf(store.paths.allowed), 0o640);
    }),
});
