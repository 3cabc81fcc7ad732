/**
 * The standalone executables: the compile script's permissions, targets and checksums (always),
 * and a compiled `chat` driven end to end (keygen, allow, serve, connect, a line each way).
 *
 * The end-to-end test needs an executable. It builds one for this machine with
 * `scripts/compile.ts --host` when `deno compile` can get its runtime: `DENORT_BIN` is set, or
 * `denort` for this Deno version is already in DENO_DIR, or a quick probe of its download answers.
 * `CHAT_EXE=path` tests an executable that is already built (the release workflow does so on
 * every platform). Otherwise the test is ignored, never passed, and says why.
 * @module
 */
import { join } from "node:path";
import { assert } from "./helpers.ts";
import { ChatProcess, LISTENING } from "./process.ts";
import {
  compileArgs,
  executableName,
  PERMISSIONS,
  readVersion,
  ROOT,
  TARGETS,
} from "../scripts/compile.ts";
import { checksums, SUMS_FILE, writeChecksums } from "../scripts/checksums.ts";

const VERSION = await readVersion();
const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
const isWindows = Deno.build.os === "windows";

Deno.test("compiled executables get exactly the flags of the chat task, never -A", () => {
  const chatTask: string = config.tasks.chat;
  const flags = chatTask.split(/\s+/).filter((word) => word.startsWith("-"));
  assert.deepEqual(PERMISSIONS, flags);
  const args = compileArgs("x86_64-unknown-linux-gnu", "out");
  assert.deepEqual(args.filter((arg) => /^-A$|^--allow|^--v8-flags/.test(arg)), flags);
  assert.ok(!args.some((arg) => /^-A$|allow-all|allow-run|allow-ffi|allow-sys/.test(arg)));
});

Deno.test("deno task compile builds the five release targets into dist/ with SHA256SUMS", () => {
  assert.deepEqual([...TARGETS].sort(), [
    "aarch64-apple-darwin",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "x86_64-unknown-linux-gnu",
  ]);
  assert.match(config.tasks.compile, /scripts\/compile\.ts$/);
  assert.match(config.tasks["compile:host"], /scripts\/compile\.ts --host$/);
  assert.ok(!/-A\b|allow-all/.test(config.tasks.compile));
  assert.equal(
    executableName("0.1.0", "x86_64-pc-windows-msvc"),
    "chat-0.1.0-x86_64-pc-windows-msvc.exe",
  );
  assert.equal(executableName("0.1.0", "aarch64-apple-darwin"), "chat-0.1.0-aarch64-apple-darwin");
});

Deno.test("SHA256SUMS has sha256sum's format, sorted, for the matching files only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "chat-sums-" });
  try {
    await Deno.writeTextFile(join(dir, "chat-9.9.9-b"), "abc");
    await Deno.writeTextFile(join(dir, "chat-9.9.9-a.exe"), "");
    await Deno.writeTextFile(join(dir, "chat-0.0.1-old"), "old");
    await Deno.writeTextFile(join(dir, ".hidden"), "x");
    await writeChecksums(dir, { prefix: "chat-9.9.9-" });
    assert.equal(
      await Deno.readTextFile(join(dir, SUMS_FILE)),
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  chat-9.9.9-a.exe\n" +
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  chat-9.9.9-b\n",
    );
    assert.equal((await checksums(dir)).split("\n").length - 1, 3, "no prefix: every file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- The end-to-end test of a compiled executable -----------------------------------------

/** How the end-to-end test gets its executable, or why it cannot. */
type Plan = { exe: string } | { compile: string } | { skip: string };

async function plan(): Promise<Plan> {
  const given = Deno.env.get("CHAT_EXE");
  if (given) return { exe: given };
  const target = Deno.build.target;
  if (!(TARGETS as readonly string[]).includes(target)) {
    return { skip: `${target} is not a release target` };
  }
  const runtime = Deno.env.get("DENORT_BIN");
  if (runtime) return { compile: `with DENORT_BIN=${runtime}` };
  const zip = `denort-${target}.zip`;
  const release = `release/v${Deno.version.deno}`;
  const denoDir = await denoDirectory();
  if (denoDir && await exists(join(denoDir, "dl", ...release.split("/"), zip))) {
    return { compile: `with ${zip} cached in ${denoDir}` };
  }
  const url = `https://dl.deno.land/${release}/${zip}`;
  try {
    const response = await fetch(url, { method: "HEAD", signal: AbortSignal.timeout(5000) });
    await response.body?.cancel();
    if (response.ok) return { compile: `downloading ${url}` };
    return { skip: `deno compile cannot download its runtime ${url}: HTTP ${response.status}` };
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
    const reason = (error instanceof Error ? error.message : String(error)) +
      (cause ? `: ${cause.message}` : "");
    return {
      skip: `deno compile cannot download its runtime ${url} (${reason}); set DENORT_BIN to a ` +
        `denort binary of Deno ${Deno.version.deno}, or CHAT_EXE to a built chat, to run it`,
    };
  }
}

async function denoDirectory(): Promise<string | undefined> {
  try {
    const info = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
      signal: AbortSignal.timeout(20_000),
    }).output();
    return info.success ? JSON.parse(new TextDecoder().decode(info.stdout)).denoDir : undefined;
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

const PLAN = await plan();
const NAME =
  "a compiled chat executable: --version, keygen, allow, serve, connect, a line each way";
if ("skip" in PLAN) console.error(`compile_test: NOT RUN (ignored, not passed): ${PLAN.skip}`);
else console.error(`compile_test: ${"exe" in PLAN ? `testing ${PLAN.exe}` : PLAN.compile}`);

Deno.test({
  name: NAME,
  ignore: "skip" in PLAN,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "chat-compiled-" });
    const running: ChatProcess[] = [];
    try {
      const exe = "exe" in PLAN ? await Deno.realPath(PLAN.exe) : await compileHost(dir);
      const start = (args: string[]) => {
        const process = new ChatProcess(args, { cwd: dir, executable: exe });
        running.push(process);
        return process;
      };
      const run = async (args: string[]) => {
        const process = start(args);
        await process.closeStdin();
        const code = await process.exitCode(30_000);
        return { code, stdout: process.stdout.join("\n"), stderr: process.stderr.join("\n") };
      };

      const version = await run(["--version"]);
      assert.deepEqual([version.code, version.stdout.trim()], [0, VERSION], version.stderr);

      assert.equal((await run(["--keys", "srv", "keygen"])).code, 0);
      const alice = await run(["--keys", "alice", "keygen"]);
      assert.equal(alice.code, 0, alice.stderr);
      const key = alice.stdout.trim();
      assert.match(key, /^chat1\w+$/);
      if (!isWindows) {
        assert.equal((await Deno.stat(join(dir, "alice", "identity"))).mode! & 0o777, 0o600);
      }
      const allowed = await run(["--keys", "srv", "allow", key, "--name", "alice"]);
      assert.equal(allowed.code, 0, allowed.stderr);

      const server = start(["--keys", "srv", "serve", "--port", "0", "--name", "hub"]);
      const [, address] = await server.waitFor("stderr", LISTENING);
      const client = start(["--keys", "alice", "connect", address, "--name", "alice"]);
      await client.waitFor("stderr", /joined hub at .* as alice/);
      await client.send("hello operator");
      await server.waitFor("stdout", /^alice: hello operator$/);
      await server.send("hello alice");
      await client.waitFor("stdout", /^hub: hello alice$/);
      await client.closeStdin();
      assert.equal(await client.exitCode(), 0, client.stderr.join("\n"));
      await server.waitFor("stderr", /alice left/);
      if (!isWindows) {
        server.signal("SIGTERM");
        assert.equal(await server.exitCode(), 0, server.stderr.join("\n"));
      }
    } finally {
      await Promise.all(running.map((process) => process.stop()));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

/** Builds this machine's executable into `dir` with the compile script; returns its path. */
async function compileHost(dir: string): Promise<string> {
  const out = join(dir, "dist");
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      join(ROOT, "scripts", "compile.ts"),
      "--host",
      "--out",
      out,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(300_000),
  }).output();
  const output = new TextDecoder().decode(result.stderr) + new TextDecoder().decode(result.stdout);
  assert.ok(result.success, `scripts/compile.ts --host failed (exit ${result.code}):\n${output}`);
  const exe = join(out, executableName(VERSION, Deno.build.target));
  const sums = await Deno.readTextFile(join(out, SUMS_FILE));
  assert.ok(sums.endsWith(`  ${executableName(VERSION, Deno.build.target)}\n`), sums);
  return exe;
}
