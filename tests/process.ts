/**
 * Runs the real program for end-to-end tests: `main.ts` with exactly the permissions of the
 * `chat` task, in a temporary folder, its output collected line by line, every wait bounded,
 * and every process stopped when the test ends.
 * @module
 */
import { fileURLToPath } from "node:url";
import { assert } from "./helpers.ts";
import { CHAT_RUN_FLAGS } from "../scripts/permissions.ts";

const MAIN = fileURLToPath(new URL("../main.ts", import.meta.url)); // a path on Windows too
/** The permissions of the `chat` task in deno.json. */
export { CHAT_RUN_FLAGS };

/**
 * The line `chat serve` prints once it accepts connections (a stable format for scripts):
 * `chat: listening HOST:PORT KEY`.
 */
export const LISTENING = /^chat: listening (\S+) (chat1\S+)$/;

/** A running `chat` process. */
export class ChatProcess {
  readonly args: string[];
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #waiters = new Set<() => void>();
  readonly #readers: Promise<void>[];
  readonly status: Promise<Deno.CommandStatus>;
  #stdinClosed = false;

  /**
   * Starts `chat ARGS…`: `main.ts` under `deno run` with the `chat` task's permissions, or
   * `options.executable` (a compiled `chat`) when given.
   */
  constructor(
    args: string[],
    options: { cwd: string; env?: Record<string, string>; executable?: string },
  ) {
    this.args = args;
    const [command, prefix] = options.executable
      ? [options.executable, []]
      : [Deno.execPath(), ["run", ...CHAT_RUN_FLAGS, MAIN]];
    this.#child = new Deno.Command(command, {
      args: [...prefix, ...args],
      cwd: options.cwd,
      env: { NO_COLOR: "1", CHAT_KEYS: "", ...options.env },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#readers = [
      this.#collect(this.#child.stdout, this.stdout),
      this.#collect(this.#child.stderr, this.stderr),
    ];
    this.status = this.#child.status;
  }

  /** The process id (the load and attack tests read its memory from /proc). */
  get pid(): number {
    return this.#child.pid;
  }

  async #collect(stream: ReadableStream<Uint8Array>, lines: string[]): Promise<void> {
    let partial = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      lines.push(...parts);
      this.#waiters.forEach((wake) => wake());
    }
    if (partial) lines.push(partial);
    this.#waiters.forEach((wake) => wake());
  }

  /** Waits until a line of `stream` matches `pattern`; fails the test after `timeoutMs`. */
  async waitFor(
    stream: "stdout" | "stderr",
    pattern: RegExp,
    timeoutMs = 10_000,
  ): Promise<RegExpMatchArray> {
    const lines = stream === "stdout" ? this.stdout : this.stderr;
    const deadline = Date.now() + timeoutMs;
    while (true) {
      for (const line of lines) {
        const match = line.match(pattern);
        if (match) return match;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new assert.AssertionError({
          message: `chat ${this.args.join(" ")}: no ${stream} line matched ${pattern} within ` +
            `${timeoutMs} ms\n--- stdout:\n${this.stdout.join("\n")}\n--- stderr:\n${
              this.stderr.join("\n")
            }`,
        });
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#waiters.add(done);
      });
    }
  }

  /** Writes lines to the process's stdin. */
  async send(...lines: string[]): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(lines.map((l) => l + "\n").join("")));
  }

  /** Ends the process's stdin. */
  async closeStdin(): Promise<void> {
    if (this.#stdinClosed) return;
    this.#stdinClosed = true;
    await this.#stdin.close().catch(() => {});
  }

  /** Sends a signal (ignored if the process has ended). */
  signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
  }

  /** Waits for the exit code; kills the process and fails the test after `timeoutMs`. */
  async exitCode(timeoutMs = 10_000): Promise<number> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) =>
      timer = setTimeout(() => resolve("timeout"), timeoutMs)
    );
    const result = await Promise.race([this.status, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      this.signal("SIGKILL");
      throw new assert.AssertionError({
        message: `chat ${this.args.join(" ")} did not exit within ${timeoutMs} ms\n--- stderr:\n${
          this.stderr.join("\n")
        }`,
      });
    }
    await Promise.all(this.#readers);
    return result.code;
  }

  /** Stops the process for good (cleanup). */
  async stop(): Promise<void> {
    await this.closeStdin();
    this.signal("SIGKILL");
    await this.status.catch(() => {});
    await Promise.all(this.#readers).catch(() => {});
  }
}

/** A temporary folder for one test, with every process it started stopped at the end. */
export class Sandbox {
  readonly dir: string;
  readonly #processes: ChatProcess[] = [];

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Runs `test` in a fresh sandbox and cleans up, whatever happens. */
  static async run(test: (sandbox: Sandbox) => Promise<void>): Promise<void> {
    const sandbox = new Sandbox(await Deno.makeTempDir({ prefix: "chat-e2e-" }));
    try {
      await test(sandbox);
    } finally {
      await Promise.all(sandbox.#processes.map((p) => p.stop()));
      await Deno.remove(sandbox.dir, { recursive: true });
    }
  }

  /** Starts `chat ARGS…` in the sandbox. */
  spawn(args: string[], env?: Record<string, string>): ChatProcess {
    const process = new ChatProcess(args, { cwd: this.dir, env });
    this.#processes.push(process);
    return process;
  }

  /** Runs `chat ARGS…` to completion, feeding `input`; returns code, stdout and stderr. */
  async run(args: string[], input = "", timeoutMs = 15_000) {
    const process = this.spawn(args);
    if (input) await process.send(input);
    await process.closeStdin();
    const code = await process.exitCode(timeoutMs);
    return { code, stdout: process.stdout.join("\n"), stderr: process.stderr.join("\n") };
  }

  /** Creates an identity in `keys` and returns its public key. */
  async keygen(keys: string): Promise<string> {
    const result = await this.run(["--keys", keys, "keygen"]);
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  }

  /**
   * A headless server (keys in `srv`) with each of `names` allowed under that label, each name
   * its own keys folder; waits until it listens.
   */
  async room(
    names: string[],
    args: string[] = [],
  ): Promise<{ server: ChatProcess; address: string }> {
    await this.keygen("srv");
    for (const name of names) {
      const key = await this.keygen(name);
      const allowed = await this.run(["--keys", "srv", "allow", key, "--name", name]);
      assert.equal(allowed.code, 0, allowed.stderr);
    }
    return await this.serve("srv", ["--headless", ...args]);
  }

  /** Starts a server on a free port (keys in `keys`) and waits until it listens. */
  async serve(
    keys: string,
    args: string[] = [],
  ): Promise<{ server: ChatProcess; address: string }> {
    const server = this.spawn(["--keys", keys, "serve", "--port", "0", ...args]);
    const [, address] = await server.waitFor("stderr", LISTENING);
    return { server, address };
  }
}
