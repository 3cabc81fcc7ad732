/**
 * Server benchmarks: a real `chat serve` process (spawned as tests/process.ts does) and clients
 * in this process (lib/client.ts over real loopback TCP), each figure against a baseline measured
 * in the same run:
 *
 *   deno run --allow-read --allow-write --allow-net=127.0.0.1 --allow-env --allow-run \
 *     bench/server.ts [--seconds 5] [--mb 64] [--clients 200] [--sessions 1000] [--runs 20] \
 *     [--timeout 600]
 *
 * 1. Handshakes/s: several concurrent connections each run the full XX handshake against the
 *    control port with a key that is not on the allowlist, read the server's "not-allowed" error
 *    (it comes right after m3) and close; against raw X25519 (primitives.dh) ops/s. The CPU time
 *    of both processes is read from /proc so the client's share of the 2 cores is visible, and
 *    the responder and initiator halves are timed in memory. Run twice: allowlist of 1 key and
 *    of `--sessions` keys (the server re-reads and parses the allowlist on every handshake).
 * 2. Bulk: one client says maximal lines (--max-line-bytes 60000), the server relays them to one
 *    other client; at most 8 lines in flight end to end. Against the raw cipher (encrypting the
 *    same plaintext in this process) and raw TCP through a plain relay process
 *    (bench/server_relay.ts), same direction and size.
 * 3. Fan-out: `--clients` clients in one room; every line goes to all others. Throughput with 4
 *    lines in flight (senders rotate), then latency with one line at a time; the send time is in
 *    the text. Against the raw cipher sealing one relayed message.
 * 4. Memory: the server's VmRSS before and after `--sessions` idle sessions (opened 50 at a
 *    time), and its CPU while they idle.
 * 5. Start-up: `chat --help` and `chat pubkey` as spawned processes, median of `--runs`, against
 *    `deno run` of an empty script.
 *
 * Every child is killed in a `finally`, every wait is bounded, and the whole run by --timeout
 * seconds. Figures are reported, never asserted. MB = 10^6 bytes.
 * @module
 */
import { Channel } from "../lib/channel.ts";
import { type ChatEnd, type ChatHandlers, ClientChat, joinServer } from "../lib/client.ts";
import { MAX_HANDSHAKE_FRAME_BYTES, PROLOGUE } from "../lib/constants.ts";
import { type KeyPair, primitives } from "../lib/crypto.ts";
import { withDeadline } from "../lib/errors.ts";
import { encodeFrame } from "../lib/frame.ts";
import { XXHandshake } from "../lib/handshake.ts";
import { formatAllowLine } from "../lib/keys.ts";
import { encodeMessage } from "../lib/channel.ts";
import { encodeNamePayload, initiateHandshake } from "../lib/secure.ts";
import { numberOption } from "./options.ts";

const HOST = "127.0.0.1";
const ROOT = new URL("../", import.meta.url);
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const RELAY = new URL("./server_relay.ts", import.meta.url).pathname;
/** The permissions of the `chat` task in deno.json (as tests/process.ts runs the program). */
const CHAT_PERMISSIONS = ["--allow-read", "--allow-write", "--allow-net", "--allow-env"];
const CLK_TCK = 100;
const NO_PINS = {
  lookupServer: () => Promise.resolve(undefined),
  pinServer: () => Promise.resolve(undefined),
};
const BIG = "1000000000";

// --- arguments -------------------------------------------------------------------

const seconds = numberOption("seconds", 5);
const bulkMb = numberOption("mb", 64);
const clientCount = Math.round(numberOption("clients", 200));
const sessionCount = Math.round(numberOption("sessions", 1000));
const startupRuns = Math.round(numberOption("runs", 20));
const timeoutSeconds = numberOption("timeout", 600);

// --- children and cleanup ------------------------------------------------------------------

const children = new Set<Deno.ChildProcess>();
const tempDirs: string[] = [];

function kill(child: Deno.ChildProcess, signal: Deno.Signal = "SIGKILL"): void {
  try {
    child.kill(signal);
  } catch { /* already exited */ }
}

async function stopChild(child: Deno.ChildProcess, graceMs = 3000): Promise<void> {
  if (!children.has(child)) return;
  kill(child, "SIGTERM");
  await withDeadline(child.status, graceMs, "child did not exit", () => kill(child)).catch(
    () => {},
  );
  kill(child);
  await withDeadline(child.status, 2000, "child did not die", () => {}).catch(() => {});
  children.delete(child);
}

const overall = setTimeout(() => {
  console.error(`server.ts: overall timeout of ${timeoutSeconds} s reached; stopping children`);
  for (const child of children) kill(child);
  for (const dir of tempDirs) {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* best effort */ }
  }
  Deno.exit(124);
}, timeoutSeconds * 1000);

// --- helpers ------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mbPerSecond = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function median(values: number[]): number {
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
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** A /proc/PID/status field in kB (VmRSS, VmHWM…). */
async function statusKb(pid: number, field: string): Promise<number> {
  const status = await readProc(`/proc/${pid}/status`);
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return match ? Number(match[1]) : NaN;
}

/** Operations per second of `work`: the best of 3 passes of about `ms` each. */
function opsPerSecond(work: () => void, ms = 500): number {
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
class Signal {
  #waiters = new Set<() => void>();
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

interface ServerProcess {
  child: Deno.ChildProcess;
  pid: number;
  port: number;
  keysDir: string;
  /** stderr lines seen so far (only counted; the last few kept for errors). */
  lines: number;
  tail: string[];
}

async function makeKeysDir(allowed: KeyPair[]): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "chat-bench-" });
  tempDirs.push(dir);
  await Deno.chmod(dir, 0o700);
  const text = allowed.map((pair, i) => formatAllowLine(pair.publicKey, `c${i}`)).join("\n");
  await Deno.writeTextFile(`${dir}/allowed`, text ? text + "\n" : "", { mode: 0o600 });
  return dir;
}

async function startServer(keysDir: string, flags: string[]): Promise<ServerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...CHAT_PERMISSIONS,
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
  const listening = new Signal();
  // Drain stderr for the life of the process: a full pipe would block the server's log.
  (async () => {
    let partial = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      for (const line of parts) {
        server.lines++;
        server.tail.push(line);
        if (server.tail.length > 20) server.tail.shift();
        const match = line.match(/serving as .* on 127\.0\.0\.1:(\d+)/);
        if (match) server.port = Number(match[1]);
      }
      listening.notify();
    }
  })().catch(() => {});
  try {
    await listening.until(() => server.port > 0, 20_000, "chat serve to listen");
  } catch (error) {
    await stopChild(child);
    throw new Error(`${(error as Error).message}\n${server.tail.join("\n")}`);
  }
  return server;
}

// --- clients in this process ------------------------------------------------------------

interface Member {
  chat: ClientChat;
  name: string;
}

async function join(
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

const quiet: ChatHandlers = {
  message() {},
  presence() {},
  who() {},
  notice() {},
};

/** Opens `identities.length` sessions, `batch` at a time. */
async function joinAll(
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

async function leaveAll(members: Member[]): Promise<ChatEnd[]> {
  return await Promise.all(members.map((m) => m.chat.leave()));
}

// --- 1. handshakes ------------------------------------------------------------------------

interface HandshakeFigures {
  perSecond: number;
  serverCpuMs: number;
  clientCpuMs: number;
  count: number;
  failures: number;
}

/** One full XX handshake as a client, up to the server's refusal; true if it was "not-allowed". */
async function refusedHandshake(port: number, identity: KeyPair): Promise<boolean> {
  const connection = await Deno.connect({ hostname: HOST, port });
  connection.setNoDelay(true);
  try {
    const handshake = await withDeadline(
      initiateHandshake(connection, identity, "bench"),
      10_000,
      "handshake",
      () => connection.close(),
    );
    const channel = new Channel(connection, handshake.send, handshake.receive, {
      reader: handshake.reader,
    });
    const first = await channel.receive(10_000);
    return first?.type === "error" && first.code === "not-allowed";
  } finally {
    try {
      connection.close();
    } catch { /* closed */ }
  }
}

async function measureHandshakes(
  server: ServerProcess,
  concurrency: number,
  ms: number,
): Promise<HandshakeFigures> {
  const stranger = primitives.generateKeyPair();
  let counting = false, count = 0, failures = 0, stop = false;
  const worker = async () => {
    while (!stop) {
      try {
        const ok = await refusedHandshake(server.port, stranger);
        if (counting) ok ? count++ : failures++;
      } catch {
        if (counting) failures++;
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  await sleep(1000); // warm-up
  const server0 = await cpuSeconds(server.pid), client0 = await cpuSeconds(Deno.pid);
  counting = true;
  const start = performance.now();
  await sleep(ms);
  counting = false;
  const elapsed = performance.now() - start;
  const server1 = await cpuSeconds(server.pid), client1 = await cpuSeconds(Deno.pid);
  stop = true;
  await withDeadline(Promise.all(workers), 15_000, "handshake workers", () => {});
  return {
    perSecond: count / (elapsed / 1000),
    serverCpuMs: ((server1 - server0) * 1000) / count,
    clientCpuMs: ((client1 - client0) * 1000) / count,
    count,
    failures,
  };
}

/** Milliseconds of CPU for each side of an in-memory handshake (median of `n`). */
function handshakeHalves(n: number): { initiatorMs: number; responderMs: number } {
  const client = primitives.generateKeyPair(), server = primitives.generateKeyPair();
  const i: number[] = [], r: number[] = [];
  for (let k = 0; k < n; k++) {
    let t = performance.now();
    const initiator = new XXHandshake({
      initiator: true,
      prologue: PROLOGUE,
      staticKeyPair: client,
    });
    const m1 = encodeFrame(initiator.writeMessage1());
    let ti = performance.now() - t;
    t = performance.now();
    const responder = new XXHandshake({
      initiator: false,
      prologue: PROLOGUE,
      staticKeyPair: server,
    });
    responder.readMessage1(m1.subarray(2));
    const m2 = encodeFrame(responder.writeMessage2(encodeNamePayload("bench")));
    let tr = performance.now() - t;
    t = performance.now();
    initiator.readMessage2(m2.subarray(2));
    const m3 = encodeFrame(initiator.writeMessage3(encodeNamePayload("bench")));
    initiator.split();
    ti += performance.now() - t;
    t = performance.now();
    responder.readMessage3(m3.subarray(2));
    responder.split();
    tr += performance.now() - t;
    if (m2.length > MAX_HANDSHAKE_FRAME_BYTES) throw new Error("m2 too large");
    i.push(ti);
    r.push(tr);
  }
  return { initiatorMs: median(i), responderMs: median(r) };
}

// --- 2. bulk --------------------------------------------------------------------------------

const WINDOW_BULK = 8;

async function rawRelay(bytes: number, chunk: number): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--no-prompt", "--allow-net=127.0.0.1", RELAY],
    cwd: ROOT.pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  children.add(child);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const first = await withDeadline(reader.read(), 20_000, "relay port", () => kill(child));
    reader.releaseLock();
    const port = Number(first.value?.trim());
    const source = await Deno.connect({ hostname: HOST, port });
    const sink = await Deno.connect({ hostname: HOST, port });
    source.setNoDelay(true);
    sink.setNoDelay(true);
    await sleep(100); // both accepted, in order
    const data = new Uint8Array(chunk).fill(120);
    const start = performance.now();
    const receiving = (async () => {
      const buffer = new Uint8Array(256 * 1024);
      let got = 0;
      while (got < bytes) {
        const n = await sink.read(buffer);
        if (n === null) break;
        got += n;
      }
      return got;
    })();
    for (let sent = 0; sent < bytes; sent += chunk) {
      let offset = 0;
      while (offset < chunk) offset += await source.write(data.subarray(offset));
    }
    const got = await withDeadline(receiving, 60_000, "relay stream", () => sink.close());
    const elapsed = performance.now() - start;
    source.close();
    sink.close();
    if (got < bytes) throw new Error(`relay delivered ${got} of ${bytes} bytes`);
    return mbPerSecond(bytes, elapsed);
  } finally {
    await stopChild(child, 2000);
  }
}

interface BulkFigures {
  mbPerSecond: number;
  serverCpuPerMb: number;
  clientCpuPerMb: number;
}

async function measureBulk(lineBytes: number, totalBytes: number): Promise<BulkFigures> {
  const a = primitives.generateKeyPair(), b = primitives.generateKeyPair();
  const dir = await makeKeysDir([a, b]);
  const server = await startServer(dir, [
    "--max-line-bytes",
    String(lineBytes),
    "--rate",
    BIG,
    "--burst",
    BIG,
    "--max-queue-bytes",
    String(64 * 1024 * 1024),
  ]);
  const members: Member[] = [];
  try {
    let received = 0, receivedBytes = 0;
    const progress = new Signal();
    const sender = await join(server.port, a, "a", quiet);
    members.push(sender);
    members.push(
      await join(server.port, b, "b", {
        ...quiet,
        message(_from, text) {
          received++;
          receivedBytes += text.length;
          progress.notify();
        },
      }),
    );
    const text = "x".repeat(lineBytes);
    const lines = Math.ceil(totalBytes / lineBytes);
    // warm-up: 32 lines
    for (let i = 0; i < 32; i++) sender.chat.say(text).catch(() => {});
    await progress.until(() => received >= 32, 30_000, "bulk warm-up");
    received = 0;
    receivedBytes = 0;
    const server0 = await cpuSeconds(server.pid), client0 = await cpuSeconds(Deno.pid);
    const start = performance.now();
    for (let i = 0; i < lines; i++) {
      if (i - received >= WINDOW_BULK) {
        await progress.until(() => i - received < WINDOW_BULK, 30_000, "bulk window");
      }
      sender.chat.say(text).catch(() => {});
    }
    await progress.until(() => received >= lines, 60_000, "bulk end");
    const elapsed = performance.now() - start;
    const mb = receivedBytes / 1e6;
    return {
      mbPerSecond: mbPerSecond(receivedBytes, elapsed),
      serverCpuPerMb: ((await cpuSeconds(server.pid) - server0) * 1000) / mb,
      clientCpuPerMb: ((await cpuSeconds(Deno.pid) - client0) * 1000) / mb,
    };
  } finally {
    await leaveAll(members);
    await stopChild(server.child);
  }
}

// --- 3. fan-out -------------------------------------------------------------------------------

interface FanoutFigures {
  clients: number;
  deliveriesPerSecond: number;
  linesPerSecond: number;
  loadedP50: number;
  loadedP99: number;
  idleP50: number;
  idleP99: number;
  idleLastP50: number;
  idleLastP99: number;
  serverCpuUsPerDelivery: number;
  clientCpuUsPerDelivery: number;
  lost: number;
  joinSeconds: number;
}

async function measureFanout(n: number, ms: number): Promise<FanoutFigures> {
  const identities = Array.from({ length: n }, () => primitives.generateKeyPair());
  const dir = await makeKeysDir(identities);
  const server = await startServer(dir, [
    "--max-members",
    String(n + 10),
    "--max-handshakes-per-address",
    String(n + 10),
    "--rate",
    BIG,
    "--burst",
    BIG,
  ]);
  let members: Member[] = [];
  const others = n - 1;
  const receipts = new Map<number, number>(); // line → receivers so far
  let latencies: number[] = [];
  let lastLatencies: number[] = [];
  let delivered = 0, completed = 0;
  const progress = new Signal();
  const handlers = (): ChatHandlers => ({
    ...quiet,
    message(_from, text) {
      const now = performance.now();
      const colon = text.indexOf(":");
      const seq = Number(text.slice(0, colon));
      const sent = Number(text.slice(colon + 1, text.indexOf(":", colon + 1)));
      latencies.push(now - sent);
      delivered++;
      const count = (receipts.get(seq) ?? 0) + 1;
      if (count === others) {
        receipts.delete(seq);
        completed++;
        lastLatencies.push(now - sent);
        progress.notify();
      } else receipts.set(seq, count);
    },
  });
  const pad = "p".repeat(40);
  let seq = 0;
  const say = (from: Member) => {
    const line = `${seq++}:${performance.now().toFixed(3)}:${pad}`;
    from.chat.say(line).catch(() => {});
  };
  try {
    const joinStart = performance.now();
    members = await joinAll(server.port, identities, 20, handlers);
    const joinSeconds = (performance.now() - joinStart) / 1000;
    await sleep(1000); // let the presence storm settle

    // warm-up, then throughput with 4 lines in flight
    const run = async (window: number, duration: number) => {
      const start = performance.now();
      let sent = 0;
      while (performance.now() - start < duration) {
        if (sent - completed >= window) {
          await progress.until(() => sent - completed < window, 20_000, "fan-out window");
        }
        say(members[sent % n]);
        sent++;
      }
      await progress.until(() => completed >= sent, 20_000, "fan-out drain");
      return performance.now() - start;
    };
    completed = 0;
    seq = 0;
    await run(4, 1000);
    latencies = [];
    lastLatencies = [];
    delivered = 0;
    completed = 0;
    seq = 0;
    const server0 = await cpuSeconds(server.pid), client0 = await cpuSeconds(Deno.pid);
    const elapsed = await run(4, ms);
    const serverCpu = await cpuSeconds(server.pid) - server0,
      clientCpu = await cpuSeconds(Deno.pid) - client0;
    const loaded = latencies.sort((x, y) => x - y);
    const deliveries = delivered;
    const lines = completed;

    // unloaded latency: one line at a time
    latencies = [];
    lastLatencies = [];
    completed = 0;
    seq = 0;
    for (let i = 0; i < 100; i++) {
      say(members[(i * 7) % n]);
      await progress.until(() => completed > i, 20_000, "fan-out line");
      await sleep(5);
    }
    const idle = latencies.sort((x, y) => x - y);
    const idleLast = lastLatencies.sort((x, y) => x - y);
    const ends = await leaveAll(members);
    members = [];
    return {
      clients: n,
      deliveriesPerSecond: deliveries / (elapsed / 1000),
      linesPerSecond: lines / (elapsed / 1000),
      loadedP50: percentile(loaded, 50),
      loadedP99: percentile(loaded, 99),
      idleP50: percentile(idle, 50),
      idleP99: percentile(idle, 99),
      idleLastP50: percentile(idleLast, 50),
      idleLastP99: percentile(idleLast, 99),
      serverCpuUsPerDelivery: (serverCpu * 1e6) / deliveries,
      clientCpuUsPerDelivery: (clientCpu * 1e6) / deliveries,
      lost: ends.filter((end) => end.kind !== "left").length,
      joinSeconds,
    };
  } finally {
    await leaveAll(members);
    await stopChild(server.child);
  }
}

// --- 4. memory -------------------------------------------------------------------------------

interface MemoryFigures {
  sessions: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  kbPerSession: number;
  idleCpuPercent: number;
  handshakesBigList: HandshakeFigures;
  joinSeconds: number;
}

async function measureMemory(n: number): Promise<MemoryFigures> {
  const identities = Array.from({ length: n }, () => primitives.generateKeyPair());
  const dir = await makeKeysDir(identities);
  const server = await startServer(dir, [
    "--max-members",
    String(n + 10),
    "--max-handshakes-per-address",
    String(n + 10),
  ]);
  let members: Member[] = [];
  try {
    // one session opened and closed first, so lazily loaded code is in "before"
    const warm = await join(server.port, identities[0], "warm", quiet);
    await leaveAll([warm]);
    await sleep(1500);
    const before = await statusKb(server.pid, "VmRSS");
    const joinStart = performance.now();
    members = await joinAll(server.port, identities, 50, () => quiet);
    const joinSeconds = (performance.now() - joinStart) / 1000;
    await sleep(3000);
    const after = await statusKb(server.pid, "VmRSS");
    const cpu0 = await cpuSeconds(server.pid), t0 = performance.now();
    await sleep(5000);
    const idleCpuPercent =
      ((await cpuSeconds(server.pid) - cpu0) / ((performance.now() - t0) / 1000)) *
      100;
    // handshakes against a server whose allowlist has n keys (parsed on every handshake)
    const handshakesBigList = await measureHandshakes(server, 8, Math.min(3000, seconds * 1000));
    return {
      sessions: n,
      rssBeforeMb: before / 1024,
      rssAfterMb: after / 1024,
      kbPerSession: (after - before) / n,
      idleCpuPercent,
      handshakesBigList,
      joinSeconds,
    };
  } finally {
    await leaveAll(members);
    await stopChild(server.child, 5000);
  }
}

// --- 5. start-up ---------------------------------------------------------------------------

async function timeRun(args: string[], cwd: string): Promise<number> {
  const start = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", CHAT_KEYS: "" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const elapsed = performance.now() - start;
  if (!output.success) {
    throw new Error(`deno ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return elapsed;
}

async function measureStartup(runs: number) {
  const dir = await makeKeysDir([]);
  const empty = `${dir}/empty.ts`;
  await Deno.writeTextFile(empty, "");
  // an identity for `chat pubkey`
  await timeRun(["run", ...CHAT_PERMISSIONS, MAIN, "--keys", dir, "keygen"], ROOT.pathname);
  const cases: [string, string[], string][] = [
    ["deno run empty.ts", ["run", empty], dir],
    ["chat --help", ["run", ...CHAT_PERMISSIONS, MAIN, "--help"], ROOT.pathname],
    ["chat pubkey", ["run", ...CHAT_PERMISSIONS, MAIN, "--keys", dir, "pubkey"], ROOT.pathname],
  ];
  const times = cases.map(() => [] as number[]);
  for (let run = -2; run < runs; run++) {
    for (const [i, [, args, cwd]] of cases.entries()) {
      const ms = await withDeadline(timeRun(args, cwd), 20_000, "start-up run", () => {});
      if (run >= 0) times[i].push(ms);
    }
  }
  return cases.map(([name], i) => {
    const sorted = times[i].sort((a, b) => a - b);
    return { name, median: percentile(sorted, 50), p90: percentile(sorted, 90) };
  });
}

// --- main ------------------------------------------------------------------------------------

const f = (x: number, digits = 0) =>
  x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const rows: [string, string, string][] = [];
const row = (what: string, value: string, ratio = "") => {
  rows.push([what, value, ratio]);
  console.error(`  ${what}: ${value}${ratio ? `  (${ratio})` : ""}`);
};

try {
  console.error(`server.ts: ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`);

  // 1. handshakes
  console.error("1. handshakes");
  const alice = primitives.generateKeyPair(), bob = primitives.generateKeyPair();
  const dh = opsPerSecond(() => primitives.dh(alice.secretKey, bob.publicKey));
  const keygen = opsPerSecond(() => primitives.generateKeyPair());
  const halves = handshakeHalves(400);
  const dhMs = 1000 / dh;
  row("raw X25519 dh (primitives.dh, in-process) [baseline]", `${f(dh)} /s`, "1 DH");
  row("raw generateKeyPair (ephemeral)", `${f(keygen)} /s`, `${f(dh / keygen, 2)} DH`);
  row(
    "in-memory XX, responder (server) side",
    `${f(halves.responderMs, 3)} ms`,
    `${f(halves.responderMs / dhMs, 1)} DH`,
  );
  row(
    "in-memory XX, initiator (client) side",
    `${f(halves.initiatorMs, 3)} ms`,
    `${f(halves.initiatorMs / dhMs, 1)} DH`,
  );
  {
    const dir = await makeKeysDir([primitives.generateKeyPair()]);
    const server = await startServer(dir, [
      "--max-handshakes-per-address",
      "100000",
      "--max-handshakes",
      "100000",
    ]);
    try {
      for (const concurrency of [1, 8]) {
        const h = await measureHandshakes(server, concurrency, seconds * 1000);
        row(
          `chat serve handshakes/s, ${concurrency} connection(s), 1-key allowlist`,
          `${f(h.perSecond)} /s (${h.count}, ${h.failures} failed)`,
          `${f(h.perSecond / dh, 3)} of DH/s = ${f(dh / h.perSecond, 1)} DH-eq/handshake wall`,
        );
        row(
          `  server CPU per handshake (${concurrency} conn.)`,
          `${f(h.serverCpuMs, 3)} ms`,
          `${f(h.serverCpuMs / dhMs, 1)} DH; ${f(1000 / h.serverCpuMs)} handshakes per core-s`,
        );
        row(
          `  bench (client) CPU per handshake (${concurrency} conn.)`,
          `${f(h.clientCpuMs, 3)} ms`,
          `${f(h.clientCpuMs / dhMs, 1)} DH`,
        );
      }
    } finally {
      await stopChild(server.child);
    }
  }

  // 2. bulk
  console.error("2. bulk");
  {
    const lineBytes = 60000;
    const plaintext = encodeMessage({ type: "msg", from: "a", text: "x".repeat(lineBytes) });
    const key = new Uint8Array(32), nonce = new Uint8Array(12), ad = new Uint8Array(0);
    const sealRate = opsPerSecond(() => primitives.encrypt(key, nonce, ad, plaintext)) *
      lineBytes / 1e6;
    const sealed = primitives.encrypt(key, nonce, ad, plaintext);
    const openRate = opsPerSecond(() => primitives.decrypt(key, nonce, ad, sealed)) *
      lineBytes / 1e6;
    const total = Math.round(bulkMb * 1e6);
    const relay = await rawRelay(total, lineBytes);
    const bulk = await measureBulk(lineBytes, total);
    row("raw cipher: encrypt 60 KB line in-process [baseline]", `${f(sealRate)} MB/s`, "1.00");
    row(
      "raw cipher: decrypt 60 KB line in-process",
      `${f(openRate)} MB/s`,
      f(openRate / sealRate, 2),
    );
    row(
      "raw TCP through a relay process (60 KB writes) [baseline]",
      `${f(relay)} MB/s`,
      f(relay / sealRate, 2),
    );
    row(
      "chat serve relay, 60 KB lines, A → server → B",
      `${f(bulk.mbPerSecond)} MB/s`,
      `${f(bulk.mbPerSecond / sealRate, 2)} of cipher, ${f(bulk.mbPerSecond / relay, 3)} of TCP`,
    );
    row(
      "  CPU per MB relayed: server / bench (both clients)",
      `${f(bulk.serverCpuPerMb, 2)} / ${f(bulk.clientCpuPerMb, 2)} ms`,
      `server alone could do ~${f(1000 / bulk.serverCpuPerMb)} MB/s per core`,
    );
  }

  // 3. fan-out
  console.error("3. fan-out");
  {
    const plaintext = encodeMessage({
      type: "msg",
      from: "c199",
      text: `12345:123456.789:${"p".repeat(40)}`,
    });
    const key = new Uint8Array(32), nonce = new Uint8Array(12), ad = new Uint8Array(0);
    const seal = opsPerSecond(() => primitives.encrypt(key, nonce, ad, plaintext));
    const fan = await measureFanout(clientCount, seconds * 1000);
    row(
      `raw cipher: seal one ${plaintext.length}-byte relayed msg [baseline]`,
      `${f(seal)} /s`,
      `${f(1e6 / seal, 2)} µs each`,
    );
    row(
      `fan-out, ${fan.clients} clients, 4 lines in flight`,
      `${f(fan.deliveriesPerSecond)} deliveries/s (${f(fan.linesPerSecond)} lines/s)`,
      `${f(fan.deliveriesPerSecond / seal, 3)} of seal/s`,
    );
    row(
      "  CPU per delivery: server / bench (199 receivers)",
      `${f(fan.serverCpuUsPerDelivery, 1)} / ${f(fan.clientCpuUsPerDelivery, 1)} µs`,
      `server = ${f(fan.serverCpuUsPerDelivery * seal / 1e6, 1)} seals`,
    );
    row(
      "  latency under that load, p50 / p99 (all receivers)",
      `${f(fan.loadedP50, 2)} / ${f(fan.loadedP99, 2)} ms`,
    );
    row(
      "  latency one line at a time, p50 / p99 (all receivers)",
      `${f(fan.idleP50, 2)} / ${f(fan.idleP99, 2)} ms`,
    );
    row(
      "  ... to the last receiver, p50 / p99",
      `${f(fan.idleLastP50, 2)} / ${f(fan.idleLastP99, 2)} ms`,
    );
    row(
      `  joining ${fan.clients} clients, 20 at a time`,
      `${f(fan.joinSeconds, 2)} s`,
      `${fan.lost} sessions lost`,
    );
  }

  // 4. memory
  console.error("4. memory");
  {
    const m = await measureMemory(sessionCount);
    row("server VmRSS before sessions", `${f(m.rssBeforeMb, 1)} MiB`);
    row(`server VmRSS with ${m.sessions} idle sessions`, `${f(m.rssAfterMb, 1)} MiB`);
    row("memory per idle session", `${f(m.kbPerSession, 1)} KiB`);
    row(`joining ${m.sessions} clients, 50 at a time`, `${f(m.joinSeconds, 1)} s`);
    row(`server CPU while ${m.sessions} sessions idle`, `${f(m.idleCpuPercent, 1)} % of a core`);
    const h = m.handshakesBigList;
    row(
      `chat serve handshakes/s, 8 conn., ${m.sessions}-key allowlist`,
      `${f(h.perSecond)} /s`,
      `server CPU ${f(h.serverCpuMs, 3)} ms = ${f(h.serverCpuMs / dhMs, 1)} DH`,
    );
  }

  // 5. start-up
  console.error("5. start-up");
  {
    const s = await measureStartup(startupRuns);
    const base = s[0].median;
    for (const { name, median, p90 } of s) {
      row(
        `${name}, median / p90 of ${startupRuns}${name.startsWith("deno") ? " [baseline]" : ""}`,
        `${f(median, 1)} / ${f(p90, 1)} ms`,
        `${f(median / base, 2)}x`,
      );
    }
  }
} finally {
  for (const child of [...children]) await stopChild(child);
  for (const dir of tempDirs) await Deno.remove(dir, { recursive: true }).catch(() => {});
  clearTimeout(overall);
}

// the table
const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => r[c].length), 5));
const line = (r: string[]) => `| ${r.map((cell, c) => cell.padEnd(widths[c])).join(" | ")} |`;
console.log(line(["measurement", "value", "ratio"]));
console.log(line(widths.map((w) => "-".repeat(w))));
for (const r of rows) console.log(line(r));
