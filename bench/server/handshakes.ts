/**
 * Server benchmark 1, handshakes/s: concurrent connections each run the full XX handshake
 * against the control port with a key that is not on the allowlist, read the server's
 * "not-allowed" error (it comes right after m3) and close; against raw X25519 (primitives.dh)
 * ops/s. The CPU time of both processes is read from /proc so the client's share of the cores is
 * visible, and the responder and initiator halves are timed in memory.
 * @module
 */
import { Channel } from "../../lib/protocol/channel.ts";
import { MAX_HANDSHAKE_FRAME_BYTES, PROLOGUE } from "../../lib/protocol/constants.ts";
import { type KeyPair, primitives } from "../../lib/protocol/crypto.ts";
import { encodeFrame } from "../../lib/protocol/frame.ts";
import { XXHandshake } from "../../lib/protocol/handshake.ts";
import { initiateHandshake } from "../../lib/protocol/handshake_io.ts";
import {
  cpuSeconds,
  f,
  HOST,
  makeKeysDir,
  median,
  opsPerSecond,
  type ServerProcess,
  sleep,
  startServer,
  stopChild,
  type Table,
} from "./harness.ts";
import { withDeadline } from "../../lib/protocol/deadline.ts";
import { ANY_MESSAGE, encodeNamePayload } from "../../lib/protocol/messages.ts";

/** What one timed run of refused handshakes measured. */
export interface HandshakeFigures {
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
      codec: ANY_MESSAGE,
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

/** Refused handshakes on `concurrency` connections: 1 s of warm-up, then `ms` counted. */
export async function measureHandshakes(
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

/** The in-process baselines: raw DH and key generation, the two halves of an XX handshake. */
function baselineRows(table: Table): number {
  const alice = primitives.generateKeyPair(), bob = primitives.generateKeyPair();
  const dh = opsPerSecond(() => primitives.dh(alice.secretKey, bob.publicKey));
  const keygen = opsPerSecond(() => primitives.generateKeyPair());
  const halves = handshakeHalves(400);
  const dhMs = 1000 / dh;
  table.row("raw X25519 dh (primitives.dh, in-process) [baseline]", `${f(dh)} /s`, "1 DH");
  table.row("raw generateKeyPair (ephemeral)", `${f(keygen)} /s`, `${f(dh / keygen, 2)} DH`);
  table.row(
    "in-memory XX, responder (server) side",
    `${f(halves.responderMs, 3)} ms`,
    `${f(halves.responderMs / dhMs, 1)} DH`,
  );
  table.row(
    "in-memory XX, initiator (client) side",
    `${f(halves.initiatorMs, 3)} ms`,
    `${f(halves.initiatorMs / dhMs, 1)} DH`,
  );
  return dh;
}

/** The rows of one `measureHandshakes` run against a 1-key allowlist. */
function handshakeRows(table: Table, h: HandshakeFigures, concurrency: number, dh: number) {
  const dhMs = 1000 / dh;
  table.row(
    `chat serve handshakes/s, ${concurrency} connection(s), 1-key allowlist`,
    `${f(h.perSecond)} /s (${h.count}, ${h.failures} failed)`,
    `${f(h.perSecond / dh, 3)} of DH/s = ${f(dh / h.perSecond, 1)} DH-eq/handshake wall`,
  );
  table.row(
    `  server CPU per handshake (${concurrency} conn.)`,
    `${f(h.serverCpuMs, 3)} ms`,
    `${f(h.serverCpuMs / dhMs, 1)} DH; ${f(1000 / h.serverCpuMs)} handshakes per core-s`,
  );
  table.row(
    `  bench (client) CPU per handshake (${concurrency} conn.)`,
    `${f(h.clientCpuMs, 3)} ms`,
    `${f(h.clientCpuMs / dhMs, 1)} DH`,
  );
}

/**
 * Benchmark 1: the baselines, then `seconds` of refused handshakes on 1 and on 8 connections
 * against a server with a 1-key allowlist. Returns raw DH ops/s, the unit of later rows.
 */
export async function handshakePhase(table: Table, seconds: number): Promise<number> {
  const dh = baselineRows(table);
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
      handshakeRows(table, h, concurrency, dh);
    }
  } finally {
    await stopChild(server.child);
  }
  return dh;
}
