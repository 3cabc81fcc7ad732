/**
 * Server benchmarks: a real `chat serve` process (spawned as tests/process.ts does) and clients
 * in this process (lib/client.ts over real loopback TCP), each figure against a baseline measured
 * in the same run:
 *
 *   deno run --allow-read --allow-write --allow-net=127.0.0.1 --allow-env --allow-run \
 *     bench/server.ts [--seconds 5] [--mb 64] [--clients 200] [--sessions 1000] [--runs 20] \
 *     [--timeout 600]
 *
 * 1. Handshakes/s (bench/server/handshakes.ts): refused XX handshakes on 1 and 8 connections
 *    against raw X25519 ops/s, with both processes' CPU and the in-memory halves.
 * 2. Bulk (bench/server/bulk.ts): 60 KB lines relayed from one client to another, against the
 *    raw cipher and raw TCP through a plain relay process (bench/server/relay.ts).
 * 3. Fan-out (bench/server/fanout.ts): `--clients` clients in one room, throughput and latency,
 *    against the raw cipher sealing one relayed message.
 * 4. Memory (bench/server/memory.ts): VmRSS with `--sessions` idle sessions, idle CPU, and
 *    handshakes/s against a `--sessions`-key allowlist.
 * 5. Start-up (bench/server/startup.ts): `chat --help` and `chat pubkey`, median of `--runs`,
 *    against `deno run` of an empty script.
 *
 * The harness (bench/server/harness.ts) kills every child in a `finally`, bounds every wait, and
 * the whole run by --timeout seconds. Figures are reported, never asserted. MB = 10^6 bytes.
 * The table goes to stdout at the end; progress and each row as it comes go to stderr.
 * @module
 */
import { bulkPhase } from "./server/bulk.ts";
import { fanoutPhase } from "./server/fanout.ts";
import { handshakePhase } from "./server/handshakes.ts";
import { cleanup, readOptions, startOverallTimeout, Table } from "./server/harness.ts";
import { memoryPhase } from "./server/memory.ts";
import { startupPhase } from "./server/startup.ts";

const options = readOptions();
const overall = startOverallTimeout(options.timeoutSeconds);
const table = new Table();

try {
  console.error(`server.ts: ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores`);
  console.error("1. handshakes");
  const dh = await handshakePhase(table, options.seconds);
  console.error("2. bulk");
  await bulkPhase(table, options.bulkMb);
  console.error("3. fan-out");
  await fanoutPhase(table, options.clientCount, options.seconds);
  console.error("4. memory");
  await memoryPhase(table, options.sessionCount, options.seconds, dh);
  console.error("5. start-up");
  await startupPhase(table, options.startupRuns);
} finally {
  await cleanup(overall);
}

table.print();
