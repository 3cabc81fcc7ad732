/**
 * `chat serve`: runs the server with the operator at the terminal (or a pipe, or headless), until
 * the operator quits or the process is signalled; then bye to everyone and exit 0.
 * @module
 */
import {
  Exit,
  KEEPALIVE_MISSES,
  MAX_KEEPALIVE_MS,
  MAX_MEMBERS_LIMIT,
  MAX_PLAINTEXT_BYTES,
  MIN_KEEPALIVE_MS,
} from "../protocol/constants.ts";
import { FileNameBook } from "../keys/name_book.ts";
import { encodePublicKey, fingerprint, parseAllowlist } from "../keys/key_text.ts";
import { parsePort, parsePortRange, type PortRange } from "../chat/data_port.ts";
import { type Allowlist, ChatServer, type ServerLimits } from "../chat/server.ts";
import { detectTerminal, sanitize, Terminal } from "./terminal.ts";
import type { Context } from "./context.ts";
import { loadOrCreateIdentity } from "./identity.ts";
import { printInfo, UserError } from "./output.ts";
import { checkName, EXIT_WORDS, HELP_TEXT, onSignals } from "./chatting.ts";

/** Options of `chat serve` (limits as given on the command line, checked here). */
export interface ServeOptions {
  host: string;
  port: string;
  dataPorts?: string;
  name: string;
  headless?: boolean;
  json?: boolean;
  handshakeTimeout?: string;
  joinTimeout?: string;
  keepalive?: string;
  maxHandshakes?: string;
  maxHandshakesPerAddress?: string;
  maxLineBytes?: string;
  maxQueueBytes?: string;
  maxMembers?: string;
  rate?: string;
  burst?: string;
  maxPendingSessions?: string;
  maxPendingPerKey?: string;
  maxUnproven?: string;
  connectRate?: string;
  connectBurst?: string;
}

/** One limit flag of `chat serve`: the option, its ServerLimits field, its unit and range. */
interface LimitFlag {
  option: keyof ServeOptions;
  field: keyof ServerLimits;
  /** Seconds (turned into ms) or a count. */
  unit: "s" | "n";
  /** The smallest and largest values accepted, in the flag's unit. */
  min: number;
  max: number;
}

const HOUR = 3600;
const MILLION = 1_000_000;

/**
 * The limit flags of `chat serve`. Every one has a range: a duration past it would overflow a
 * timer (Deno turns a delay over 2^31-1 ms into 1 ms), a member count past it would not fit the
 * member list of a `welcome` in one frame.
 */
export const LIMIT_FLAGS: LimitFlag[] = [
  { option: "handshakeTimeout", field: "handshakeTimeoutMs", unit: "s", min: 0.1, max: HOUR },
  { option: "joinTimeout", field: "joinTimeoutMs", unit: "s", min: 0.1, max: HOUR },
  {
    option: "keepalive",
    field: "keepaliveMs",
    unit: "s",
    min: MIN_KEEPALIVE_MS / 1000,
    max: MAX_KEEPALIVE_MS / 1000,
  },
  { option: "maxHandshakes", field: "maxHandshakes", unit: "n", min: 1, max: MILLION },
  {
    option: "maxHandshakesPerAddress",
    field: "maxHandshakesPerAddress",
    unit: "n",
    min: 1,
    max: MILLION,
  },
  { option: "maxLineBytes", field: "maxLineBytes", unit: "n", min: 1, max: MAX_PLAINTEXT_BYTES },
  { option: "maxQueueBytes", field: "maxQueuedBytes", unit: "n", min: 1024, max: 2 ** 30 },
  { option: "maxMembers", field: "maxMembers", unit: "n", min: 1, max: MAX_MEMBERS_LIMIT },
  { option: "rate", field: "rateLinesPerSecond", unit: "n", min: 1, max: MILLION },
  { option: "burst", field: "rateBurstLines", unit: "n", min: 1, max: MILLION },
  { option: "maxPendingSessions", field: "maxPendingSessions", unit: "n", min: 1, max: 65535 },
  {
    option: "maxPendingPerKey",
    field: "maxPendingSessionsPerKey",
    unit: "n",
    min: 1,
    max: 65535,
  },
  { option: "maxUnproven", field: "maxUnprovenConnections", unit: "n", min: 1, max: MILLION },
  { option: "connectRate", field: "connectRatePerSecond", unit: "n", min: 1, max: MILLION },
  { option: "connectBurst", field: "connectBurst", unit: "n", min: 1, max: MILLION },
];

function flagName(option: string): string {
  return "--" + option.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Reads the limit flags; a value that is not a number in the flag's range is a usage error. */
export function parseLimits(options: ServeOptions): Partial<ServerLimits> {
  const limits: Partial<ServerLimits> = {};
  for (const { option, field, unit, min, max } of LIMIT_FLAGS) {
    const text = options[option];
    if (text === undefined) continue;
    const value = Number(text);
    const whole = unit === "n";
    const pattern = whole ? /^\d+$/ : /^\d+(\.\d+)?$/;
    if (!(typeof text === "string" && pattern.test(text) && value >= min && value <= max)) {
      const what = whole ? "a whole number" : "a number of seconds";
      throw new UserError(
        `${flagName(option)}: expected ${what} from ${min} to ${max}, got "${text}"`,
        { exitCode: Exit.USAGE },
      );
    }
    limits[field] = unit === "s" ? Math.round(value * 1000) : value;
  }
  if (limits.keepaliveMs !== undefined) {
    limits.peerSilenceMs = KEEPALIVE_MISSES * limits.keepaliveMs;
  }
  return limits;
}

/** Runs `chat serve`; resolves with the exit code when the server has stopped. */
export async function serve(context: Context, options: ServeOptions): Promise<number> {
  const name = checkName(options.name, "--name");
  let port: number, dataPorts: PortRange | undefined;
  try {
    port = parsePort(options.port, true);
    dataPorts = options.dataPorts === undefined ? undefined : parsePortRange(options.dataPorts);
  } catch (error) {
    throw new UserError((error as Error).message, { exitCode: Exit.USAGE });
  }
  const limits = parseLimits(options);
  const identity = await loadOrCreateIdentity(context);
  const { keystore } = context;

  let terminal: Terminal | undefined;
  // log lines quote what peers sent, but stay untrusted text: neutralised on every path
  const log = (line: string) => terminal ? terminal.info(line) : printInfo(sanitize(line));

  // The allowlist file is read afresh for every handshake and sweep, but parsed only when its
  // text changed (parsing 1,000 keys costs ~70 ms); bad lines are reported once per change.
  let cached: { text: string; allowlist: Allowlist } | undefined;
  const readAllowlist = async (): Promise<Allowlist> => {
    const text = await keystore.readAllowlistText();
    if (cached?.text === text) return cached.allowlist;
    const parsed = parseAllowlist(text);
    for (const e of parsed.errors) {
      log(`warning: allowlist line ignored: ${keystore.paths.allowed}:${e.line}: ${e.message}`);
    }
    const allowlist = new Map(
      parsed.entries.map((e) => [encodePublicKey(e.key), { label: e.label }]),
    );
    cached = { text, allowlist };
    return allowlist;
  };

  const names = await FileNameBook.open(keystore, (line) => log(`warning: ${line}`));

  let stopped!: () => void;
  const done = new Promise<void>((resolve) => stopped = resolve);
  let fatal: unknown;
  const server = new ChatServer({
    hostname: options.host,
    port,
    dataPorts,
    name,
    identity,
    readAllowlist,
    log,
    names,
    limits,
    onFatal(error) {
      // up but deaf is the worst state: stop, so that a supervisor restarts the server
      fatal = error;
      void shutdown();
    },
    operator: options.headless ? undefined : (message) => {
      if (message.type === "msg") terminal?.message(String(message.from), String(message.text));
      // presence is already in the log (with the address and fingerprint)
    },
  });
  try {
    server.start();
  } catch (error) {
    const why = error instanceof Deno.errors.AddrInUse
      ? `port ${port} on ${options.host} is already in use`
      : (error as Error).message;
    throw new UserError(`cannot listen on ${options.host}:${port}: ${why}`, {
      hints: ["is another `chat serve` running? choose another port with --port N"],
    });
  }
  await readAllowlist().catch((error) => log(`warning: ${error.message}`));
  const shutdown = () => server.close().then(() => stopped());
  const removeSignals = onSignals(shutdown);

  printInfo(
    `serving as ${name} on ${options.host}:${server.port} (key ${
      encodePublicKey(identity.publicKey)
    }, fingerprint ${fingerprint(identity.publicKey)})`,
  );
  printInfo(`clients join with: chat connect ${options.host}:${server.port}`);

  if (!options.headless) {
    const view = detectTerminal(Boolean(options.json));
    terminal = new Terminal(view, {
      line(text) {
        const say = (line: string) => {
          try {
            server.say(line); // checks the line against the server's own --max-line-bytes
          } catch (error) {
            return terminal?.error((error as Error).message);
          }
          terminal?.sent(name, line);
        };
        if (!view.interactive) {
          if (text) say(text); // a pipe: every line is said, verbatim
          return;
        }
        const command = text.trim();
        if (EXIT_WORDS.has(command)) return void shutdown();
        if (command === "/who") {
          const names = server.members.slice(1);
          return terminal?.info(names.length ? `here: ${names.join(", ")}` : "nobody else is here");
        }
        if (command === "/help") return terminal?.info(HELP_TEXT);
        if (command.startsWith("/") && !command.startsWith("//")) {
          return terminal?.error(`unknown command ${command}`, ["type /help for the commands"]);
        }
        if (text) say(text.startsWith("//") ? text.slice(1) : text);
      },
      // End of input does not stop a server: it keeps serving until signalled.
      end: () => terminal?.stopReading(),
      interrupt: () => void shutdown(),
    });
  }
  await done;
  removeSignals();
  terminal?.close();
  if (fatal !== undefined) {
    throw new UserError(
      `the server stopped: it could no longer accept connections (${(fatal as Error).message})`,
      { hints: ["start it again; if this repeats, check the system's limits (ulimit -n)"] },
    );
  }
  printInfo("the server stopped; everyone was told the chat ended");
  return Exit.OK;
}
