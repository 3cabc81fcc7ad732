/**
 * File transfer benchmark: one file from a `chat send --file` process through a real
 * `chat serve` to a `chat listen --accept-files` process, on 127.0.0.1, against baselines
 * measured in the same run:
 *
 *   deno run --allow-read --allow-write --allow-net=127.0.0.1 --allow-env --allow-run \
 *     bench/files.ts [--mib 256] [--repeat 1] [--timeout 300]
 *
 * 1. chat (bench/files/room.ts): `--mib` MiB of random bytes, `chat send --file PATH --to recv`
 *    timed from its spawn to its exit 0 (which means the receiver has the whole file and checked
 *    its SHA-256); the received copy is compared with the source by SHA-256 here as well.
 * 2. scp (bench/files/scp.ts): the same file through a private sshd (Debian's openssh-server,
 *    its own keys and sshd_config in a temporary folder) with the default cipher, with
 *    chacha20-poly1305@openssh.com (chat's cipher) and with aes128-gcm@openssh.com. Skipped,
 *    and said so, when /usr/sbin/sshd is missing.
 * 3. raw cipher (bench/raw_cipher.ts): the bare node:crypto ChaCha20-Poly1305 seal of 65519-byte
 *    plaintexts in this process, the best pass before and after the transfers.
 * 4. server memory: the `chat serve` process's VmRSS before the transfer (everyone but the sender
 *    joined) and every 100 ms during it.
 * 5. line latency (bench/files/probe.ts): probe A (in this process) says 20 lines a second; their
 *    delivery is timed at the receiver process (`chat listen --json`, whose connection carries
 *    the file; timed when this process reads its stdout) and at probe B (in this process), for
 *    3 s with no transfer (the baseline) and during every transfer.
 *
 * With `--repeat N` the transfers run N times, interleaved, and medians are reported. Every wait
 * is bounded, the whole run by `--timeout` seconds; every child is killed and every temporary
 * folder removed in a `finally`. Figures are reported, never asserted. The table goes to stdout,
 * progress to stderr. MB = 10^6 bytes, MiB = 2^20 bytes.
 * @module
 */
import { randomBytes } from "node:crypto";
import { numberOption } from "./options.ts";
import { bareNodeSeal } from "./raw_cipher.ts";
import {
  cleanup,
  f,
  makeTempDir,
  median,
  sleep,
  startOverallTimeout,
  Table,
} from "./server/harness.ts";
import { chatCommand, run } from "./files/children.ts";
import { writeRandomFile } from "./files/data.ts";
import { PROBE_PATHS, type ProbeWindow, summary } from "./files/probe.ts";
import { FileRoom, type TransferFigures } from "./files/room.ts";
import { CHAT_CIPHER, PrivateSshd, type ScpCopy, scpMissing } from "./files/scp.ts";

const MIB = 1024 * 1024;
/** The plaintext of one full transport frame: 65535 - 16 bytes of tag. */
const FRAME_PLAINTEXT_BYTES = 65519;
/** Probe lines a second, idle and during transfers. */
const LINES_PER_SECOND = 20;
/** Length of the idle latency window (the baseline). */
const IDLE_SECONDS = 3;
/** The extra scp cipher: AES-GCM, which this CPU accelerates. */
const AES_CIPHER = "aes128-gcm@openssh.com";
/** Targets (docs/BENCHMARKS.md). */
const TARGET_SCP_RATIO = 0.5, TARGET_RSS_MIB = 32, TARGET_P99_MS = 50;

const mib = numberOption("mib", 256);
const repeat = Math.round(numberOption("repeat", 1));
const timeoutSeconds = numberOption("timeout", 300);
const bytes = Math.round(mib * MIB);

/** Whether this chat has file transfer: `chat listen --help` lists --accept-files. */
async function hasFileTransfer(): Promise<boolean> {
  const help = await run(...chatCommand(["listen", "--help"]));
  return help.stdout.concat(help.stderr).some((line) => line.includes("--accept-files"));
}

/** Everything measured, for the table. */
interface Results {
  rawCipher: number;
  chat: TransferFigures[];
  scp: { default: ScpCopy[]; chacha: ScpCopy[]; aes: ScpCopy[] };
  negotiated?: { cipher: string; version: string };
  idle?: ProbeWindow;
  room?: FileRoom;
  /** Why a part was skipped or failed, said plainly under the table. */
  problems: string[];
}

const results: Results = {
  rawCipher: 0,
  chat: [],
  scp: { default: [], chacha: [], aes: [] },
  problems: [],
};
const overall = startOverallTimeout(timeoutSeconds, "files.ts");
let sshd: PrivateSshd | undefined;
try {
  console.error(
    `files.ts: ${mib} MiB, ${repeat} run(s); deno ${Deno.version.deno}, ` +
      `${navigator.hardwareConcurrency} CPUs`,
  );
  const dir = await makeTempDir("chat-files-");
  const plaintext = randomBytes(FRAME_PLAINTEXT_BYTES);
  const rawBefore = bareNodeSeal(plaintext);
  sshd = await startSshd(`${dir}/ssh`, results);
  const room = await openRoom(`${dir}/chat`, results);
  let chatFailed = !room?.files;
  for (let round = 1; round <= repeat; round++) {
    // a new file each round: chat send resumes a file the receiver has seen before
    const source = `${dir}/random-${mib}MiB-${round}.bin`;
    const sha256 = await writeRandomFile(source, bytes);
    if (room && !chatFailed) {
      console.error(`  run ${round}: chat`);
      try {
        const figures = await room.transfer(source, bytes, sha256, LINES_PER_SECOND);
        results.chat.push(figures);
        console.error(`    ${f(figures.mbPerSecond)} MB/s in ${f(figures.ms)} ms`);
      } catch (error) {
        chatFailed = true;
        results.problems.push(`chat transfer FAILED in run ${round}: ${(error as Error).message}`);
        console.error(`    failed: ${(error as Error).message.split("\n")[0]}`);
      }
    }
    if (sshd) {
      for (
        const [kind, cipher] of [
          ["default", undefined],
          ["chacha", CHAT_CIPHER],
          ["aes", AES_CIPHER],
        ] as const
      ) {
        console.error(`  run ${round}: scp ${cipher ?? "(default cipher)"}`);
        const copy = await sshd.copy(source, bytes, sha256, cipher);
        results.scp[kind].push(copy);
        console.error(`    ${f(copy.mbPerSecond)} MB/s in ${f(copy.ms)} ms`);
      }
    }
    await Deno.remove(source);
  }
  results.rawCipher = Math.max(rawBefore, bareNodeSeal(plaintext));
} finally {
  await results.room?.close().catch(() => {});
  await sshd?.stop().catch(() => {});
  await cleanup(overall);
}

report(results);

/** Starts the private sshd in `dir`, or says in `results` why the scp rows are skipped. */
async function startSshd(dir: string, results: Results): Promise<PrivateSshd | undefined> {
  const missing = await scpMissing();
  if (missing) {
    results.problems.push(`scp figures SKIPPED: ${missing}`);
    return undefined;
  }
  await Deno.mkdir(dir, { mode: 0o700 });
  const sshd = await PrivateSshd.start(dir);
  try {
    results.negotiated = await sshd.negotiated();
  } catch (error) {
    await sshd.stop();
    throw error;
  }
  console.error(`  sshd on port ${sshd.port}: ${results.negotiated.version}`);
  console.error(`  ssh negotiates ${results.negotiated.cipher} by default`);
  return sshd;
}

/**
 * Opens the chat room in `dir` and measures the idle line latency; a room that cannot be set up
 * is a problem said under the table (the scp and cipher rows still come).
 */
async function openRoom(dir: string, results: Results): Promise<FileRoom | undefined> {
  const files = await hasFileTransfer();
  if (!files) {
    results.problems.push(
      "chat file transfer SKIPPED: this chat has no file transfer (`chat listen --help` lists " +
        "no --accept-files); the room, the probes and the idle latency ran without it",
    );
  }
  await Deno.mkdir(dir, { mode: 0o700 });
  try {
    const room = results.room = await FileRoom.open(dir, files);
    console.error(`  room ready; idle latency for ${IDLE_SECONDS} s`);
    room.probe.start(LINES_PER_SECOND);
    await sleep(IDLE_SECONDS * 1000);
    results.idle = room.probe.stop();
    await room.probe.settle(results.idle, 10_000);
    return room;
  } catch (error) {
    results.problems.push(`chat room FAILED to open: ${(error as Error).message}`);
    console.error(`  the chat room failed: ${(error as Error).message.split("\n")[0]}`);
    return undefined;
  }
}

// --- the table -------------------------------------------------------------------------------

function met(ok: boolean): string {
  return ok ? "met" : "MISSED";
}

function report(results: Results): void {
  const table = new Table();
  const raw = results.rawCipher;
  const speed = (runs: { mbPerSecond: number }[]) => {
    const values = runs.map((r) => r.mbPerSecond);
    const mid = median(values);
    const range = values.length > 1
      ? ` (median of ${values.length}; ${f(Math.min(...values))}–${f(Math.max(...values))})`
      : "";
    return { mid, text: `${f(mid)} MB/s${range}` };
  };

  table.row(
    `raw cipher: bare node:crypto chacha20-poly1305 seal ${FRAME_PLAINTEXT_BYTES} B [baseline]`,
    `${f(raw)} MB/s`,
    "1.00",
  );
  const scp = {
    default: speed(results.scp.default),
    chacha: speed(results.scp.chacha),
    aes: speed(results.scp.aes),
  };
  if (results.scp.default.length > 0) {
    const negotiated = results.negotiated?.cipher ?? "?";
    table.row(
      `scp ${mib} MiB, default cipher (negotiated: ${negotiated}) [baseline]`,
      scp.default.text,
      `${f(scp.default.mid / raw, 2)} of raw cipher`,
    );
    table.row(
      `scp ${mib} MiB, -c ${CHAT_CIPHER} (chat's cipher)`,
      scp.chacha.text,
      `${f(scp.chacha.mid / raw, 2)} of raw cipher`,
    );
    table.row(
      `scp ${mib} MiB, -c ${AES_CIPHER}`,
      scp.aes.text,
      `${f(scp.aes.mid / raw, 2)} of raw cipher`,
    );
  } else {
    table.row("scp", "skipped", "see below");
  }
  if (results.chat.length > 0) {
    const chat = speed(results.chat);
    const ratio = chat.mid / scp.default.mid;
    table.row(
      `chat ${mib} MiB: send --file → serve → listen --accept-files (spawn to exit 0)`,
      chat.text,
      `${f(chat.mid / raw, 2)} of raw cipher`,
    );
    if (results.scp.default.length > 0) {
      table.row(
        "  chat / scp (default cipher)",
        f(ratio, 2),
        `target ≥ ${TARGET_SCP_RATIO}: ${met(ratio >= TARGET_SCP_RATIO)}`,
      );
      table.row("  chat / scp (chacha20-poly1305)", f(chat.mid / scp.chacha.mid, 2));
    }
    const mid = (pick: (t: TransferFigures) => number | undefined) => {
      const values = results.chat.map(pick).filter((v): v is number => v !== undefined);
      return values.length ? median(values) : NaN;
    };
    const streaming = mid((t) => t.streamingMbPerSecond);
    table.row(
      "  chat: at the receiver, first file-progress → file-received",
      `${f(streaming)} MB/s`,
      results.scp.default.length > 0 ? `${f(streaming / scp.default.mid, 2)} of scp` : "",
    );
    const at = (pick: (t: TransferFigures) => number | undefined) => f(mid(pick));
    table.row(
      "  chat: after spawn, read from the receiver: offer / first chunk / received; sender exit",
      `${at((t) => t.phases.offer)} / ${at((t) => t.phases.firstChunk)} / ${
        at((t) => t.phases.received)
      }; ${at((t) => t.ms)} ms`,
    );
    const percent = (pick: (t: TransferFigures) => number) =>
      f(mid((t) => (pick(t) / (t.ms / 1000)) * 100));
    table.row(
      "  chat: CPU while chat send ran, % of one core: chat serve / chat listen",
      `${percent((t) => t.cpu.server)} % / ${percent((t) => t.cpu.receiver)} %`,
    );
    const before = results.chat[0].rssBeforeKb / 1024;
    const growth = Math.max(...results.chat.map((t) => t.rssMaxKb - t.rssBeforeKb)) / 1024;
    const max = Math.max(...results.chat.map((t) => t.rssMaxKb)) / 1024;
    const after = results.chat.at(-1)!.rssAfterKb / 1024;
    const samples = results.chat.reduce((sum, t) => sum + t.rssSamples, 0);
    table.row(
      "chat serve VmRSS: before [baseline] / max during / 1 s after",
      `${f(before, 1)} / ${f(max, 1)} / ${f(after, 1)} MiB`,
      `growth ${f(growth, 1)} MiB, ${samples} samples (target < ${TARGET_RSS_MIB} MiB: ${
        met(growth < TARGET_RSS_MIB)
      })`,
    );
    if (results.chat.length > 1) {
      table.row(
        "  VmRSS growth in each run (max during − that run's before)",
        results.chat.map((t) => f((t.rssMaxKb - t.rssBeforeKb) / 1024, 1)).join(" / ") + " MiB",
      );
    }
    for (const t of results.chat) {
      for (const note of t.notes) results.problems.push(`odd: ${note}`);
    }
  } else {
    table.row("chat file transfer", "skipped or failed", "see below");
  }
  latencyRows(table, results);
  table.print();
  for (const problem of results.problems) console.log(`\n${problem}`);
}

function latencyRows(table: Table, results: Results): void {
  const room = results.room;
  if (!room || !results.idle) return;
  const labels = {
    listen: "probe A → chat listen --json (the file's connection)",
    library: "probe A → probe B (in-process clients)",
  };
  const text = (ms: number[], missing: number) => {
    const { p50, p99, max } = summary(ms);
    return `p50 ${f(p50, 1)} / p99 ${f(p99, 1)} / max ${f(max, 1)} ms (n=${ms.length}` +
      `${missing ? `, ${missing} MISSING` : ""})`;
  };
  for (const path of PROBE_PATHS) {
    const idle = room.probe.latencies(path, [results.idle]);
    table.row(`line latency, idle [baseline]: ${labels[path]}`, text(idle.ms, idle.missing));
    if (results.chat.length === 0) continue;
    const during = room.probe.latencies(path, results.chat.map((t) => t.window));
    const p99 = summary(during.ms).p99;
    table.row(
      `line latency, during the transfer: ${labels[path]}`,
      text(during.ms, during.missing),
      `p50 ${
        f(summary(during.ms).p50 / summary(idle.ms).p50, 1)
      }x idle; p99 target < ${TARGET_P99_MS} ms: ${
        met(p99 < TARGET_P99_MS && during.missing === 0)
      }`,
    );
  }
}
