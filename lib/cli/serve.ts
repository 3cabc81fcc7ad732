/**
 * `chat serve`: runs the server with the operator at the terminal (or a pipe, or headless), until
 * the operator quits or the process is signalled; then bye to everyone and exit 0.
 * @module
 */
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { AllowlistReader } from "../keys/allowlist.ts";
import { FileNameBook } from "../keys/name_book.ts";
import { MessageType, type ServerMessage } from "../protocol/messages.ts";
import { formatJsonEvent, type JsonEvent, roomEventOf } from "./json_events.ts";
import { RoomLog } from "./room_log.ts";
import type { PortRange } from "../chat/data_port.ts";
import { ChatServer, type ServerConfig } from "../chat/server.ts";
import {
  parseDuration,
  parseLimits,
  parsePort,
  parsePortRange,
  type ServeOptions,
} from "./args.ts";
import { checkName, onSignals, OPERATOR_HELP } from "./chatting.ts";
import { commandPrefix, type Context } from "./context.ts";
import { Exit } from "./exit.ts";
import { loadOrCreateIdentity } from "./identity.ts";
import { type LineCommand, parseLineCommand, SCRIPTED, TEXT, TYPED } from "./line_command.ts";
import { printData, printInfo, UserError } from "./output.ts";
import { describeEvent, type LogWording } from "./server_log.ts";
import { detectTerminal, type MessageStyle, Terminal } from "./terminal.ts";
import { sanitize } from "../chat/untrusted.ts";
import { DownloadFolder } from "../chat/downloads.ts";
import { answerOffer, type FileCommandContext, listFiles, sendFile } from "./file_commands.ts";
import { FileView } from "./file_view.ts";
import { downloadsFolder } from "./files.ts";

export type { ServeOptions };

/** Runs `chat serve`; resolves with the exit code when the server has stopped. */
export async function serve(context: Context, options: ServeOptions): Promise<number> {
  const name = checkName(options.name, "--name");
  const { port, dataPorts } = parsePorts(options);
  const limits = parseLimits(options);
  const identity = await loadOrCreateIdentity(context, "serve");
  const { keystore } = context;

  let terminal: Terminal | undefined;
  // log lines carry what peers sent: neutralised on every path
  const log = (line: string) => terminal ? terminal.info(line) : printInfo(sanitize(line));
  const wording = {
    allowCommand: (key: string) => `${commandPrefix(context)} allow ${key} --name NAME`,
  };
  const allowlist = new AllowlistReader(keystore, (path, errors) => {
    for (const e of errors) log(`warning: allowlist line ignored: ${path}:${e.line}: ${e.message}`);
  });
  const names = await FileNameBook.open(keystore, (line) => log(`warning: ${line}`));
  const roomLog = options.log === undefined ? undefined : await RoomLog.open(options.log);
  const output = serverOutput(options, roomLog, (line) => log(line), () => terminal, wording);
  // the operator is a member too: it may be sent files, and /send them (not headless)
  const fileView = options.headless ? undefined : new FileView({
    info: (text) => log(text),
    status: (text) => terminal?.status(text),
    emit: options.json ? (event) => printData(formatJsonEvent(event)) : undefined,
  });

  let stopped!: () => void;
  const done = new Promise<void>((resolve) => stopped = resolve);
  let fatal: unknown;
  const server = new ChatServer({
    hostname: options.host,
    port,
    dataPorts,
    name,
    identity,
    readAllowlist: () => allowlist.read(),
    // re-read per use, like the allowlist: `chat invite` works on a running server at once
    redeemInvite: (secret, key, declared) => keystore.redeemInvite(secret, key, declared),
    ...output,
    names,
    limits,
    operatorFiles: fileView?.events(),
    onFatal(error) {
      // up but deaf is the worst state: stop, so that a supervisor restarts the server
      fatal = error;
      void shutdown();
    },
  });
  start(server, options.host, port);
  await allowlist.read().catch((error) => log(`warning: ${error.message}`));
  const shutdown = () => server.close().then(() => stopped());
  const removeSignals = onSignals(shutdown);
  announce(context, { name, host: options.host, port: server.port, key: identity.publicKey });
  if (fileView) {
    terminal = operatorTerminal(server, name, Boolean(options.json), shutdown, (terminal) => ({
      files: () => server.files,
      view: fileView,
      downloads: new DownloadFolder(downloadsFolder(options.downloads)),
      terminal,
    }));
  }
  await done;
  removeSignals();
  terminal?.close();
  roomLog?.close();
  if (fatal !== undefined) {
    throw new UserError(
      `the server stopped: it could no longer accept connections (${(fatal as Error).message})`,
      { hints: ["start it again; if this repeats, check the system's limits (ulimit -n)"] },
    );
  }
  printInfo("the server stopped; everyone was told the chat ended");
  return Exit.OK;
}

/**
 * Where a server's events and lines go: the log on stderr (worded), the room's story as JSON
 * events (stdout with --json, the file with --log), and the operator's terminal.
 */
function serverOutput(
  options: ServeOptions,
  roomLog: RoomLog | undefined,
  log: (line: string) => void,
  terminal: () => Terminal | undefined,
  wording: LogWording,
): Pick<ServerConfig, "report" | "observe" | "operator"> {
  const telling = Boolean(options.json || roomLog);
  const story = (event: JsonEvent) => {
    const line = formatJsonEvent(event);
    if (options.json) printData(line);
    roomLog?.write(line);
  };
  return {
    report(event) {
      log(describeEvent(event, wording));
      const roomEvent = telling ? roomEventOf(event) : undefined;
      if (roomEvent) story(roomEvent);
    },
    // every line said in the room is an event (headless or not); no JSON when nobody reads it
    observe: telling
      ? (message) => {
        const line = lineEventOf(message);
        if (line) story(line);
      }
      : undefined,
    operator: options.headless ? undefined : (message) => {
      if (options.json) return; // the story has it
      if (message.type === MessageType.msg) {
        terminal()?.message(message.from, message.text, { action: message.action });
      } else if (message.type === MessageType.private) {
        const style = { action: message.action, private: true, highlight: true, bell: true };
        terminal()?.message(message.from, message.text, style);
      }
      // presence is already in the log (with the address and fingerprint)
    },
  };
}

/** The control port and the data-port range; a bad one, or a clash, is a usage error. */
function parsePorts(options: ServeOptions): { port: number; dataPorts?: PortRange } {
  let port: number, dataPorts: PortRange | undefined;
  try {
    port = parsePort(options.port, true);
    dataPorts = options.dataPorts === undefined ? undefined : parsePortRange(options.dataPorts);
  } catch (error) {
    throw new UserError((error as Error).message, { exitCode: Exit.USAGE });
  }
  if (dataPorts && port >= dataPorts.first && port <= dataPorts.last) {
    throw new UserError(
      `--data-ports ${options.dataPorts} includes the control port ${port}`,
      { exitCode: Exit.USAGE, hints: ["give data ports apart from --port"] },
    );
  }
  return { port, dataPorts };
}

/**
 * Carries out one operator command. Returns what the operator said (to show it like any
 * line), or nothing; throws an Error whose message is for the operator.
 */
function operatorCommand(
  server: ChatServer,
  command: LineCommand,
  terminal: Terminal,
  shutdown: () => void,
  files: FileCommandContext,
): { text: string; style: MessageStyle } | undefined {
  switch (command.kind) {
    case "send-file":
      return void sendFile(files, command.path, command.to);
    case "accept":
    case "decline":
      return void answerOffer(files, command.kind, command.reference);
    case "files":
      return void listFiles(files);
    case "quit":
      return void shutdown();
    case "who": {
      const names = server.members.slice(1);
      return void terminal.info(names.length ? `here: ${names.join(", ")}` : "nobody else is here");
    }
    case "help":
      return void terminal.info(OPERATOR_HELP);
    case "say":
      server.say(command.text, command.action); // checks it against --max-line-bytes
      return { text: command.text, style: { action: command.action } };
    case "msg": {
      const outcome = server.tell(command.to, command.text);
      if (outcome === "no-such-member") throw new Error(`nobody here is called ${command.to}`);
      if (outcome === "unsupported") {
        throw new Error(`${command.to}'s client cannot show private lines (an older version)`);
      }
      return { text: `(to ${command.to}) ${command.text}`, style: { private: true } };
    }
    case "kick":
      if (!server.kick(command.name, command.reason)) {
        throw new Error(`nobody here is called ${command.name}`);
      }
      return void terminal.info(`removed ${command.name}`);
    case "mute": {
      const ms = command.duration === undefined ? DEFAULT_MUTE_MS : parseDuration(command.duration);
      if (!server.mute(command.name, ms)) throw new Error(`nobody here is called ${command.name}`);
      return void terminal.info(`muted ${command.name}`);
    }
    case "ignore":
    case "unignore":
      throw new Error("/ignore is for clients: as the operator, /mute or /kick");
    case "usage":
      throw new Error(`usage: ${command.usage}`);
    case "unknown":
      throw new Error(`unknown command ${command.command}; type /help for the commands`);
    case "nothing":
      return undefined;
  }
}

/** How long /mute lasts when no duration is given. */
const DEFAULT_MUTE_MS = 10 * 60 * 1000;

/** The JSON event of a line said in the room or to one member (joins come from events). */
function lineEventOf(message: ServerMessage): JsonEvent | undefined {
  const action = message.type === MessageType.msg || message.type === MessageType.private
    ? (message.action ? { action: true as const } : {})
    : {};
  if (message.type === MessageType.msg) {
    return { event: "line", from: message.from, text: message.text, ...action };
  }
  if (message.type === MessageType.private) {
    const { from, to, text } = message;
    return { event: "private", from, to, text, ...action };
  }
  return undefined;
}

/** Opens the control port, or explains why it cannot be opened. */
function start(server: ChatServer, host: string, port: number): void {
  try {
    server.start();
  } catch (error) {
    const why = error instanceof Deno.errors.AddrInUse
      ? `port ${port} on ${host} is already in use`
      : (error as Error).message;
    throw new UserError(`cannot listen on ${host}:${port}: ${why}`, {
      hints: ["is another `chat serve` running? choose another port with --port N"],
    });
  }
}

/**
 * Says where the server listens: the line `chat: listening HOST:PORT KEY` (a stable format, for
 * scripts and tests), then the same for people, with the command clients join with.
 */
function announce(
  context: Context,
  server: { name: string; host: string; port: number; key: Uint8Array },
): void {
  const address = server.host.includes(":")
    ? `[${server.host}]:${server.port}`
    : `${server.host}:${server.port}`;
  const key = encodePublicKey(server.key);
  printInfo(`listening ${address} ${key}`);
  printInfo(
    `serving as ${server.name} on ${address} (key ${key}, fingerprint ${fingerprint(server.key)})`,
  );
  printInfo(`clients join with: ${commandPrefix(context, false)} connect ${address}`);
}

/** The operator's prompt: lines are said to the room; /who, /help and /quit are commands. */
function operatorTerminal(
  server: ChatServer,
  name: string,
  json: boolean,
  shutdown: () => void,
  fileContext: (terminal: Terminal) => FileCommandContext,
): Terminal {
  const view = detectTerminal(json);
  const terminal: Terminal = new Terminal(view, {
    line(text, info) {
      // at the prompt: commands; pasted: text; from a pipe: `/` commands (a script moderates)
      const mode = info.pasted ? TEXT : view.interactive ? TYPED : SCRIPTED;
      const command = parseLineCommand(text, mode);
      const run = () => operatorCommand(server, command, terminal, shutdown, files);
      try {
        const said = run();
        if (said) terminal.sent(name, said.text, said.style);
      } catch (error) {
        terminal.error((error as Error).message);
      }
    },
    // End of input does not stop a server: it keeps serving until signalled.
    end: () => terminal.stopReading(),
    interrupt: () => void shutdown(),
  });
  const files = fileContext(terminal);
  return terminal;
}
