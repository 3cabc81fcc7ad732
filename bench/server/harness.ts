/**
 * The harness of the server benchmarks (bench/server.ts): options, child processes and their
 * cleanup, timers, /proc readers, percentiles, the `chat serve` process, clients in this process
 * and the result table. The measurements live next to it, one file each.
 * @module
 */
import { type ChatEnd, type ChatHandlers, ClientChat } from "../../lib/chat/client.ts";
import { type KeyPair } from "../../lib/protocol/crypto.ts";
import { formatAllowLine } from "../../lib/keys/key_files.ts";
import { numberOption } from "../options.ts";
import { withDeadline } from "../../lib/protocol/deadline.ts";
import { CHAT_RUN_FLAGS } from "../../scripts/permissions.ts";
import { joinServer } from "../../lib/chat/join.ts";

/** The address every server and relay listens on. */
export const HOST = "127.0.0.1";
/** The repository root, the working folder of every `chat` child. */
export const ROOT = new URL("../../", import.meta.url);
/** The program under test. */
export const MAIN = new URL("../../main.ts", import.meta.url).pathname;
/** The permissions of the `chat` task in deno.json (as tests/process.ts runs the program). */
export { CHAT_RUN_FLAGS };
/**
 * A flag value large enough to switch a limit off (rate, burst): the most `chat serve` accepts
 * for them (lib/cli/serve.ts LIMIT_FLAGS), a million lines a second.
 */
export const BIG = "1000000";
/** Clock ticks per second of /proc/PID/stat times. */
const CLK_TCK = 100;
const NO_PINS = {
  lookupServer: () => Promise.resolve(undefined),
  pinServer: () => Promise.resolve(undefined),
};

// --- arguments -------------------------------------------------------------------

/** The command-line options of bench/server.ts. */
export interface ServerBenchOptions {
  /** Length of each timed phase. */
  seconds: number;
  /** Megabytes relayed in the bulk phase. */
  bulkMb: number;
  /** Clients in the fan-out room. */
  clientCount: number;
  /** Idle sessions in the memory phase (and keys in its allowlist). */
  sessionCount: number;
  /** Timed runs of each start-up case. */
  startupRuns: number;
  /** Bound on the whole run. */
  timeoutSeconds: number;
}

/** Reads the options from `Deno.args`; a bad value exits 2 (bench/options.ts). */
export function readOptions(): ServerBenchOptions {
  return {
    seconds: numberOption("seconds", 5),
    bulkMb: numberOption("mb", 64),
    clientCount: Math.round(numberOption("clients", 200)),
    sessionCount: Math.round(numberOption("sessions", 1000)),
    startupRuns: Math.round(numberOption("runs", 20)),
    timeoutSeconds: numberOption("timeout", 600),
  };
}

// --- children and cleanup ------------------------------------------------------------------

/** Every child process still running; killed by `cleanup()` or the overall timeout. */
export const children = new Set<Deno.ChildProcess>();
const tempDirs: string[] = [];

/** Sends `signal` to `child`, ignoring a child that has already exited. */
export function kill(child: Deno.ChildProcess, signal: Deno.Signal = "SIGKILL"): void {
  try {
    child.kill(signal);
  } catch { /* already exited */ }
}

/** Stops `child`: SIGTERM, then SIGKILL after `graceMs`, every wait bounded. */
export async function stopChild(child: Deno.ChildProcess, graceMs = 3000): Promise<void> {
  if (!children.has(child)) return;
  kill(child, "SIGTERM");
  await withDeadline(child.status, graceMs, "child did not exit", () => kill(child)).catch(
    () => {},
  );
  kill(child);
  await withDeadline(child.status, 2000, "child did not die", () => {}).catch(() => {});
  children.delete(child);
}

/**
 * Kills every child, removes every temporary folder and exits 124 after `seconds`; `script`
 * names the benchmark in the message.
 */
export function startOverallTimeout(
  seconds: number,
  script = "server.ts",
): ReturnType<typeof setTimeout> {
  return setTimeout(() => {
    console.error(`${script}: overall timeout of ${seconds} s reached; stopping children`);
    for (const child of children) kill(child);
    for (const dir of tempDirs) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* best effort */ }
    }
    Deno.exit(124);
  }, seconds * 1000);
}

/** Stops every child, removes every temporary folder and clears the overall timeout. */
export async function cleanup(overall: ReturnType<typeof setTimeout>): Promise<void> {
  for (const child of [...children]) await stopChild(child);
  for (const dir of tempDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  clearTimeout(overall);
}

// --- timers, /proc, statistics -------------------------------------------------------------

/** Resolves after `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** MB (10^6 bytes) per second. */
export const mbPerSecond = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

/** The `p`th percentile (nearest rank) of ascending `sorted`; NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** The median of `values` (not modified). */
export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/**
 * A file under /proc, read by `cat`: Deno asks for --allow-all to read /proc/PID/ directly, and
 * --allow-run is needed anyway.
 */
async function readProc(path: string): Promise<string> {
  const output = await new Deno.Command("cat", { args: [path], stdout: "piped", stderr: "null" })
    .output();
  return new TextDecoder().decode(output.stdout);
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** A /proc/PID/status field in kB (VmRSS, VmHWM…). */
export async function statusKb(pid: number, field: string): Promise<number> {
  const status = await readProc(`/proc/${pid}/status`);
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return match ? Number(match[1]) : NaN;
}

/** Operations per second of `work`: the best of 3 passes of about `ms` each. */
export function opsPerSecond(work: () => void, ms = 500): number {
  let best = 0;
  for (let pass = 0; pass < 3; pass++) {
    let count = 0;
    const start = performance.now();
    let elapsed = 0;
    while (elapsed < ms) {
      for (let i = 0; i < 16; i++) work();
      count += 16;
      elapsed = performance.now() - start;
    }
    best = Math.max(best, count / (elapsed / 1000));
  }
  return best;
}

/** A condition that async code can wait on, re-checked whenever `notify()` is called. */
export class Signal {
  #waiters = new Set<() => void>();
  /** Wakes every waiter to re-check its condition. */
  notify(): void {
    for (const wake of this.#waiters) wake();
  }
  /** Resolves when `ready()` holds; rejects after `timeoutMs`. */
  async until(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!ready()) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 250));
        this.#waiters.add(done);
      });
    }
  }
}

// --- the server process ----------------------------------------------------------------

/** A running `chat serve` child. */
export interface ServerProcess {
  child: Deno.ChildProcess;
  pid: number;
  port: number;
  keysDir: string;
  /** stderr lines seen so far (only counted; the last few kept for errors). */
  lines: number;
  tail: string[];
}

/** A temporary folder (mode 0700), removed by `cleanup()` or the overall timeout. */
export async function makeTempDir(prefix = "chat-bench-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  tempDirs.push(dir);
  await Deno.chmod(dir, 0o700);
  return dir;
}

/** A temporary keys folder (mode 0700) whose allowlist holds `allowed` as c0, c1… */
export async function makeKeysDir(allowed: KeyPair[]): Promise<string> {
  const dir = await makeTempDir();
  const text = allowed.map((pair, i) => formatAllowLine(pair.publicKey, `c${i}`)).join("\n");
  await Deno.writeTextFile(`${dir}/allowed`, text ? text + "\n" : "", { mode: 0o600 });
  return dir;
}

/** Starts `chat serve` on a free port with `keysDir` and extra `flags`; resolves once it listens. */
/**
 * Flags for a room of `n` clients that all connect from 127.0.0.1: room and handshake caps
 * above `n`, and no per-address connection rate (it sheds a crowd from one address under load,
 * which is the point on the internet but not in a benchmark).
 */
export function crowdFlags(n: number): string[] {
  return [
    "--max-members",
    String(n + 10),
    "--max-handshakes-per-address",
    String(n + 10),
    "--connect-rate",
    BIG,
    "--connect-burst",
    BIG,
  ];
}

export async function startServer(keysDir: string, flags: string[]): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...CHAT_RUN_FLAGS,
      MAIN,
      "--keys",
      keysDir,
      "serve",
      "--port",
      "0",
      "--headless",
      "--name",
      "bench",
      ...flags,
    ],
    cwd: ROOT.pathname,
    env: { NO_COLOR: "1", CHAT_KEYS: "" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  children.add(child);
  const server: ServerProcess = { child, pid: child.pid, port: 0, keysDir, lines: 0, tail: [] };
  try {
    server.port = await waitForListening(server);
  } catch (error) {
    await stopChild(child);
    throw new Error(`${(error as Error).message}\n${server.tail.join("\n")}`);
  }
  return server;
}

/**
 * Resolves with the port `chat serve` listens on, within 20 s, from the stable line it prints
 * for scripts: `chat: listening HOST:PORT KEY`.
 */
async function waitForListening(server: ServerProcess): Promise<number> {
  let port = 0;
  const listening = new Signal();
  drainLog(server, (line) => {
    const match = line.match(/^chat: listening 127\.0\.0\.1:(\d+) chat1\S+$/);
    if (match) {
      port = Number(match[1]);
      listening.notify();
    }
  });
  await listening.until(() => port > 0, 20_000, "chat serve to listen");
  return port;
}

/**
 * Reads the server's stderr for the life of the process (a full pipe would block the server's
 * log), counting lines, keeping the last 20 and handing each to `onLine`.
 */
function drainLog(server: ServerProcess, onLine: (line: string) => void): void {
  (async () => {
    let partial = "";
    for await (const chunk of server.child.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        server.lines++;
        server.tail.push(line);
        if (server.tail.length > 20) server.tail.shift();
        onLine(line);
      }
    }
  })().catch(() => {});
}

// --- clients in this process ------------------------------------------------------------

/** A client session in this process. */
export interface Member {
  chat: ClientChat;
  name: string;
}

/** Joins the server on `port` as `identity` (no server pinning), within 20 s. */
export async function join(
  port: number,
  identity: KeyPair,
  name: string,
  handlers: ChatHandlers,
): Promise<Member> {
  const session = await joinServer({
    hostname: HOST,
    port,
    identity,
    name,
    pins: NO_PINS,
    timeoutMs: 20_000,
  });
  return { chat: new ClientChat(session, handlers), name: session.name };
}

/** Handlers that ignore everything. */
export const quiet: ChatHandlers = {
  message() {},
  presence() {},
  who() {},
  notice() {},
};

/** Opens `identities.length` sessions, `batch` at a time. */
export async function joinAll(
  port: number,
  identities: KeyPair[],
  batch: number,
  handlersOf: (i: number) => ChatHandlers,
): Promise<Member[]> {
  const members: Member[] = [];
  for (let i = 0; i < identities.length; i += batch) {
    const group = identities.slice(i, i + batch);
    members.push(
      ...await Promise.all(group.map((id, j) => join(port, id, `c${i + j}`, handlersOf(i + j)))),
    );
  }
  return members;
}

/** Leaves every session and returns how each ended. */
export async function leaveAll(members: Member[]): Promise<ChatEnd[]> {
  return await Promise.all(members.map((m) => m.chat.leave()));
}

// --- the table ---------------------------------------------------------------------------

/** `x` with thousands separators and exactly `digits` decimals. */
export const f = (x: number, digits = 0) =>
  x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The result table: rows are echoed to stderr as they come, the table goes to stdout at the end. */
export class Table {
  readonly rows: [string, string, string][] = [];

  /** Adds a row and echoes it to stderr. */
  row(what: string, value: string, ratio = ""): void {
    this.rows.push([what, value, ratio]);
    console.error(`  ${what}: ${value}${ratio ? `  (${ratio})` : ""}`);
  }

  /** Prints the rows as a Markdown table on stdout. */
  print(): void {
    const rows = this.rows;
    const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length), 5));
    const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(" | ")} |`;
    console.log(line(["measurement", "value", "ratio"]));
    console.log(line(widths.map((w) => "-".repeat(w))));
    for (const r of rows) console.log(line(r));
  }
}
