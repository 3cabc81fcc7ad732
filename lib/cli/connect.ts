/**
 * `chat connect HOST[:PORT]`: joins a server and chats, interactively at a terminal or line by
 * line from a pipe, and turns every way a chat can end into a message and an exit code.
 * @module
 */
import {
  type ChatEnd,
  ClientChat,
  ConnectError,
  joinServer,
  ServerKeyChangedError,
  ServerRefusedError,
} from "../chat/client.ts";
import { DEFAULT_PORT, Exit } from "../protocol/constants.ts";
import { ProtocolError, TimeoutError } from "../errors.ts";
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { lineProblem } from "../chat/lines.ts";
import { parsePort } from "../chat/data_port.ts";
import { detectTerminal, Terminal } from "./terminal.ts";
import { checkName, EXIT_WORDS, HELP_TEXT, onSignals } from "./chatting.ts";
import { type Context, parseKeyArgument } from "./context.ts";
import { loadOrCreateIdentity } from "./identity.ts";
import { printError, printInfo, UserError } from "./output.ts";

/** Options of `chat connect`. */
export interface ConnectOptions {
  name: string;
  serverKey?: string;
  json?: boolean;
  stay?: boolean;
}

/** Splits `HOST[:PORT]` (IPv6 as `[::1]:7447` or bare `::1`); throws a usage error. */
export function parseTarget(target: string): { hostname: string; port: number } {
  const usage = (why: string) =>
    new UserError(`invalid address "${target}": ${why}`, {
      exitCode: Exit.USAGE,
      hints: ["give HOST or HOST:PORT, e.g. chat connect 127.0.0.1:7447"],
    });
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(target);
  let hostname: string, portText: string | undefined;
  if (bracketed) [hostname, portText] = [bracketed[1], bracketed[2]];
  else if ((target.match(/:/g) ?? []).length > 1) hostname = target; // bare IPv6, no port
  else [hostname, portText] = target.split(":") as [string, string | undefined];
  if (!hostname) throw usage("no host");
  if (portText === undefined) return { hostname, port: DEFAULT_PORT };
  try {
    return { hostname, port: parsePort(portText) };
  } catch (error) {
    throw usage((error as Error).message);
  }
}

/** Runs `chat connect`; resolves with the exit code when the chat has ended. */
export async function connect(
  context: Context,
  target: string,
  options: ConnectOptions,
): Promise<number> {
  const { hostname, port } = parseTarget(target);
  const name = checkName(options.name, "--name");
  const serverKey = options.serverKey === undefined
    ? undefined
    : parseKeyArgument(options.serverKey);
  const identity = await loadOrCreateIdentity(context);
  const myKey = encodePublicKey(identity.publicKey);

  let chat: ClientChat;
  try {
    const session = await joinServer({
      hostname,
      port,
      identity,
      name,
      pins: context.keystore,
      serverKey,
      onPinned: (address, key) =>
        printInfo(
          `pinned the key of ${address}: fingerprint ${fingerprint(key)} (${
            encodePublicKey(key)
          }); it will be checked on every later connection`,
        ),
    });
    chat = new ClientChat(session, {
      message: (from, text) => terminal.message(from, text),
      presence: (event, who, detail) =>
        terminal.info(event === "join" ? `${who} joined (${detail})` : `${who} left (${detail})`),
      who: (members) =>
        terminal.info(members.length ? `here: ${members.join(", ")}` : "nobody else is here"),
      notice: (_code, message) => terminal.info(`server: ${message}`),
    });
    printInfo(
      `joined ${session.serverName} at ${hostname}:${port} as ${session.name}; ` +
        (session.members.length ? `here: ${session.members.join(", ")}` : "nobody else is here"),
    );
  } catch (error) {
    return reportJoinFailure(error, { hostname, port, name, myKey, context });
  }

  // the conversation: lines in, messages out, until someone ends it
  const view = detectTerminal(Boolean(options.json));
  let refusedLines = 0;
  const send = (text: string) => {
    const problem = lineProblem(text, chat.session.maxLineBytes);
    if (problem) {
      refusedLines++;
      return terminal.error(problem);
    }
    chat.say(text).catch(() => {}); // a failed send shows up as the chat ending
    terminal.sent(chat.session.name, text);
  };
  const leave = () => void chat.leave();
  const terminal: Terminal = new Terminal(view, {
    line(text) {
      if (!view.interactive) return text ? send(text) : undefined; // a pipe: verbatim
      const command = text.trim();
      if (EXIT_WORDS.has(command)) return leave();
      if (command === "/who") return chat.askWho();
      if (command === "/help") return terminal.info(HELP_TEXT);
      if (command.startsWith("/") && !command.startsWith("//")) {
        return terminal.error(`unknown command ${command}`, ["type /help for the commands"]);
      }
      if (text) send(text.startsWith("//") ? text.slice(1) : text);
    },
    end() {
      if (options.stay && !view.interactive) terminal.stopReading();
      else leave();
    },
    interrupt: leave,
  });
  const removeSignals = onSignals(leave);
  const end = await chat.ended;
  removeSignals();
  terminal.close();
  const code = reportEnd(end, hostname, port);
  return code === Exit.OK && refusedLines > 0 ? Exit.ERROR : code;
}

/** Prints how the chat ended and returns the exit code. */
function reportEnd(end: ChatEnd, hostname: string, port: number): number {
  switch (end.kind) {
    case "left":
      return Exit.OK;
    case "server-ended":
      printInfo("the server ended the chat");
      return Exit.OK;
    case "removed":
      printError(`the server removed you: ${end.message} (${end.code})`, [
        end.code === "revoked"
          ? "your key is no longer on the allowlist; ask the operator to allow it again"
          : `reconnect with: chat connect ${hostname}:${port}`,
      ]);
      return Exit.REMOVED;
    case "lost":
      printError(`lost the connection to ${hostname}:${port}: ${end.reason}`, [
        `reconnect with: chat connect ${hostname}:${port}`,
      ]);
      return Exit.CONNECTION;
  }
}

/** Explains why joining failed, with what to do, and returns the exit code. */
function reportJoinFailure(
  error: unknown,
  where: { hostname: string; port: number; name: string; myKey: string; context: Context },
): number {
  const address = `${where.hostname}:${where.port}`;
  if (error instanceof ServerKeyChangedError) {
    const known = where.context.keystore.paths.knownServers;
    printError(
      `WARNING: THE SERVER KEY FOR ${error.address} HAS CHANGED; refusing to connect`,
      [
        `${error.explicit ? "expected (--server-key)" : "pinned"}: fingerprint ${
          fingerprint(error.expected)
        } (${encodePublicKey(error.expected)})`,
        `presented now:             fingerprint ${fingerprint(error.presented)} (${
          encodePublicKey(error.presented)
        })`,
        "someone may be impersonating the server (a man-in-the-middle attack), or its operator " +
        "replaced its key",
        "check the key with the server's operator (`chat pubkey` on the server), by a channel " +
        "you trust",
        `if it really changed, connect once with: chat connect ${address} --server-key ${
          encodePublicKey(error.presented)
        } (or remove the ${error.address} line from ${known})`,
      ],
    );
    return Exit.SERVER_KEY_CHANGED;
  }
  if (error instanceof ServerRefusedError) {
    if (error.code === "not-allowed") {
      printError(`the server at ${address} does not allow your key`, [
        `your key: ${where.myKey}`,
        `ask the server's operator to run: chat allow ${where.myKey} --name ${where.name}`,
        `then connect again with: chat connect ${address}`,
      ]);
      return Exit.NOT_ALLOWED;
    }
    printError(`the server at ${address} refused: ${error.serverMessage} (${error.code})`, [
      "try again later",
    ]);
    return Exit.CONNECTION;
  }
  if (error instanceof ConnectError) {
    printError(error.message, [`check the address and port; the default port is ${DEFAULT_PORT}`]);
    return Exit.CONNECTION;
  }
  if (error instanceof ProtocolError || error instanceof TimeoutError) {
    printError(`could not join ${address}: ${error.message}`, [
      "is it a chat server? is it the same protocol version (chat/1)?",
    ]);
    return Exit.CONNECTION;
  }
  throw error;
}
