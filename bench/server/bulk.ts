/**
 * Server benchmark 2, bulk: one client says maximal lines (--max-line-bytes 60000), the server
 * relays them to one other client; at most 8 lines in flight end to end. Against the raw cipher
 * (encrypting the same plaintext in this process) and raw TCP through a plain relay process
 * (bench/server/relay.ts), same direction and size.
 * @module
 */
import { primitives } from "../../lib/protocol/crypto.ts";
import {
  BIG,
  children,
  cpuSeconds,
  f,
  HOST,
  join,
  kill,
  leaveAll,
  makeKeysDir,
  mbPerSecond,
  type Member,
  opsPerSecond,
  quiet,
  ROOT,
  type ServerProcess,
  Signal,
  sleep,
  startServer,
  stopChild,
  type Table,
} from "./harness.ts";
import { encodeMessage } from "../../lib/protocol/messages.ts";
import { withDeadline } from "../../lib/protocol/deadline.ts";

const RELAY = new URL("./relay.ts", import.meta.url).pathname;
/** Lines in flight end to end. */
const WINDOW_BULK = 8;
/** The relayed line: far above the default 16 KiB limit, to measure the data path. */
const LINE_BYTES = 60000;

/** MB/s of `bytes` of plain bytes in `chunk`-byte writes, bench → relay process → bench. */
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
    return await streamThrough(source, sink, bytes, chunk);
  } finally {
    await stopChild(child, 2000);
  }
}

/** Writes `bytes` to `source` in `chunk`-byte writes and times their arrival at `sink`. */
async function streamThrough(
  source: Deno.Conn,
  sink: Deno.Conn,
  bytes: number,
  chunk: number,
): Promise<number> {
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
}

/** What the relay through `chat serve` measured. */
interface BulkFigures {
  mbPerSecond: number;
  serverCpuPerMb: number;
  clientCpuPerMb: number;
}

/** `totalBytes` in `lineBytes` lines from client a through `chat serve` to client b. */
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
    const tally = { received: 0, receivedBytes: 0, progress: new Signal() };
    const sender = await join(server.port, a, "a", quiet);
    members.push(sender);
    members.push(
      await join(server.port, b, "b", {
        ...quiet,
        message(_from, text) {
          tally.received++;
          tally.receivedBytes += text.length;
          tally.progress.notify();
        },
      }),
    );
    return await relayLines(server, sender, tally, lineBytes, totalBytes);
  } finally {
    await leaveAll(members);
    await stopChild(server.child);
  }
}

/** The receiving client's count of lines and bytes, and a signal on each line. */
interface BulkTally {
  received: number;
  receivedBytes: number;
  progress: Signal;
}

/** 32 warm-up lines, then the timed relay with at most WINDOW_BULK lines in flight. */
async function relayLines(
  server: ServerProcess,
  sender: Member,
  tally: BulkTally,
  lineBytes: number,
  totalBytes: number,
): Promise<BulkFigures> {
  const text = "x".repeat(lineBytes);
  const lines = Math.ceil(totalBytes / lineBytes);
  // warm-up: 32 lines
  for (let i = 0; i < 32; i++) sender.chat.say(text).catch(() => {});
  await tally.progress.until(() => tally.received >= 32, 30_000, "bulk warm-up");
  tally.received = 0;
  tally.receivedBytes = 0;
  const server0 = await cpuSeconds(server.pid), client0 = await cpuSeconds(Deno.pid);
  const start = performance.now();
  for (let i = 0; i < lines; i++) {
    if (i - tally.received >= WINDOW_BULK) {
      await tally.progress.until(() => i - tally.received < WINDOW_BULK, 30_000, "bulk window");
    }
    sender.chat.say(text).catch(() => {});
  }
  await tally.progress.until(() => tally.received >= lines, 60_000, "bulk end");
  const elapsed = performance.now() - start;
  const mb = tally.receivedBytes / 1e6;
  return {
    mbPerSecond: mbPerSecond(tally.receivedBytes, elapsed),
    serverCpuPerMb: ((await cpuSeconds(server.pid) - server0) * 1000) / mb,
    clientCpuPerMb: ((await cpuSeconds(Deno.pid) - client0) * 1000) / mb,
  };
}

/** Benchmark 2: the cipher and raw-TCP baselines, then `mb` MB relayed by `chat serve`. */
export async function bulkPhase(table: Table, mb: number): Promise<void> {
  const lineBytes = LINE_BYTES;
  const plaintext = encodeMessage({ type: "msg", from: "a", text: "x".repeat(lineBytes) });
  const key = new Uint8Array(32), nonce = new Uint8Array(12), ad = new Uint8Array(0);
  const sealRate = opsPerSecond(() => primitives.encrypt(key, nonce, ad, plaintext)) *
    lineBytes / 1e6;
  const sealed = primitives.encrypt(key, nonce, ad, plaintext);
  const openRate = opsPerSecond(() => primitives.decrypt(key, nonce, ad, sealed)) *
    lineBytes / 1e6;
  const total = Math.round(mb * 1e6);
  const relay = await rawRelay(total, lineBytes);
  const bulk = await measureBulk(lineBytes, total);
  table.row("raw cipher: encrypt 60 KB line in-process [baseline]", `${f(sealRate)} MB/s`, "1.00");
  table.row(
    "raw cipher: decrypt 60 KB line in-process",
    `${f(openRate)} MB/s`,
    f(openRate / sealRate, 2),
  );
  table.row(
    "raw TCP through a relay process (60 KB writes) [baseline]",
    `${f(relay)} MB/s`,
    f(relay / sealRate, 2),
  );
  table.row(
    "chat serve relay, 60 KB lines, A → server → B",
    `${f(bulk.mbPerSecond)} MB/s`,
    `${f(bulk.mbPerSecond / sealRate, 2)} of cipher, ${f(bulk.mbPerSecond / relay, 3)} of TCP`,
  );
  table.row(
    "  CPU per MB relayed: server / bench (both clients)",
    `${f(bulk.serverCpuPerMb, 2)} / ${f(bulk.clientCpuPerMb, 2)} ms`,
    `server alone could do ~${f(1000 / bulk.serverCpuPerMb)} MB/s per core`,
  );
}
