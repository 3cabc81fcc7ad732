/**
 * Server benchmark 4, memory: the server's VmRSS before and after `--sessions` idle sessions
 * (opened 50 at a time), its CPU while they idle, and handshakes/s against an allowlist of that
 * many keys (the server re-reads the allowlist on every handshake).
 * @module
 */
import { primitives } from "../../lib/protocol/crypto.ts";
import { type HandshakeFigures, measureHandshakes } from "./handshakes.ts";
import {
  cpuSeconds,
  crowdFlags,
  f,
  join,
  joinAll,
  leaveAll,
  makeKeysDir,
  type Member,
  quiet,
  sleep,
  startServer,
  statusKb,
  stopChild,
  type Table,
} from "./harness.ts";

/** What the memory run measured. */
interface MemoryFigures {
  sessions: number;
  rssBeforeMb: number;
  rssAfterMb: number;
  kbPerSession: number;
  idleCpuPercent: number;
  handshakesBigList: HandshakeFigures;
  joinSeconds: number;
}

/** `n` idle sessions on a fresh server with an `n`-key allowlist; handshakes for `seconds`. */
async function measureMemory(n: number, seconds: number): Promise<MemoryFigures> {
  const identities = Array.from({ length: n }, () => primitives.generateKeyPair());
  const dir = await makeKeysDir(identities);
  const server = await startServer(dir, crowdFlags(n));
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

/**
 * Benchmark 4 with `sessions` idle sessions; `dh` is raw DH ops/s from benchmark 1, the unit of
 * the handshake row.
 */
export async function memoryPhase(
  table: Table,
  sessions: number,
  seconds: number,
  dh: number,
): Promise<void> {
  const dhMs = 1000 / dh;
  const m = await measureMemory(sessions, seconds);
  table.row("server VmRSS before sessions", `${f(m.rssBeforeMb, 1)} MiB`);
  table.row(`server VmRSS with ${m.sessions} idle sessions`, `${f(m.rssAfterMb, 1)} MiB`);
  table.row("memory per idle session", `${f(m.kbPerSession, 1)} KiB`);
  table.row(`joining ${m.sessions} clients, 50 at a time`, `${f(m.joinSeconds, 1)} s`);
  table.row(
    `server CPU while ${m.sessions} sessions idle`,
    `${f(m.idleCpuPercent, 1)} % of a core`,
  );
  const h = m.handshakesBigList;
  table.row(
    `chat serve handshakes/s, 8 conn., ${m.sessions}-key allowlist`,
    `${f(h.perSecond)} /s`,
    `server CPU ${f(h.serverCpuMs, 3)} ms = ${f(h.serverCpuMs / dhMs, 1)} DH`,
  );
}
