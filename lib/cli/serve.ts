/**
 * `chat serve`: runs the server with the operator at the terminal (or a pipe, or headless), until
 * the operator quits or the process is signalled; then bye to everyone and exit 0.
 * @module
 */
import { Exit, KEEPALIVE_MISSES, MIN_KEEPALIVE_MS } from "../constants.ts";
import { encodePublicKey, fingerprint, parseAllowlist } from "../keys.ts";
import { parsePort, parsePortRange, type PortRange } from "../ports.ts";
import { type Allowlist, ChatServer, type ServerLimits } from "../server.ts";
import { detectTerminal, Terminal } from "../tty.ts";
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
}

/** The limit flags of `chat serve`: flag, ServerLimits field, unit (seconds become ms). */
export const LIMIT_FLAGS: [keyof ServeOptions, keyof ServerLimits, "s" | "n"][] = [
  ["handshakeTimeout", "handshakeTimeoutMs", "s"],
  ["joinTimeout", "joinTimeoutMs", "s"],
  ["keepalive", "keepaliveMs", "s"],
  ["maxHandshakes", "maxHandshakes", "n"],
  ["maxHandshakesPerAddress", "maxHandshakesPerAddress", "n"],
  ["maxLineBytes", "maxLineBytes", "n"],
  ["maxQueueBytes", "maxQueuedBytes", "n"],
  ["maxMembers", "maxMembers", "n"],
  ["rate", "rateLinesPerSecond", "n"],
  ["burst", "rateBurstLines", "n"],
];

function flagName(option: string): string {
  return "--" + option.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Reads the limit flags; a value that is not a positive number is a usage error. */
export function parseLimits(options: ServeOptions): Partial<ServerLimits> {
  const limits: Partial<ServerLimits> = {};
  for (const [option, field, unit] of LIMIT_FLAGS) {
    const text = options[option];
    if (text === undefined) continue;
    const value = Number(text);
    if (!(typeof text === "string" && /^\d+(\.\d+)?$/.test(text) && value > 0)) {
      throw new UserError(`${flagName(option)}: expected a positive number, got "${text}"`, {
        exitCode: Exit.USAGE,
      });
    }
    limits[field] = unit === "s" ? Math.round(value * 1000) : Math.floor(value);
    if (field === "keepaliveMs") {
      if (limits.keepaliveMs! < MIN_KEEPALIVE_MS) {
        throw new UserError(`--keepalive: must be at least ${MIN_KEEPALIVE_MS / 1000} s`, {
          exitCode: Exit.USAGE,
        });
      }
      limits.peerSilenceMs = KEEPALIVE_MISSES * limits.keepaliveMs!;
    }
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
  const log = (line: string) => terminal ? terminal.info(line) : printInfo(line);

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

  let stopped!: () => void;
  const done = new Promise<void>((resolve) => stopped = resolve);
  const server = new ChatServer({
    hostname: options.host,
    port,
    dataPorts,
    name,
    identity,
    readAllowlist,
    log,
    limits,
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
  printInfo("the server stopped; everyone was told the chat ended");
  return Exit.OK;
}
