/**
 * The real program: spawns `main.ts` with the permissions of the `chat` task in a temporary
 * folder and checks stdout, stderr, exit codes and the files left behind.
 */
import { fileURLToPath } from "node:url";
import { deepStrictEqual, match, ok, rejects, strictEqual, throws } from "node:assert/strict";
import { defaultKeysDir, resolveKeysDir } from "../lib/cli/context.ts";
import { primitives } from "../lib/protocol/crypto.ts";
import { inTempDir, modeOf } from "./helpers.ts";
import { encodePublicKey, encodePublicKeyBase64, fingerprint } from "../lib/keys/key_text.ts";
import { parseAllowlist } from "../lib/keys/key_files.ts";
import { CHAT_RUN_FLAGS } from "../scripts/permissions.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url)); // a path on Windows too
const PERMISSIONS = CHAT_RUN_FLAGS;
const KEY_LINE = /^chat1[02-9ac-hj-np-z]{58}\n$/;
const isPosix = Deno.build.os !== "windows";

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `chat ARGS` in `cwd` with a clean environment and `CHAT_KEYS=keys` (the folder in `cwd`)
 * unless `options.env` says otherwise: the default folder is not the current directory's.
 */
async function chat(
  cwd: string,
  args: string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<Result> {
  const env: Record<string, string> = { NO_COLOR: "1", CHAT_KEYS: "keys" };
  for (const name of ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "NPM_CONFIG_REGISTRY"]) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMISSIONS, MAIN, ...args],
    cwd,
    env: { ...env, ...options.env },
    clearEnv: true,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  const result = {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
  // Every stderr line is one of ours: no stack trace, no stray output.
  for (const line of result.stderr.split("\n").filter((line) => line !== "")) {
    ok(line.startsWith("chat: ") || args.length === 0, `stray stderr line: ${line}`);
  }
  return result;
}

function describe(result: Result): string {
  return `exit ${result.code}\n--- stdout\n${result.stdout}--- stderr\n${result.stderr}`;
}

function expect(result: Result, code: number, stderr?: RegExp, stdout?: string | RegExp): void {
  strictEqual(result.code, code, describe(result));
  if (stderr) match(result.stderr, stderr, describe(result));
  if (typeof stdout === "string") strictEqual(result.stdout, stdout, describe(result));
  else if (stdout) match(result.stdout, stdout, describe(result));
}

async function readOrUndefined(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

function newKey(): Uint8Array {
  return primitives.generateKeyPair().publicKey;
}

Deno.test("chat keygen writes the key to stdout, the paths to stderr, with safe modes", async () => {
  await inTempDir(async (dir) => {
    const result = await chat(dir, ["keygen"]);
    expect(result, 0, /wrote the secret key to keys\/identity \(mode 0600\)/, KEY_LINE);
    match(result.stderr, /created the keys folder keys \(mode 0700\)/);
    match(result.stderr, /wrote the public key to keys\/identity\.pub/);
    ok(!result.stderr.includes("CHAT-SECRET-KEY"), "the secret key must not be printed");
    strictEqual(await Deno.readTextFile(`${dir}/keys/identity.pub`), result.stdout);
    match(await Deno.readTextFile(`${dir}/keys/identity`), /^# chat secret key: keep private\n/);
    if (isPosix) {
      strictEqual(await modeOf(`${dir}/keys`), 0o700);
      strictEqual(await modeOf(`${dir}/keys/identity`), 0o600);
    }
    const files = [];
    for await (const entry of Deno.readDir(`${dir}/keys`)) files.push(entry.name);
    deepStrictEqual(files.sort(), [".lock", "identity", "identity.pub"]);
    expect(await chat(dir, ["pubkey"]), 0, undefined, result.stdout);
  });
});

Deno.test("chat keygen twice keeps the same key; --force replaces it", async () => {
  await inTempDir(async (dir) => {
    const first = await chat(dir, ["keygen"]);
    expect(first, 0, undefined, KEY_LINE);
    const identity = await Deno.readTextFile(`${dir}/keys/identity`);
    const second = await chat(dir, ["keygen"]);
    expect(second, 1, /chat: error: there is already an identity in keys\n/, "");
    match(second.stderr, /chat: hint: .*chat keygen --force/);
    strictEqual(await Deno.readTextFile(`${dir}/keys/identity`), identity);
    expect(await chat(dir, ["pubkey"]), 0, undefined, first.stdout);

    const forced = await chat(dir, ["keygen", "--force"]);
    expect(forced, 0, /chat: warning: the old identity is gone/, KEY_LINE);
    ok(forced.stdout !== first.stdout, "--force must make a new key");
    expect(await chat(dir, ["pubkey"]), 0, undefined, forced.stdout);
    strictEqual(await Deno.readTextFile(`${dir}/keys/identity.pub`), forced.stdout);
    if (isPosix) strictEqual(await modeOf(`${dir}/keys/identity`), 0o600);
  });
});

Deno.test("chat pubkey without an identity says so and names chat keygen", async () => {
  await inTempDir(async (dir) => {
    const noFolder = await chat(dir, ["pubkey"]);
    expect(noFolder, 1, /chat: error: the keys folder keys does not exist\n/, "");
    match(noFolder.stderr, /chat: hint: create it and your identity with: chat keygen\n/);
    match(noFolder.stderr, /--keys DIR or CHAT_KEYS=DIR/);
    await Deno.mkdir(`${dir}/keys`);
    const noIdentity = await chat(dir, ["pubkey"]);
    expect(noIdentity, 1, /chat: error: there is no identity in keys\n/, "");
    match(noIdentity.stderr, /chat: hint: create one with: chat keygen\n/);
  });
});

Deno.test("--keys wins over CHAT_KEYS, which wins over the default folder", async () => {
  await inTempDir(async (dir) => {
    const fromEnv = await chat(dir, ["keygen"], { env: { CHAT_KEYS: "env-keys" } });
    expect(fromEnv, 0, /env-keys\/identity/, KEY_LINE);
    const fromFlag = await chat(dir, ["--keys", "flag-keys", "keygen"], {
      env: { CHAT_KEYS: "env-keys" },
    });
    expect(fromFlag, 0, /flag-keys\/identity/, KEY_LINE);
    // the global option may also follow the command
    expect(await chat(dir, ["pubkey", "--keys", "flag-keys"]), 0, undefined, fromFlag.stdout);
    expect(
      await chat(dir, ["pubkey"], { env: { CHAT_KEYS: "env-keys" } }),
      0,
      undefined,
      fromEnv.stdout,
    );
    expect(await chat(dir, ["pubkey"], { env: { CHAT_KEYS: "keys" } }), 1, /folder keys does not/);
    expect(await chat(dir, ["--keys", "", "pubkey"]), 2, /chat: error: --keys needs a folder/);
  });
});

Deno.test("without --keys or CHAT_KEYS, chat does not use ./keys of the folder it is run in", async () => {
  await inTempDir(async (dir) => {
    const mine = (await chat(dir, ["keygen"], { env: { CHAT_KEYS: "keys" } })).stdout;
    const result = await chat(dir, ["pubkey"], { env: { CHAT_KEYS: "" } });
    ok(result.stdout !== mine, "the identity in ./keys was used");
    const repositoryKeys = fileURLToPath(new URL("../keys", import.meta.url));
    if (result.code !== 0) match(result.stderr, new RegExp(escape(repositoryKeys)));
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

Deno.test("defaultKeysDir(): the repository's keys/ from source, a per-user folder compiled", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  const source = "file:///src/chat/lib/cli/context.ts";
  const linux = { standalone: false, moduleUrl: source, os: "linux", env: env({}) };
  if (isPosix) strictEqual(defaultKeysDir(linux), "/src/chat/keys");
  const compiled = { ...linux, standalone: true, env: env({ HOME: "/home/me" }) };
  strictEqual(defaultKeysDir(compiled), "/home/me/.config/chat");
  strictEqual(
    defaultKeysDir({ ...compiled, env: env({ HOME: "/home/me", XDG_CONFIG_HOME: "/cfg" }) }),
    "/cfg/chat",
  );
  // a relative XDG_CONFIG_HOME is invalid (XDG Base Directory) and ignored
  strictEqual(
    defaultKeysDir({ ...compiled, env: env({ HOME: "/home/me", XDG_CONFIG_HOME: "cfg" }) }),
    "/home/me/.config/chat",
  );
  strictEqual(defaultKeysDir({ ...compiled, env: env({}) }), undefined);
  strictEqual(
    defaultKeysDir({ ...linux, moduleUrl: "https://example.org/chat/lib/cli/context.ts" }),
    undefined,
  );
  if (Deno.build.os === "windows") {
    const windows = {
      ...compiled,
      os: "windows",
      env: env({ APPDATA: "C:\\Users\\me\\AppData\\Roaming" }),
    };
    strictEqual(defaultKeysDir(windows), "C:\\Users\\me\\AppData\\Roaming\\chat");
  }
  deepStrictEqual(resolveKeysDir(undefined, "", () => "/d"), { dir: "/d", from: "default" });
  deepStrictEqual(resolveKeysDir(undefined, "e", () => "/d"), { dir: "e", from: "env" });
  deepStrictEqual(resolveKeysDir("f", "e", () => "/d"), { dir: "f", from: "flag" });
  throws(() => resolveKeysDir(undefined, undefined, () => undefined), /no default keys folder/);
});

Deno.test({
  name: "a secret key file readable by group or others is refused with the chmod that fixes it",
  ignore: !isPosix,
  fn: async () => {
    await inTempDir(async (dir) => {
      const key = (await chat(dir, ["keygen"])).stdout;
      await Deno.chmod(`${dir}/keys/identity`, 0o644);
      const refused = await chat(dir, ["pubkey"]);
      expect(refused, 1, /accessible by group or others \(mode 0644\)/, "");
      match(refused.stderr, /chat: hint: make it private with: chmod 600 keys\/identity\n/);
      await Deno.chmod(`${dir}/keys/identity`, 0o600);
      expect(await chat(dir, ["pubkey"]), 0, undefined, key);
    });
  },
});

/** Runs in `cwd`, through sh, the command that the hint line matching `hint` ends with. */
async function pasteHint(cwd: string, stderr: string, hint: RegExp): Promise<string> {
  const line = stderr.split("\n").find((line) =>
    line.startsWith("chat: hint: ") && hint.test(line)
  );
  ok(line, `no hint matching ${hint} in:\n${stderr}`);
  const command = /\b((?:chmod|rm|cp|chown|ls) .*)$/.exec(line)![1];
  const run = await new Deno.Command("sh", { args: ["-c", command], cwd, stderr: "piped" })
    .output();
  strictEqual(run.code, 0, `${command}: ${new TextDecoder().decode(run.stderr)}`);
  return command;
}

Deno.test({
  name: "the commands in keys folder hints work pasted as printed, in a folder with a space",
  ignore: !isPosix,
  fn: async () => {
    await inTempDir(async (dir) => {
      const keys = ["--keys", "my keys"];
      const key = (await chat(dir, [...keys, "keygen"])).stdout;

      await Deno.chmod(`${dir}/my keys/identity`, 0o640);
      const secret = await chat(dir, [...keys, "pubkey"]);
      expect(secret, 1, /accessible by group or others \(mode 0640\)/, "");
      strictEqual(await pasteHint(dir, secret.stderr, /chmod 600/), "chmod 600 'my keys/identity'");
      expect(await chat(dir, [...keys, "pubkey"]), 0, undefined, key);

      // a link where identity.pub belongs: copied over by the hint, so the file stays the same
      await Deno.rename(`${dir}/my keys/identity.pub`, `${dir}/pub`);
      await Deno.symlink(`${dir}/pub`, `${dir}/my keys/identity.pub`);
      const linked = await chat(dir, [...keys, "pubkey"]);
      expect(linked, 1, /identity\.pub is a symbolic link/, "");
      await pasteHint(dir, linked.stderr, /cp /);
      strictEqual((await Deno.lstat(`${dir}/my keys/identity.pub`)).isSymlink, false);
      expect(await chat(dir, [...keys, "pubkey"]), 0, undefined, key);

      // a .lock link to nowhere: removed, never copied (there is nothing to copy)
      await Deno.remove(`${dir}/my keys/.lock`);
      await Deno.symlink(`${dir}/nowhere`, `${dir}/my keys/.lock`);
      const lock = await chat(dir, [...keys, "allow", encodePublicKey(newKey())]);
      expect(lock, 1, /\.lock is a symbolic link/, "");
      ok(!/chat: hint: .*\bcp /.test(lock.stderr), lock.stderr);
      strictEqual(await pasteHint(dir, lock.stderr, /rm /), "rm 'my keys/.lock'");
      expect(await chat(dir, [...keys, "allow", encodePublicKey(newKey())]), 0, /allowed /);
      await rejects(Deno.lstat(`${dir}/nowhere`), Deno.errors.NotFound);

      // commands of chat itself carry the --keys they need
      await Deno.remove(`${dir}/my keys`, { recursive: true });
      const gone = await chat(dir, [...keys, "pubkey"]);
      match(
        gone.stderr,
        /^chat: hint: create it and your identity with: chat --keys 'my keys' keygen$/m,
      );
    });
  },
});

Deno.test("chat pubkey refuses an identity.pub that does not match the secret key", async () => {
  await inTempDir(async (dir) => {
    await chat(dir, ["keygen"]);
    await Deno.writeTextFile(`${dir}/keys/identity.pub`, encodePublicKey(newKey()) + "\n");
    expect(await chat(dir, ["pubkey"]), 1, /keys\/identity\.pub holds [0-9a-f:]+, but/, "");
  });
});

Deno.test("chat allow, allowed and revoke work with both key forms", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    const alice = newKey(), bob = newKey(), carol = newKey();
    expect(await chat(dir, ["allow", encodePublicKey(alice), "--name", "alice"]), 0, /allowed/, "");
    expect(await chat(dir, ["allow", encodePublicKeyBase64(bob), "--name", "bob"]), 0);
    expect(await chat(dir, ["allow", encodePublicKey(carol)]), 0);
    strictEqual(
      await Deno.readTextFile(`${dir}/keys/allowed`),
      `${encodePublicKey(alice)} alice\n${encodePublicKey(bob)} bob\n${encodePublicKey(carol)}\n`,
    );

    const listed = await chat(dir, ["allowed"]);
    expect(
      listed,
      0,
      undefined,
      [
        `alice       ${fingerprint(alice)}  ${encodePublicKey(alice)}`,
        `bob         ${fingerprint(bob)}  ${encodePublicKey(bob)}`,
        `(no label)  ${fingerprint(carol)}  ${encodePublicKey(carol)}`,
        "",
      ].join("\n"),
    );
    strictEqual(listed.stderr, "");

    expect(await chat(dir, ["revoke", "bob"]), 0, /revoked .*\(bob\)/, "");
    expect(await chat(dir, ["revoke", encodePublicKeyBase64(carol)]), 0);
    strictEqual(
      await Deno.readTextFile(`${dir}/keys/allowed`),
      `${encodePublicKey(alice)} alice\n`,
    );

    const unknown = await chat(dir, ["revoke", "bob"]);
    expect(unknown, 1, /chat: error: no key is labelled "bob" in keys\/allowed\n/);
    match(unknown.stderr, /chat: hint: list the allowlist with: chat allowed\n/);
    expect(await chat(dir, ["revoke", encodePublicKey(bob)]), 1, /is not allowed in keys\/allowed/);
    expect(await chat(dir, ["revoke", "no such"]), 1, /is neither a public key nor a label/);
  });
});

Deno.test("chat allow of a key already there says so, exits 0 and changes nothing", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    const key = newKey();
    await chat(dir, ["allow", encodePublicKey(key), "--name", "alice"]);
    const before = await Deno.readTextFile(`${dir}/keys/allowed`);
    for (const form of [encodePublicKey(key), encodePublicKeyBase64(key)]) {
      for (const label of [[], ["--name", "alice"]]) {
        const again = await chat(dir, ["allow", form, ...label]);
        expect(again, 0, /is already allowed as alice; nothing to do/, "");
      }
    }
    strictEqual(await Deno.readTextFile(`${dir}/keys/allowed`), before);
  });
});

Deno.test("chat allow refuses invalid keys with the reason and writes nothing", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    const good = encodePublicKey(newKey());
    const bad: [string, RegExp][] = [
      [good.slice(0, -1) + (good.endsWith("q") ? "p" : "q"), /bad checksum/],
      [good.slice(0, -1), /it is 62 characters long, expected 63/],
      ["age1" + good.slice(5), /wrong prefix "age1", expected "chat1"/],
      [good.toUpperCase().slice(0, 10) + good.slice(10), /mixes upper and lower case/],
      [good + "x", /unexpected characters after the key/],
      [encodePublicKeyBase64(newKey()).slice(0, 40), /base64 of 30 bytes, expected 32/],
      ["CHAT-SECRET-KEY-1" + "Q".repeat(58), /this is a secret key/],
    ];
    for (const [text, reason] of bad) {
      const result = await chat(dir, ["allow", text]);
      expect(result, 2, reason, ""); // a bad value on the command line is a usage error
      match(result.stderr, /^chat: error: cannot parse public key "/);
      match(result.stderr, /chat: hint: a public key is chat1…/);
    }
    strictEqual(await readOrUndefined(`${dir}/keys/allowed`), undefined);
  });
});

Deno.test("chat allow refuses bad labels: a newline, a space, too long, taken", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    await chat(dir, ["allow", encodePublicKey(newKey()), "--name", "alice"]);
    const before = await Deno.readTextFile(`${dir}/keys/allowed`);
    const cases: [string, RegExp][] = [
      ["a\nb", /invalid label "a\\nb": it contains a line break/],
      ["a b", /invalid label "a b": it contains white space/],
      ["x".repeat(33), /it is 33 characters long; the limit is 32/],
      ["", /invalid label "": it is empty/],
      ["alice", /the label "alice" is already used by [0-9a-f:]{19} \(line 1 of keys\/allowed\)/],
    ];
    for (const [label, reason] of cases) {
      const result = await chat(dir, ["allow", encodePublicKey(newKey()), "--name", label]);
      // a malformed label is a usage error (2); a label another key has is a conflict (1)
      expect(result, label === "alice" ? 1 : 2, reason, "");
      strictEqual(result.stderr.split("\n").filter((l) => l.startsWith("chat: error:")).length, 1);
    }
    strictEqual(await Deno.readTextFile(`${dir}/keys/allowed`), before);
  });
});

Deno.test("a bad allowlist line is reported with its number and the file is left alone", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    const alice = newKey();
    const text = `# team\n${encodePublicKey(alice)} alice\nchat1typo\n\n`;
    await Deno.writeTextFile(`${dir}/keys/allowed`, text);
    for (const args of [["allow", encodePublicKey(newKey())], ["revoke", "alice"]]) {
      const result = await chat(dir, args);
      expect(result, 1, /chat: error: keys\/allowed has 1 bad line; nothing was changed\n/, "");
      match(result.stderr, /chat: error: keys\/allowed:3: cannot parse public key "chat1typo"/);
      match(result.stderr, /chat: hint: fix or remove that line in keys\/allowed\n/);
    }
    const listed = await chat(dir, ["allowed"]);
    expect(
      listed,
      1,
      /keys\/allowed:3: /,
      `alice  ${fingerprint(alice)}  ${encodePublicKey(alice)}\n`,
    );
    strictEqual(await Deno.readTextFile(`${dir}/keys/allowed`), text);
  });
});

Deno.test("chat allow - reads KEY [LABEL] lines from stdin, all or nothing", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    const keys = [newKey(), newKey(), newKey()];
    const bad = [
      "# from the old server",
      `${encodePublicKey(keys[0])} alice`,
      "chat1bad",
      `${encodePublicKeyBase64(keys[1])} bob smith`,
      "",
      `${encodePublicKey(keys[2])} al\u0000ice`,
    ].join("\n");
    const refused = await chat(dir, ["allow", "-"], { stdin: bad });
    expect(refused, 1, /chat: error: 3 bad lines on stdin; nothing was added\n/, "");
    match(refused.stderr, /chat: error: stdin:3: cannot parse public key "chat1bad"/);
    match(refused.stderr, /chat: error: stdin:4: expected "KEY \[LABEL\]", found 3 fields/);
    match(refused.stderr, /chat: error: stdin:6: invalid label "al\\u0000ice"/);
    strictEqual(await readOrUndefined(`${dir}/keys/allowed`), undefined);

    const good =
      `# team\n${encodePublicKey(keys[0])} alice\n\n${encodePublicKeyBase64(keys[1])} bob\n` +
      `${encodePublicKey(keys[2])}\n`;
    const added = await chat(dir, ["allow", "-"], { stdin: good });
    expect(added, 0, /added 3 of 3 keys to keys\/allowed/, "");
    const list = parseAllowlist(await Deno.readTextFile(`${dir}/keys/allowed`));
    deepStrictEqual(list.entries.map((entry) => entry.label), ["alice", "bob", undefined]);

    const again = await chat(dir, ["allow", "-"], { stdin: good });
    expect(again, 0, /added 0 of 3 keys/);
    expect(await chat(dir, ["allow", "-"], { stdin: "# nothing\n" }), 1, /no keys on stdin/);
    expect(await chat(dir, ["allow", "-", "--name", "x"], { stdin: "" }), 2, /--name cannot/);
  });
});

Deno.test("twenty chat allow runs started at once end with twenty entries", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    const keys = Array.from({ length: 20 }, newKey);
    const results = await Promise.all(
      keys.map((key, i) => chat(dir, ["allow", encodePublicKey(key), "--name", `peer${i}`])),
    );
    for (const result of results) expect(result, 0, /allowed/);
    const list = parseAllowlist(await Deno.readTextFile(`${dir}/keys/allowed`));
    deepStrictEqual(list.errors, []);
    strictEqual(list.entries.length, 20);
    deepStrictEqual(
      list.entries.map((entry) => entry.label).sort(),
      keys.map((_, i) => `peer${i}`).sort(),
    );
    const files = [];
    for await (const entry of Deno.readDir(`${dir}/keys`)) files.push(entry.name);
    deepStrictEqual(files.sort(), [".lock", "allowed"]); // no temporary file left behind
  });
});

Deno.test("--help on every command exits 0 on stdout; --version prints the version", async () => {
  await inTempDir(async (dir) => {
    const commands = [[], ["keygen"], ["pubkey"], ["allow"], ["allowed"], ["revoke"], ["serve"], [
      "connect",
    ]];
    const results = await Promise.all(commands.map((command) => chat(dir, [...command, "--help"])));
    results.forEach((result, i) => {
      expect(result, 0, undefined, new RegExp(`^Usage: chat ${commands[i].join(" ")}`));
      strictEqual(result.stderr, "");
    });
    expect(await chat(dir, ["help", "allow"]), 0, undefined, /^Usage: chat allow/);
    expect(await chat(dir, ["--version"]), 0, undefined, "0.1.0\n");
  });
});

Deno.test("usage errors exit 2 in the chat: error: style", async () => {
  await inTempDir(async (dir) => {
    const cases: [string[], RegExp][] = [
      [
        ["frobnicate"],
        /^chat: error: unknown command 'frobnicate'\nchat: hint: see: chat --help\n$/,
      ],
      [
        ["allow", "--bogus"],
        /^chat: error: unknown option '--bogus'\nchat: hint: see: chat allow --help\n$/,
      ],
      [["--bogus"], /^chat: error: unknown option '--bogus'/],
      [["allow"], /^chat: error: missing required argument 'pubkey'/],
      [["allow", "k", "--name"], /^chat: error: option '--name <LABEL>' argument missing/],
      [["keygen", "extra"], /^chat: error: too many arguments for 'keygen'/],
      [["revoke"], /^chat: error: missing required argument/],
    ];
    const results = await Promise.all(cases.map(([args]) => chat(dir, args)));
    results.forEach((result, i) => expect(result, 2, cases[i][1], ""));
    const bare = await chat(dir, []);
    expect(bare, 2, /Usage: chat/, "");
  });
});

Deno.test("a keys path that is a file gives a clear error, not a stack trace", async () => {
  await inTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/keys`, "");
    for (const command of [["pubkey"], ["allowed"], ["revoke", "x"], ["keygen"]]) {
      const result = await chat(dir, command);
      expect(result, 1, /chat: error: the keys folder keys is not a folder\n/, "");
    }
  });
});

Deno.test({
  name: "an unreadable keys folder gives a clear error",
  ignore: !isPosix,
  fn: async () => {
    await inTempDir(async (dir) => {
      await chat(dir, ["keygen"]);
      await Deno.chmod(`${dir}/keys`, 0o000);
      try {
        const bypassed = await Deno.stat(`${dir}/keys/identity`).then(() => true, () => false);
        if (bypassed) {
          console.log("skipped: this user (root?) reads a folder whatever its mode");
          return;
        }
        const result = await chat(dir, ["pubkey"]);
        expect(result, 1, /permission denied/, "");
      } finally {
        await Deno.chmod(`${dir}/keys`, 0o700);
      }
    });
  },
});

Deno.test({
  name: "a full disk gives a clear error and keeps the old allowlist",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await inTempDir(async (dir) => {
      const mountPoint = `${dir}/small`;
      await Deno.mkdir(mountPoint);
      const mount = await new Deno.Command("mount", {
        args: ["-t", "tmpfs", "-o", "size=16k", "tmpfs", mountPoint],
        stdout: "null",
        stderr: "piped",
      }).output().catch((error) => ({ success: false, stderr: new TextEncoder().encode(error) }));
      if (!mount.success) {
        console.log(
          `skipped: cannot mount a small tmpfs here (${
            new TextDecoder().decode(mount.stderr).trim() || "mount failed"
          })`,
        );
        return;
      }
      try {
        const keys = `${mountPoint}/keys`;
        await Deno.mkdir(keys);
        const text = `# team\n${encodePublicKey(newKey())} alice\n`;
        await Deno.writeTextFile(`${keys}/allowed`, text);
        // fill the rest of the file system
        const filler = await Deno.open(`${mountPoint}/filler`, { create: true, write: true });
        try {
          while (true) await filler.write(new Uint8Array(4096));
        } catch (error) {
          strictEqual((error as { code?: string }).code, "ENOSPC");
        } finally {
          filler.close();
        }
        const result = await chat(dir, ["--keys", keys, "allow", encodePublicKey(newKey())]);
        expect(
          result,
          1,
          /chat: error: cannot write .*keys\/allowed: no space left on device\n/,
          "",
        );
        match(result.stderr, /chat: hint: .*keys\/allowed is unchanged\n/);
        strictEqual(await Deno.readTextFile(`${keys}/allowed`), text);
        const files = [];
        for await (const entry of Deno.readDir(keys)) files.push(entry.name);
        deepStrictEqual(files.sort(), [".lock", "allowed"]);
      } finally {
        await new Deno.Command("umount", { args: [mountPoint] }).output();
      }
    });
  },
});

Deno.test("chat allow KEY --name NEW relabels an allowed key in place; a taken label is refused", async () => {
  await inTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/keys`);
    const [key, other] = [encodePublicKey(newKey()), encodePublicKey(newKey())];
    expect(await chat(dir, ["allow", key, "--name", "alice"]), 0);
    expect(await chat(dir, ["allow", other, "--name", "bob"]), 0);
    const relabel = await chat(dir, ["allow", key, "--name", "alicia"]);
    expect(relabel, 0, /relabelled [0-9a-f:]{19} as alicia \(it was alice\); it keeps its access/);
    const list = parseAllowlist(await Deno.readTextFile(`${dir}/keys/allowed`));
    deepStrictEqual(list.entries.map((e) => [encodePublicKey(e.key), e.label]), [
      [key, "alicia"],
      [other, "bob"],
    ]);
    expect(await chat(dir, ["allow", key, "--name", "bob"]), 1, /the label "bob" is already used/);
    expect(await chat(dir, ["allow", key]), 0, /already allowed as alicia; nothing to do/);
  });
});
