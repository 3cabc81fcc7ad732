/**
 * The chat side of the file benchmark: a real `chat serve` on 127.0.0.1, a receiver
 * (`chat listen --json --accept-files`), two probe clients in this process (lib/chat/client.ts),
 * and one `chat send --file` per transfer, every process started as tests/process.ts does.
 * While the file flows, the server's VmRSS is sampled and probe A's lines are timed at the
 * receiver process (its connection carries the file) and at probe B.
 * @module
 */
import type { JsonEvent } from "../../lib/cli/json_events.ts";
import { encodePublicKey } from "../../lib/keys/key_text.ts";
import { primitives } from "../../lib/protocol/crypto.ts";
import {
  cpuSeconds,
  join,
  leaveAll,
  mbPerSecond,
  type Member,
  quiet,
  Signal,
  sleep,
  statusKb,
  stopChild,
} from "../server/harness.ts";
import { chatCommand, finish, type LineChild, runChat, spawnLines } from "./children.ts";
import { sha256File } from "./data.ts";
import { LineProbe, type ProbeWindow } from "./probe.ts";

/** The stable line `chat serve` prints once it listens (README, "chat serve"). */
const LISTENING = /^chat: listening (\S+) (chat1\S+)$/;
/** Labels on the server's allowlist, and so the display names in the room. */
const RECEIVER = "recv", SENDER = "sender", PROBE_A = "probe-a", PROBE_B = "probe-b";
/** The largest file the server relays (the benchmark's server flag). */
const MAX_FILE_BYTES = 1024 * 1024 * 1024;
/** How often the server's VmRSS is read while the file flows. */
const RSS_EVERY_MS = 100;

/** The receiver's `file-received` event (README, JSON events), and when this process read it. */
type FileReceived = Extract<JsonEvent, { event: "file-received" }> & { at: number };

/** What one transfer measured. */
export interface TransferFigures {
  /** Spawning `chat send` to its exit 0. */
  ms: number;
  mbPerSecond: number;
  /**
   * When this process read the receiver's events, in ms after spawning `chat send`: the
   * `file-offer`, the first `file-progress` (the receiver prints one on its first chunk, then at
   * most one a second) and `file-received`.
   */
  phases: { offer?: number; firstChunk?: number; received: number };
  /**
   * MB/s at the receiver from its first `file-progress` to `file-received`: the data path alone,
   * without start-up, hashing and the offer.
   */
  streamingMbPerSecond?: number;
  rssBeforeKb: number;
  rssMaxKb: number;
  rssSamples: number;
  /** VmRSS one second after the transfer. */
  rssAfterKb: number;
  /** CPU seconds the server and the receiver used while `chat send` ran. */
  cpu: { server: number; receiver: number };
  /** The probe lines said while `chat send` ran. */
  window: ProbeWindow;
  /** Anything odd about the received file's event (it was still byte-identical). */
  notes: string[];
}

/** The server, the receiver and the probes, set up once for every transfer. */
export class FileRoom {
  readonly probe: LineProbe;
  /** Whether the room was opened with file transfer (`--accept-files`, `--max-file-bytes`). */
  readonly files: boolean;
  readonly #dir: string;
  readonly #server: LineChild;
  readonly #address: string;
  readonly #serverKey: string;
  readonly #members: Member[];
  #receiver?: LineChild;
  readonly #received: FileReceived[] = [];
  #offerAt?: number;
  #firstProgress?: { at: number; bytes: number };
  readonly #events = new Signal();
  /** How the server exited, once it has. */
  #serverExit?: Deno.CommandStatus;

  private constructor(
    dir: string,
    server: LineChild,
    address: string,
    serverKey: string,
    members: Member[],
    probe: LineProbe,
    files: boolean,
  ) {
    this.files = files;
    this.#dir = dir;
    this.#server = server;
    this.#address = address;
    this.#serverKey = serverKey;
    this.#members = members;
    this.probe = probe;
    server.child.status.then((status) => this.#serverExit = status);
  }

  /** The server's process id (`deno run … main.ts serve` is the server itself). */
  get serverPid(): number {
    return this.#server.child.pid;
  }

  /**
   * Sets up the room in `dir`: identities and allowlist by the CLI, the server, the probes and
   * the receiver (`--accept-files` and `--max-file-bytes` only when `files`); resolves once the
   * receiver is in the room.
   */
  static async open(dir: string, files: boolean): Promise<FileRoom> {
    const keys = (who: string) => `${dir}/keys-${who}`;
    await Promise.all(
      ["server", RECEIVER, SENDER].map((who) => runChat(["--keys", keys(who), "keygen"])),
    );
    const probeA = primitives.generateKeyPair(), probeB = primitives.generateKeyPair();
    const allowed: [string, string][] = [
      [(await runChat(["--keys", keys(RECEIVER), "pubkey"])).trim(), RECEIVER],
      [(await runChat(["--keys", keys(SENDER), "pubkey"])).trim(), SENDER],
      [encodePublicKey(probeA.publicKey), PROBE_A],
      [encodePublicKey(probeB.publicKey), PROBE_B],
    ];
    for (const [key, label] of allowed) {
      await runChat(["--keys", keys("server"), "allow", key, "--name", label]);
    }
    const { server, address, serverKey } = await startServer(keys("server"), files);
    const members: Member[] = [];
    let sayA = (_text: string): Promise<void> =>
      Promise.reject(new Error("probe A has not joined"));
    const probe = new LineProbe((text) => sayA(text));
    const room = new FileRoom(dir, server, address, serverKey, members, probe, files);
    try {
      const port = Number(address.split(":").at(-1));
      const present = new Set<string>();
      members.push(
        await join(port, probeB, PROBE_B, {
          ...quiet,
          message: (from, text) => {
            if (from === PROBE_A) room.probe.arrived("library", text);
          },
          presence: (event, name) => {
            if (event === "join") present.add(name);
            room.#events.notify();
          },
        }),
      );
      const a = await join(port, probeA, PROBE_A, quiet);
      members.push(a);
      sayA = (text) => a.chat.say(text);
      room.#receiver = room.#startReceiver(keys(RECEIVER), files);
      await room.#events.until(() => present.has(RECEIVER), 20_000, `${RECEIVER} to join`)
        .catch((error) => {
          throw new Error(`${error.message}\n${room.#story()}`);
        });
      return room;
    } catch (error) {
      await room.close();
      throw error;
    }
  }

  #startReceiver(keysDir: string, files: boolean): LineChild {
    const downloads = `${this.#dir}/downloads`;
    Deno.mkdirSync(downloads, { mode: 0o700 });
    const args = ["listen", this.#address, "--keys", keysDir, "--server-key", this.#serverKey];
    if (files) args.push("--accept-files", downloads);
    args.push("--json");
    return spawnLines(...chatCommand(args), {
      cwd: this.#dir,
      onStdout: (line, at) => this.#onReceiverEvent(line, at),
    });
  }

  #onReceiverEvent(line: string, at: number): void {
    let event;
    try {
      event = JSON.parse(line);
    } catch {
      return; // the transcript keeps it for messages
    }
    if (event.event === "line" && event.from === PROBE_A) {
      this.probe.arrived("listen", String(event.text), at);
    } else if (event.event === "file-offer") {
      this.#offerAt ??= at;
    } else if (event.event === "file-progress") {
      this.#firstProgress ??= { at, bytes: Number(event.bytes) };
    } else if (event.event === "file-received") {
      this.#received.push({ ...event, at });
      this.#events.notify();
    }
  }

  /**
   * Sends `file` (`bytes` long, SHA-256 `sha256`) from a `chat send --file` process to the
   * receiver while probe A says `linesPerSecond` lines a second and the server's VmRSS is
   * sampled; checks the received copy byte for byte (SHA-256), then removes it.
   */
  async transfer(
    file: string,
    bytes: number,
    sha256: string,
    linesPerSecond: number,
  ): Promise<TransferFigures> {
    await sleep(500); // let the previous transfer's traffic drain from the server
    if (this.#serverExit) {
      // the benchmark stops it only in close(): something else signalled it
      throw new Error(`chat serve had already exited before the transfer\n${this.#story()}`);
    }
    const rssBeforeKb = await statusKb(this.serverPid, "VmRSS");
    const sampler = sampleRss(this.serverPid, RSS_EVERY_MS);
    const seen = this.#received.length;
    this.#forgetProgress();
    const receiverPid = this.#receiver!.child.pid;
    const cpuBefore = [await cpuSeconds(this.serverPid), await cpuSeconds(receiverPid)];
    this.probe.start(linesPerSecond);
    const start = performance.now();
    const sender = spawnLines(
      ...chatCommand([
        "send",
        this.#address,
        "--keys",
        `${this.#dir}/keys-${SENDER}`,
        "--server-key",
        this.#serverKey,
        "--file",
        file,
        "--to",
        RECEIVER,
      ]),
      { cwd: this.#dir },
    );
    let code: number;
    let window: ProbeWindow;
    let rss: { maxKb: number; samples: number };
    try {
      code = (await finish(sender, Math.max(60_000, bytes / 1e3))).code; // at least 1 MB/s
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${this.#story(sender)}`);
    } finally {
      window = this.probe.stop();
      rss = await sampler.stop();
    }
    const ms = performance.now() - start;
    const cpu = {
      server: await cpuSeconds(this.serverPid) - cpuBefore[0],
      receiver: await cpuSeconds(receiverPid) - cpuBefore[1],
    };
    if (code !== 0) throw new Error(`chat send exited ${code}\n${this.#story(sender)}`);
    await this.#events.until(() => this.#received.length > seen, 30_000, "file-received")
      .catch((error) => {
        throw new Error(`${error.message} after chat send exited 0\n${this.#story(sender)}`);
      });
    const event = this.#received[seen];
    const notes = await this.#check(event, bytes, sha256, file);
    const first = this.#firstProgress;
    await this.probe.settle(window, 10_000);
    await sleep(1000);
    return {
      ms,
      mbPerSecond: mbPerSecond(bytes, ms),
      phases: {
        offer: this.#offerAt === undefined ? undefined : this.#offerAt - start,
        firstChunk: first === undefined ? undefined : first.at - start,
        received: event.at - start,
      },
      streamingMbPerSecond: first === undefined
        ? undefined
        : mbPerSecond(bytes - first.bytes, event.at - first.at),
      rssBeforeKb,
      rssMaxKb: rss.maxKb,
      rssSamples: rss.samples,
      rssAfterKb: await statusKb(this.serverPid, "VmRSS"),
      cpu,
      window,
      notes,
    };
  }

  /** Forgets the last transfer's offer and progress events. */
  #forgetProgress(): void {
    this.#offerAt = this.#firstProgress = undefined;
  }

  /** Checks the received copy against the source, removes it, and says what else was odd. */
  async #check(
    event: FileReceived,
    bytes: number,
    sha256: string,
    source: string,
  ): Promise<string[]> {
    const path = event.path.startsWith("/") ? event.path : `${this.#dir}/${event.path}`;
    try {
      const copy = await sha256File(path);
      if (copy.bytes !== bytes || copy.sha256 !== sha256) {
        throw new Error(
          `the received file differs: ${path} has ${copy.bytes} bytes, SHA-256 ${copy.sha256}; ` +
            `sent ${bytes} bytes, SHA-256 ${sha256}`,
        );
      }
    } finally {
      await Deno.remove(path).catch(() => {});
    }
    const notes: string[] = [];
    if (event.bytes !== bytes) notes.push(`file-received says ${event.bytes} bytes`);
    if (event.resumed_at !== 0) notes.push(`file-received says resumed_at ${event.resumed_at}`);
    if (event.from !== SENDER) notes.push(`file-received says from ${JSON.stringify(event.from)}`);
    const name = source.split("/").at(-1);
    if (event.name !== name) notes.push(`file-received says name ${JSON.stringify(event.name)}`);
    return notes;
  }

  /** The last lines of every process, for an error message. */
  #story(sender?: LineChild): string {
    const part = (title: string, lines: string[] = []) =>
      `--- ${title}:\n${lines.slice(-15).join("\n")}`;
    const exit = this.#serverExit;
    return [
      ...(exit ? [`(chat serve exited: code ${exit.code}, signal ${exit.signal ?? "none"})`] : []),
      ...(sender ? [part("chat send stderr", sender.stderr)] : []),
      ...(sender ? [part("chat send stdout", sender.stdout)] : []),
      part("chat listen stdout", this.#receiver?.stdout),
      part("chat listen stderr", this.#receiver?.stderr),
      part("chat serve stderr", this.#server.stderr),
    ].join("\n");
  }

  /** The probes leave; the receiver and the server are stopped (SIGTERM, then SIGKILL). */
  async close(): Promise<void> {
    await leaveAll(this.#members).catch(() => {});
    if (this.#receiver) await stopChild(this.#receiver.child);
    await stopChild(this.#server.child);
  }
}

/** Starts `chat serve` with the benchmark's flags; resolves with its address and key. */
async function startServer(
  keysDir: string,
  files: boolean,
): Promise<{ server: LineChild; address: string; serverKey: string }> {
  const seen: { listening: RegExpMatchArray | null } = { listening: null };
  const ready = new Signal();
  const server = spawnLines(
    ...chatCommand([
      "serve",
      "--headless",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--keys",
      keysDir,
      ...(files ? ["--max-file-bytes", String(MAX_FILE_BYTES)] : []),
      "--rate",
      "1000",
      "--burst",
      "1000",
    ]),
    {
      onStderr: (line) => {
        seen.listening ??= line.match(LISTENING);
        ready.notify();
      },
    },
  );
  let exited = false;
  server.child.status.then(() => {
    exited = true;
    ready.notify();
  });
  await ready.until(() => seen.listening !== null || exited, 20_000, "chat serve to listen")
    .catch(() => {});
  if (seen.listening === null) {
    await stopChild(server.child);
    throw new Error(`chat serve did not listen:\n${server.stderr.join("\n")}`);
  }
  const [, address, serverKey] = seen.listening;
  return { server, address, serverKey };
}

/** Reads VmRSS of `pid` every `everyMs` until `stop()`, which resolves with the largest. */
function sampleRss(pid: number, everyMs: number) {
  let running = true;
  let maxKb = 0, samples = 0;
  const loop = (async () => {
    while (running) {
      const kb = await statusKb(pid, "VmRSS");
      if (kb > maxKb) maxKb = kb;
      samples++;
      await sleep(everyMs);
    }
  })();
  return {
    async stop(): Promise<{ maxKb: number; samples: number }> {
      running = false;
      await loop;
      return { maxKb, samples };
    },
  };
}
