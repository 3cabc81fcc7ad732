/**
 * Child processes of the file benchmark (bench/files.ts): spawned with their output read line by
 * line as it comes (each line stamped with `performance.now()` when this process read it), kept
 * in the harness's set of children so that `cleanup()` and the overall timeout kill them.
 * @module
 */
import { fileURLToPath } from "node:url";
import { CHAT_RUN_FLAGS, children, kill, MAIN } from "../server/harness.ts";
import { withDeadline } from "../../lib/protocol/deadline.ts";

/** Called with each line of a child's output and the moment this process read it. */
export type LineHandler = (line: string, at: number) => void;

/** A running child whose stdout and stderr are read line by line. */
export interface LineChild {
  child: Deno.ChildProcess;
  /** The command line, for messages. */
  commandLine: string;
  /** The last `keep` lines of each stream, for messages and short outputs. */
  stdout: string[];
  stderr: string[];
  /** Both streams read to their end. */
  drained: Promise<void>;
}

/** What a child that ran to its end left. */
export interface Finished {
  code: number;
  stdout: string[];
  stderr: string[];
}

/** How to start a child. */
export interface SpawnOptions {
  cwd?: string;
  onStdout?: LineHandler;
  onStderr?: LineHandler;
  /** Lines of each stream kept (the last ones); default 40. */
  keep?: number;
}

const ENV = { NO_COLOR: "1", CHAT_KEYS: "" };

/** The arguments that run `chat ARGS…` as tests/process.ts does (the chat task's permissions). */
export function chatCommand(args: string[]): [string, string[]] {
  return [Deno.execPath(), ["run", ...CHAT_RUN_FLAGS, MAIN, ...args]];
}

/** Starts `command args…` with stdin closed and its output read line by line. */
export function spawnLines(
  command: string,
  args: string[],
  options: SpawnOptions = {},
): LineChild {
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd ?? fileURLToPath(new URL("../../", import.meta.url)),
    env: ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  const keep = options.keep ?? 40;
  const stdout: string[] = [], stderr: string[] = [];
  const drained = Promise.all([
    readLines(child.stdout, stdout, keep, options.onStdout),
    readLines(child.stderr, stderr, keep, options.onStderr),
  ]).then(() => {});
  const commandLine = [command, ...args].join(" ");
  return { child, commandLine, stdout, stderr, drained };
}

async function readLines(
  stream: ReadableStream<Uint8Array>,
  kept: string[],
  keep: number,
  onLine?: LineHandler,
): Promise<void> {
  let partial = "";
  const take = (line: string, at: number) => {
    kept.push(line);
    if (kept.length > keep) kept.shift();
    onLine?.(line, at);
  };
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const at = performance.now();
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      for (const line of parts) take(line, at);
    }
  } catch { /* the child was killed */ }
  if (partial) take(partial, performance.now());
}

/** Waits for `running` to exit within `timeoutMs` (killed after it), its output read to the end. */
export async function finish(running: LineChild, timeoutMs: number): Promise<Finished> {
  const { child } = running;
  try {
    const status = await withDeadline(
      child.status,
      timeoutMs,
      `${running.commandLine} did not exit within ${timeoutMs / 1000} s`,
      () => kill(child),
    );
    await withDeadline(running.drained, 5000, "output not closed", () => {}).catch(() => {});
    return { code: status.code, stdout: running.stdout, stderr: running.stderr };
  } finally {
    kill(child);
    children.delete(child);
  }
}

/** Runs `command args…` to its end (at most `timeoutMs`), keeping all of its output. */
export function run(
  command: string,
  args: string[],
  timeoutMs = 20_000,
  options: SpawnOptions = {},
): Promise<Finished> {
  return finish(spawnLines(command, args, { keep: Infinity, ...options }), timeoutMs);
}

/** Runs `command args…` and throws with its output unless it exits 0; returns its stdout. */
export async function runOk(
  command: string,
  args: string[],
  timeoutMs = 20_000,
): Promise<string> {
  const result = await run(command, args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.code}\n${result.stderr.join("\n")}`,
    );
  }
  return result.stdout.join("\n");
}

/** Runs `chat ARGS…` and throws unless it exits 0; returns its stdout. */
export function runChat(args: string[], timeoutMs = 20_000): Promise<string> {
  return runOk(...chatCommand(args), timeoutMs);
}
