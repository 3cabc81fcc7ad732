/**
 * Server benchmark 3, fan-out: `--clients` clients in one room; every line goes to all others.
 * Throughput with 4 lines in flight (senders rotate), then latency with one line at a time; the
 * send time is in the text. Against the raw cipher sealing one relayed message.
 * @module
 */
import type { ChatHandlers } from "../../lib/chat/client.ts";
import { primitives } from "../../lib/protocol/crypto.ts";
import {
  BIG,
  cpuSeconds,
  crowdFlags,
  f,
  joinAll,
  leaveAll,
  makeKeysDir,
  type Member,
  opsPerSecond,
  percentile,
  quiet,
  type ServerProcess,
  Signal,
  sleep,
  startServer,
  stopChild,
  type Table,
} from "./harness.ts";
import { encodeMessage } from "../../lib/protocol/messages.ts";

/** What the fan-out run measured. */
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

const PAD = "p".repeat(40);

/**
 * The room's bookkeeping: every line says `SEQ:SENT_MS:PAD`; each delivery's latency is kept,
 * and a line is complete when all `others` receivers have it.
 */
class FanoutTally {
  /** line → receivers so far */
  readonly receipts = new Map<number, number>();
  readonly progress = new Signal();
  latencies: number[] = [];
  lastLatencies: number[] = [];
  delivered = 0;
  completed = 0;
  seq = 0;

  constructor(readonly others: number) {}

  /** Starts a new count (the receipts of lines still in flight are kept). */
  reset(): void {
    this.latencies = [];
    this.lastLatencies = [];
    this.delivered = 0;
    this.completed = 0;
    this.seq = 0;
  }

  /** Handlers for one receiving client. */
  handlers(): ChatHandlers {
    return {
      ...quiet,
      message: (_from, text) => this.#received(text),
    };
  }

  /** Says the next line from `from`, stamped with the time. */
  say(from: Member): void {
    const line = `${this.seq++}:${performance.now().toFixed(3)}:${PAD}`;
    from.chat.say(line).catch(() => {});
  }

  #received(text: string): void {
    const now = performance.now();
    const colon = text.indexOf(":");
    const seq = Number(text.slice(0, colon));
    const sent = Number(text.slice(colon + 1, text.indexOf(":", colon + 1)));
    this.latencies.push(now - sent);
    this.delivered++;
    const count = (this.receipts.get(seq) ?? 0) + 1;
    if (count === this.others) {
      this.receipts.delete(seq);
      this.completed++;
      this.lastLatencies.push(now - sent);
      this.progress.notify();
    } else this.receipts.set(seq, count);
  }
}

/** Senders rotate for `duration` ms with at most `window` lines in flight; returns elapsed ms. */
async function run(tally: FanoutTally, members: Member[], window: number, duration: number) {
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < duration) {
    if (sent - tally.completed >= window) {
      await tally.progress.until(() => sent - tally.completed < window, 20_000, "fan-out window");
    }
    tally.say(members[sent % members.length]);
    sent++;
  }
  await tally.progress.until(() => tally.completed >= sent, 20_000, "fan-out drain");
  return performance.now() - start;
}

/** 1 s of warm-up, then `ms` with 4 lines in flight, timed and with both processes' CPU. */
async function loaded(server: ServerProcess, tally: FanoutTally, members: Member[], ms: number) {
  tally.reset();
  await run(tally, members, 4, 1000);
  tally.reset();
  const server0 = await cpuSeconds(server.pid), client0 = await cpuSeconds(Deno.pid);
  const elapsed = await run(tally, members, 4, ms);
  const serverCpu = await cpuSeconds(server.pid) - server0,
    clientCpu = await cpuSeconds(Deno.pid) - client0;
  const deliveries = tally.delivered;
  return {
    deliveriesPerSecond: deliveries / (elapsed / 1000),
    linesPerSecond: tally.completed / (elapsed / 1000),
    latencies: tally.latencies.sort((x, y) => x - y),
    serverCpuUsPerDelivery: (serverCpu * 1e6) / deliveries,
    clientCpuUsPerDelivery: (clientCpu * 1e6) / deliveries,
  };
}

/** Unloaded latency: 100 lines one at a time, to all receivers and to the last one. */
async function unloaded(tally: FanoutTally, members: Member[]) {
  tally.reset();
  for (let i = 0; i < 100; i++) {
    tally.say(members[(i * 7) % members.length]);
    await tally.progress.until(() => tally.completed > i, 20_000, "fan-out line");
    await sleep(5);
  }
  return {
    all: tally.latencies.sort((x, y) => x - y),
    last: tally.lastLatencies.sort((x, y) => x - y),
  };
}

/** `n` clients in one room on a fresh server: throughput for `ms`, then unloaded latency. */
async function measureFanout(n: number, ms: number): Promise<FanoutFigures> {
  const identities = Array.from({ length: n }, () => primitives.generateKeyPair());
  const dir = await makeKeysDir(identities);
  const server = await startServer(dir, [
    ...crowdFlags(n),
    "--rate",
    BIG,
    "--burst",
    BIG,
  ]);
  let members: Member[] = [];
  const tally = new FanoutTally(n - 1);
  try {
    const joinStart = performance.now();
    members = await joinAll(server.port, identities, 20, () => tally.handlers());
    const joinSeconds = (performance.now() - joinStart) / 1000;
    await sleep(1000); // let the presence storm settle
    const load = await loaded(server, tally, members, ms);
    const idle = await unloaded(tally, members);
    const ends = await leaveAll(members);
    members = [];
    return {
      clients: n,
      deliveriesPerSecond: load.deliveriesPerSecond,
      linesPerSecond: load.linesPerSecond,
      loadedP50: percentile(load.latencies, 50),
      loadedP99: percentile(load.latencies, 99),
      idleP50: percentile(idle.all, 50),
      idleP99: percentile(idle.all, 99),
      idleLastP50: percentile(idle.last, 50),
      idleLastP99: percentile(idle.last, 99),
      serverCpuUsPerDelivery: load.serverCpuUsPerDelivery,
      clientCpuUsPerDelivery: load.clientCpuUsPerDelivery,
      lost: ends.filter((end) => end.kind !== "left").length,
      joinSeconds,
    };
  } finally {
    await leaveAll(members);
    await stopChild(server.child);
  }
}

/** Benchmark 3: the seal baseline, then `clients` clients in one room for `seconds`. */
export async function fanoutPhase(table: Table, clients: number, seconds: number): Promise<void> {
  const plaintext = encodeMessage({
    type: "msg",
    from: "c199",
    text: `12345:123456.789:${"p".repeat(40)}`,
  });
  const key = new Uint8Array(32), nonce = new Uint8Array(12), ad = new Uint8Array(0);
  const seal = opsPerSecond(() => primitives.encrypt(key, nonce, ad, plaintext));
  const fan = await measureFanout(clients, seconds * 1000);
  table.row(
    `raw cipher: seal one ${plaintext.length}-byte relayed msg [baseline]`,
    `${f(seal)} /s`,
    `${f(1e6 / seal, 2)} µs each`,
  );
  table.row(
    `fan-out, ${fan.clients} clients, 4 lines in flight`,
    `${f(fan.deliveriesPerSecond)} deliveries/s (${f(fan.linesPerSecond)} lines/s)`,
    `${f(fan.deliveriesPerSecond / seal, 3)} of seal/s`,
  );
  table.row(
    "  CPU per delivery: server / bench (199 receivers)",
    `${f(fan.serverCpuUsPerDelivery, 1)} / ${f(fan.clientCpuUsPerDelivery, 1)} µs`,
    `server = ${f(fan.serverCpuUsPerDelivery * seal / 1e6, 1)} seals`,
  );
  table.row(
    "  latency under that load, p50 / p99 (all receivers)",
    `${f(fan.loadedP50, 2)} / ${f(fan.loadedP99, 2)} ms`,
  );
  table.row(
    "  latency one line at a time, p50 / p99 (all receivers)",
    `${f(fan.idleP50, 2)} / ${f(fan.idleP99, 2)} ms`,
  );
  table.row(
    "  ... to the last receiver, p50 / p99",
    `${f(fan.idleLastP50, 2)} / ${f(fan.idleLastP99, 2)} ms`,
  );
  table.row(
    `  joining ${fan.clients} clients, 20 at a time`,
    `${f(fan.joinSeconds, 2)} s`,
    `${fan.lost} sessions lost`,
  );
}
