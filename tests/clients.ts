/**
 * Helpers for the load, attack and fault tests: many lightweight clients built from lib/client.ts
 * in one test process, talking over real TCP to a real `chat serve` process, plus raw sockets
 * and the server's resident memory.
 * @module
 */
import { assert } from "./helpers.ts";
import type { ChatProcess, Sandbox } from "./process.ts";
import { type ChatEnd, ClientChat } from "../lib/chat/client.ts";
import { type KeyPair, primitives } from "../lib/protocol/crypto.ts";
import { formatAllowLine } from "../lib/keys/key_files.ts";
import { type ClientSession, joinServer, type ServerPins } from "../lib/chat/join.ts";

/** Pins that remember nothing: in-process clients trust whatever server they reach. */
export const NO_PINS: ServerPins = {
  lookupServer: () => Promise.resolve(undefined),
  pinServer: () => Promise.resolve(undefined),
};

/**
 * Flags for a server that is meant to take a crowd from one address (every test client is on
 * 127.0.0.1): the per-address connection rate, which sheds such a crowd under load, has its
 * own test (outsider_test.ts) and would only get in the way of the limit a test is about.
 */
export const ONE_ADDRESS_CROWD = ["--connect-rate", "1000000", "--connect-burst", "1000000"];

/** An identity for an in-process client: a key pair and the label it is allowed under. */
export interface Identity {
  name: string;
  keys: KeyPair;
}

/** `count` fresh identities named `prefix0`, `prefix1`, … */
export function makeIdentities(prefix: string, count: number): Identity[] {
  return Array.from({ length: count }, (_, i) => ({
    name: `${prefix}${i}`,
    keys: primitives.generateKeyPair(),
  }));
}

/**
 * Starts a real `chat serve` in the sandbox whose allowlist holds `identities` (under their names,
 * written straight to keys/allowed: one file write instead of one `chat allow` per key).
 */
export async function startServer(
  s: Sandbox,
  identities: Identity[],
  args: string[] = [],
  keys = "srv",
): Promise<{ server: ChatProcess; address: string; port: number }> {
  await Deno.mkdir(`${s.dir}/${keys}`, { recursive: true, mode: 0o700 });
  const lines = identities.map((id) => formatAllowLine(id.keys.publicKey, id.name));
  await Deno.writeTextFile(`${s.dir}/${keys}/allowed`, lines.join("\n") + "\n", { append: true });
  const { server, address } = await s.serve(keys, args);
  return { server, address, port: Number(address.split(":")[1]) };
}

/** A received line. */
export interface Received {
  from: string;
  text: string;
  /** performance.now() when it was handed to us. */
  at: number;
}

/** An in-process client in the room, recording everything it receives. */
export class TestClient {
  readonly chat: ClientChat;
  readonly received: Received[] = [];
  /** Private lines to us, as `from: text`. */
  readonly privates: string[] = [];
  /** Replayed history lines, as `from: text`. */
  readonly replays: string[] = [];
  readonly notices: { code: string; message: string }[] = [];
  readonly presence: string[] = [];
  /** Called on every received line (the load test counts with it instead of scanning). */
  onMessage?: (line: Received) => void;
  readonly #waiters = new Set<() => void>();

  private constructor(session: ClientSession) {
    const wake = () => this.#waiters.forEach((w) => w());
    this.chat = new ClientChat(session, {
      message: (from, text, details) => {
        if (details?.replay) return void this.replays.push(`${from}: ${text}`);
        const line = { from, text, at: performance.now() };
        this.received.push(line);
        this.onMessage?.(line);
        wake();
      },
      presence: (event, name, detail) => {
        this.presence.push(`${event} ${name} ${detail}`);
        wake();
      },
      private: (from, text) => {
        this.privates.push(`${from}: ${text}`);
        wake();
      },
      who: () => {},
      notice: (code, message) => {
        this.notices.push({ code, message });
        wake();
      },
    });
  }

  get name(): string {
    return this.chat.session.name;
  }

  get ended(): Promise<ChatEnd> {
    return this.chat.ended;
  }

  /** Joins the server at 127.0.0.1:`port` as `identity`. */
  static async join(port: number, identity: Identity, timeoutMs = 10_000): Promise<TestClient> {
    const session = await joinServer({
      hostname: "127.0.0.1",
      port,
      identity: identity.keys,
      name: identity.name,
      pins: NO_PINS,
      timeoutMs,
    });
    return new TestClient(session);
  }

  /** Says a line (rejects if the channel is closed). */
  say(text: string): Promise<void> {
    return this.chat.say(text);
  }

  /** Waits until `condition()` holds; fails the test after `timeoutMs`, saying `what`. */
  async until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new assert.AssertionError({
          message: `${this.name}: ${what} not seen within ${timeoutMs} ms (received ` +
            `${this.received.length} lines; presence: ${this.presence.slice(-5).join(", ")})`,
        });
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 100));
        this.#waiters.add(done);
      });
    }
  }

  /** Waits for a line `text` from `from` and returns when it arrived. */
  async expectLine(from: string, text: string, timeoutMs = 5000): Promise<Received> {
    const find = () => this.received.find((l) => l.from === from && l.text === text);
    await this.until(() => find() !== undefined, timeoutMs, `line "${from}: ${text}"`);
    return find()!;
  }

  /** Leaves (bye), bounded. */
  async leave(): Promise<void> {
    await this.chat.leave();
  }
}

/** Waits until `condition()` holds, polling; fails the test after `timeoutMs`. */
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  pollMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await condition()) {
    if (Date.now() > deadline) {
      throw new assert.AssertionError({ message: `${what}: not true within ${timeoutMs} ms` });
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * The resident memory of process `pid`, in KiB (VmRSS in /proc/PID/status). Read through `cat`:
 * Deno wants --allow-all to read /proc/PID itself, and the tests run with --allow-run instead.
 */
export async function rssKiB(pid: number): Promise<number> {
  const output = await new Deno.Command("cat", { args: [`/proc/${pid}/status`] }).output();
  const status = new TextDecoder().decode(output.stdout);
  const match = status.match(/^VmRSS:\s+(\d+) kB$/m);
  assert.ok(match, `no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/**
 * Waits until the peer closes `connection` (EOF or reset) and returns how long that took, or
 * Infinity if it stays open for `timeoutMs`. Whatever the peer sends before is discarded.
 */
export async function timeToClose(connection: Deno.Conn, timeoutMs: number): Promise<number> {
  const start = performance.now();
  const buffer = new Uint8Array(4096);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      connection.close();
    } catch { /* already closed */ }
  }, timeoutMs);
  try {
    while (await connection.read(buffer) !== null) { /* discard */ }
  } catch {
    // a reset by the peer counts as a close; so does our own close at the timeout (timedOut)
  } finally {
    clearTimeout(timer);
  }
  const elapsed = performance.now() - start;
  try {
    connection.close();
  } catch { /* already closed */ }
  return timedOut ? Infinity : elapsed;
}

/** Runs `work` over `items` with at most `limit` running at once. */
export async function inBatches<T>(
  items: T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index], index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * How many log lines of `kind` a server wrote about, counting both the lines written in full
 * that match `pattern` and the ones its log limiter summed up (`… and N more "kind" lines`).
 */
export function countLogged(stderr: string[], pattern: RegExp, kind: string): number {
  const summary = new RegExp(`… and ([\\d,]+) more "${kind}" lines?`);
  return stderr.reduce((count, line) => {
    const more = summary.exec(line);
    if (more) return count + Number(more[1].replaceAll(",", ""));
    return count + (pattern.test(line) ? 1 : 0);
  }, 0);
}
