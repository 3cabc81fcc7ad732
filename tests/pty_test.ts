/**
 * The person at the keyboard: the interactive `chat connect` in a real pseudo-terminal (tmux),
 * against a real `chat serve`. Keys go in with `send-keys`, pastes with `paste-buffer -p`
 * (bracketed, as a terminal pastes), and the screen comes back with `capture-pane`. Skipped, with
 * the reason printed, where tmux is not installed.
 */
import { fileURLToPath } from "node:url";
import { assert } from "./helpers.ts";
import { CHAT_RUN_FLAGS, type ChatProcess, LISTENING, Sandbox } from "./process.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url));

function tmuxVersion(): string | undefined {
  try {
    const { success, stdout } = new Deno.Command("tmux", { args: ["-V"], stdout: "piped" })
      .outputSync();
    return success ? new TextDecoder().decode(stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

const TMUX = tmuxVersion();
if (!TMUX) console.log("pty_test.ts: skipped: tmux is not installed (apt-get install tmux)");

let sockets = 0;

/** One tmux server on its own socket, with one pane running a shell. */
class Pane {
  readonly socket = `chat-pty-${Deno.pid}-${++sockets}`;

  async tmux(...args: string[]): Promise<string> {
    const { success, stdout, stderr } = await new Deno.Command("tmux", {
      args: ["-L", this.socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout);
    if (!success) throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(stderr)}`);
    return text;
  }

  /** Starts `bash --norc` in a pane of `columns` by `rows`, in `dir`. */
  async start(dir: string, columns: number, rows: number): Promise<void> {
    await this.tmux(
      "new-session",
      "-d",
      "-x",
      String(columns),
      "-y",
      String(rows),
      "-c",
      dir,
      "env PS1='$ ' bash --norc --noprofile",
    );
  }

  /** Types `text` literally. */
  async type(text: string): Promise<void> {
    await this.tmux("send-keys", "-l", text);
  }

  /** Presses keys by name (`Enter`, `C-z`). */
  async press(...keys: string[]): Promise<void> {
    await this.tmux("send-keys", ...keys);
  }

  /** Pastes `text` as a terminal does with bracketed paste on. */
  async paste(text: string, dir: string): Promise<void> {
    const file = `${dir}/paste-${sockets}.txt`;
    await Deno.writeTextFile(file, text);
    await this.tmux("load-buffer", file);
    await this.tmux("paste-buffer", "-p", "-d");
  }

  /** The whole pane, scrollback included, without the empty rows at the end. */
  async screen(): Promise<string> {
    return (await this.tmux("capture-pane", "-p", "-S", "-")).replace(/\s+$/, "");
  }

  /** Waits until the screen passes `test`; fails with the screen after `timeoutMs`. */
  async waitFor(test: (screen: string) => boolean, what: string, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    let screen = "";
    while (Date.now() < deadline) {
      screen = await this.screen();
      if (test(screen)) return screen;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new assert.AssertionError({ message: `no ${what} within ${timeoutMs} ms:\n${screen}` });
  }

  async kill(): Promise<void> {
    await this.tmux("kill-server").catch(() => {});
  }
}

/**
 * A server (`alice`, its operator's stdin a pipe) and `bob`'s interactive client in a pane; the
 * client has joined when `test` runs.
 */
function ptyTest(
  name: string,
  size: { columns: number; rows: number; serve?: string[]; connect?: string[] },
  test: (
    chat: { pane: Pane; server: ChatProcess; dir: string; sandbox: Sandbox; address: string },
  ) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore: !TMUX,
    fn: () =>
      Sandbox.run(async (sandbox) => {
        await sandbox.keygen("alice");
        const bob = await sandbox.keygen("bob");
        const allowed = await sandbox.run(["--keys", "alice", "allow", bob, "--name", "bob"]);
        assert.equal(allowed.code, 0, allowed.stderr);
        const { server, address } = await sandbox.serve("alice", [
          "--name",
          "alice",
          ...size.serve ?? [],
        ]);
        const pane = new Pane();
        try {
          await pane.start(sandbox.dir, size.columns, size.rows);
          const command = [Deno.execPath(), "run", ...CHAT_RUN_FLAGS, MAIN]
            .concat(["--keys", "bob", "connect", address, "--name", "bob", ...size.connect ?? []])
            .map((word) => `'${word}'`).join(" ");
          await pane.type(`clear; NO_COLOR=1 CHAT_KEYS= ${command}`);
          await pane.press("Enter");
          // the first contact is the person's decision, as with ssh
          await pane.waitFor(
            (s) => s.replaceAll("\n", "").includes("trust this key and connect? [yes/no]"),
            "question", // (wrapped in a narrow pane)
          );
          await pane.type("yes");
          await pane.press("Enter");
          await pane.waitFor((s) => /joined alice/.test(s) && s.endsWith("\n>"), "prompt", 20_000);
          await test({ pane, server, dir: sandbox.dir, sandbox, address });
        } finally {
          await pane.kill();
        }
      }),
  });
}

/** The rows of `screen` that contain `text`. */
function rowsWith(screen: string, text: string): string[] {
  return screen.split("\n").filter((row) => row.includes(text));
}

ptyTest("a 16 KiB paste is echoed, and sent and received whole within 1 s", {
  columns: 100,
  rows: 30,
}, async ({ pane, server, dir }) => {
  const text = "0123456789abcdef".repeat(1024);
  const start = performance.now();
  await pane.paste(text, dir);
  await pane.press("Enter");
  await server.waitFor("stdout", new RegExp(`^bob: ${text}$`), 5_000);
  const elapsed = performance.now() - start;
  console.log(`  16 KiB paste to the server's stdout: ${elapsed.toFixed(0)} ms`);
  assert.ok(elapsed < 1_000, `took ${elapsed.toFixed(0)} ms`);
  // still responsive: a line typed after it arrives
  await pane.type("after the paste");
  await pane.press("Enter");
  await server.waitFor("stdout", /^bob: after the paste$/, 5_000);
});

ptyTest("a line arriving while a 3-row line is half-typed shows, and the typed line stays whole", {
  columns: 100,
  rows: 30,
}, async ({ pane, server }) => {
  const typed = Array.from({ length: 25 }, (_, i) => `word${String(i).padStart(2, "0")}-abc`)
    .join("") + "x".repeat(1); // 251 characters: 3 rows after the prompt
  await pane.type(typed);
  await pane.waitFor((s) => s.includes("word24-abcx"), "the typed line");
  await server.send("the operator speaks");
  const saidRow = (rows: string[]) =>
    rows.findIndex((row) => row.includes("alice: the operator speaks"));
  // the client erases the input, prints the line and draws the input again in one write, but
  // tmux may still take it in more than one read: wait for the input's end below the line
  const screen = await pane.waitFor((s) => {
    const rows = s.split("\n");
    return saidRow(rows) >= 0 && rows.slice(saidRow(rows) + 1).join("").endsWith("word24-abcx");
  }, "the line, and the input drawn again below it");
  const rows = screen.split("\n");
  const said = saidRow(rows);
  // below the line: exactly the input, 3 rows, and nothing of it anywhere above
  assert.equal(rows.slice(said + 1).join(""), "> " + typed, screen);
  assert.equal(rows.length - said - 1, 3, screen);
  assert.equal(rowsWith(screen, "word00").length, 1, screen);
  await pane.press("Enter");
  await server.waitFor("stdout", new RegExp(`^bob: ${typed}$`), 5_000);
});

ptyTest("Ctrl-Z suspends with the terminal given back, and fg redraws with the chat alive", {
  columns: 100,
  rows: 30,
}, async ({ pane, server }) => {
  await pane.type("half");
  await pane.press("C-z");
  await pane.waitFor((s) => /Stopped/.test(s) && /^\$\s*$/m.test(s), "the shell's prompt");
  await pane.type("stty -a | grep -o -- ' -\\?icanon'"); // cooked mode again
  await pane.press("Enter");
  await pane.waitFor((s) => /^ icanon$/m.test(s), "icanon (cooked mode) after Ctrl-Z");
  await server.send("while you were away");
  await pane.type("fg");
  await pane.press("Enter");
  const screen = await pane.waitFor(
    (s) => /alice: while you were away/.test(s) && /^> half$/m.test(s.split("\n").at(-1)!),
    "the redrawn prompt after fg",
  );
  assert.ok(screen.split("\n").at(-1) === "> half", screen);
  await pane.type(" and back");
  await pane.press("Enter");
  await server.waitFor("stdout", /^bob: half and back$/, 5_000);
});

ptyTest("a pasted exit is text: every pasted line arrives, and the client stays connected", {
  columns: 100,
  rows: 30,
}, async ({ pane, server, dir }) => {
  await pane.paste("first\nexit\n/quit\n/who\nlast\n", dir);
  for (const line of ["first", "exit", "/quit", "/who", "last"]) {
    await server.waitFor("stdout", new RegExp(`^bob: ${line}$`), 5_000);
  }
  const said = server.stdout.filter((line) => line.startsWith("bob: "));
  assert.deepEqual(said, ["bob: first", "bob: exit", "bob: /quit", "bob: /who", "bob: last"]);
  await server.send("still there?");
  await pane.waitFor((s) => s.includes("alice: still there?"), "a line after the paste");
  await pane.type("yes");
  await pane.press("Enter");
  await server.waitFor("stdout", /^bob: yes$/, 5_000);
  // a typed exit still leaves
  await pane.type("exit");
  await pane.press("Enter");
  await pane.waitFor((s) => /^\$\s*$/m.test(s.split("\n").at(-1)!), "the shell after exit");
});

ptyTest("wide characters wrapped at 40 columns leave no stray rows; a resize redraws", {
  columns: 40,
  rows: 20,
}, async ({ pane, server }) => {
  const typed = "漢字かな交じり文😀 wide 日本語のテキストです🎉🎉 more 中文字符 end";
  await pane.type(typed);
  await pane.waitFor((s) => s.includes("end"), "the typed line");
  const check = async (said: string, columns: number) => {
    await server.send(said);
    // the line is drawn first and the input redrawn under it just after: wait for both
    const below = (screen: string) => {
      const rows = screen.split("\n");
      return rows.slice(rows.findIndex((row) => row.includes(`alice: ${said}`)) + 1);
    };
    const screen = await pane.waitFor(
      (s) => s.includes(`alice: ${said}`) && below(s).join("").endsWith(" end"),
      said,
    );
    const rows = screen.split("\n");
    const input = below(screen);
    assert.equal(input.join(""), "> " + typed, screen); // only the input, below the line
    assert.ok(input.length >= 2 && input.length <= 4, screen);
    assert.equal(rowsWith(screen, "漢字かな").length, 1, screen); // no stray rows anywhere
    for (const row of rows) assert.ok(displayColumns(row) <= columns, `row too wide: ${row}`);
  };
  await check("one", 40);
  await check("two", 40);
  await pane.tmux("resize-window", "-x", "30");
  await check("after narrowing", 30);
  await pane.tmux("resize-window", "-x", "60");
  await check("after widening", 60);
  await pane.press("Enter");
  await server.waitFor("stdout", new RegExp(`^bob: ${typed}$`), 5_000);
});

/** Columns of a captured row (CJK and these emoji are 2). */
function displayColumns(row: string): number {
  let columns = 0;
  for (const c of row) columns += /[\u3000-\u9fff\u{1f300}-\u{1faff}]/u.test(c) ? 2 : 1;
  return columns;
}

Deno.test({
  name: "at a terminal, a first contact shows the fingerprint and asks; no means no (exit 4)",
  ignore: !TMUX,
  fn: () =>
    Sandbox.run(async (sandbox) => {
      await sandbox.keygen("alice");
      const bob = await sandbox.keygen("bob");
      assert.equal((await sandbox.run(["--keys", "alice", "allow", bob])).code, 0);
      const { address } = await sandbox.serve("alice", ["--name", "alice"]);
      const print = (await sandbox.run(["--keys", "alice", "pubkey"])).stdout.trim();
      const pane = new Pane();
      try {
        await pane.start(sandbox.dir, 100, 30);
        const command = [Deno.execPath(), "run", ...CHAT_RUN_FLAGS, MAIN]
          .concat(["--keys", "bob", "connect", address])
          .map((word) => `'${word}'`).join(" ");
        await pane.type(`clear; NO_COLOR=1 CHAT_KEYS= ${command}; echo "exit=$?"`);
        await pane.press("Enter");
        const screen = await pane.waitFor((s) => s.includes("[yes/no]"), "question");
        assert.ok(screen.includes(`its key: ${print}`), screen);
        assert.match(screen, /its fingerprint: [0-9a-f]{4}(:[0-9a-f]{4}){3}/);
        await pane.type("no");
        await pane.press("Enter");
        await pane.waitFor((s) => s.includes("exit=4"), "exit 4");
        const pins = await Deno.readTextFile(`${sandbox.dir}/bob/known_servers`).catch(() => "");
        assert.equal(pins.trim(), "", "a refused key is not pinned");
      } finally {
        await pane.kill();
      }
    }),
});

ptyTest("after a server restart the interactive client comes back by itself, typing kept", {
  columns: 100,
  rows: 30,
}, async ({ pane, server, sandbox, address }) => {
  server.signal("SIGKILL");
  await pane.waitFor((s) => /connection lost .* reconnecting in 1 s/.test(s), "back-off note");
  await pane.type("typed while away");
  const port = address.split(":")[1];
  const again = sandbox.spawn(["--keys", "alice", "serve", "--port", port, "--name", "alice"]);
  await again.waitFor("stderr", LISTENING);
  await pane.waitFor((s) => s.includes("reconnected to alice as bob"), "reconnection", 20_000);
  await pane.waitFor((s) => s.trimEnd().endsWith("> typed while away"), "the kept input");
  await pane.press("Enter");
  await again.waitFor("stdout", /^bob: typed while away$/, 5_000);
});

ptyTest(
  "files at a terminal: /send, the offer accepted by number, a progress bar above the prompt that stays out of the way",
  {
    columns: 100,
    rows: 30,
    serve: ["--downloads", "dl-alice"],
    connect: ["--downloads", "dl-bob"],
  },
  async ({ pane, server, dir }) => {
    const file = new Uint8Array(128 << 20);
    for (let i = 0; i < file.length; i += 65536) {
      crypto.getRandomValues(file.subarray(i, i + 65536));
    }
    await Deno.writeFile(`${dir}/big.bin`, file);
    await pane.type("/send big.bin alice");
    await pane.press("Enter");
    await pane.waitFor(
      (s) => s.replaceAll("\n", "").includes("offered big.bin (134.2 MB) to alice; waiting"),
      "the offer, sent",
    );
    // the operator (its commands come from its pipe here) sees it with a number, and accepts
    await server.waitFor("stderr", /bob offers big\.bin \(134\.2 MB\): \/accept 1 or \/decline 1/);
    await assert.rejects(Deno.stat(`${dir}/dl-alice`), Deno.errors.NotFound); // nothing before consent
    await server.send("/accept 1");
    await server.waitFor("stderr", /receiving big\.bin from bob/);
    server.signal("SIGSTOP"); // hold the transfer still, to look at the bar
    try {
      const during = await barWhileSteppingServer(pane, server);
      const rows = during.split("\n");
      assert.match(rows.at(-2)!, /^-> alice \[.* big\.bin$/, during); // just above the prompt
      assert.equal(rows.at(-1), ">", during);
      // typing works under it, and the bar stays where it is
      await pane.type("typed during the transfer");
      const typing = await pane.waitFor((s) => s.endsWith("> typed during the transfer"), "typing");
      assert.match(typing.split("\n").at(-2)!, /^-> alice \[.* big\.bin$/, typing);
      await pane.press("Enter");
    } finally {
      server.signal("SIGCONT");
    }
    await server.waitFor("stdout", /^bob: typed during the transfer$/, 5_000);
    const after = await pane.waitFor(
      (s) => s.replaceAll("\n", "").includes("alice received big.bin (134.2 MB"),
      "the end of the transfer",
      30_000,
    );
    assert.ok(!after.split("\n").slice(-3).some((row) => row.startsWith("-> alice")), after);
    await server.waitFor("stderr", /received big\.bin from bob: dl-alice\/big\.bin/);
    const received = await Deno.readFile(`${dir}/dl-alice/big.bin`);
    assert.equal(received.length, file.length);
    assert.ok(received.every((byte, i) => byte === file[i]), "byte-identical");
  },
);

/**
 * The sender's progress bar, seen while the server is held still. The accept reaches bob through
 * the server, which may be stopped before it wrote it (CI saw that: no bar at all); so the server
 * runs in 20 ms steps until the bar shows. A step moves at most a few MB of the 134, so the bar is
 * still there, held, when this returns with the screen.
 */
async function barWhileSteppingServer(pane: Pane, server: ChatProcess): Promise<string> {
  const bar = /-> alice \[[#-]{20}\] +\d+% .* of 134\.2 MB, .*\/s.* big\.bin/;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const screen = await pane.waitFor((s) => bar.test(s), "the progress bar", 500)
      .catch((error) => {
        if (Date.now() > deadline) throw error;
        return undefined;
      });
    if (screen) return screen;
    server.signal("SIGCONT");
    await new Promise((resolve) => setTimeout(resolve, 20));
    server.signal("SIGSTOP");
  }
}
