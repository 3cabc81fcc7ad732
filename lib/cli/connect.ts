/**
 * `chat connect HOST[:PORT]`: joins a server and chats, interactively at a terminal or line by
 * line from a pipe, and turns every way a chat can end into a message and an exit code.
 * @module
 */
import { type ChatEnd, ClientChat, joinServer } from "../chat/client.ts";
import { DEFAULT_PORT } from "../protocol/constants.ts";
export { parseTarget };
import {
  ConnectError,
  ProtocolError,
  ServerKeyChangedError,
  ServerRefusedError,
  TimeoutError,
} from "../errors.ts";
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { lineProblem } from "../chat/lines.ts";
import { clip } from "../chat/untrusted.ts";
import { ErrorCode } from "../protocol/messages.ts";
import { parseTarget } from "./args.ts";
import { detectTerminal, Terminal } from "./terminal.ts";
import { checkName, CLIENT_HELP, onSignals } from "./chatting.ts";
import { commandPrefix, type Context, parseKeyArgument } from "./context.ts";
import { parseLineCommand } from "./line_command.ts";
import { loadOrCreateIdentity } from "./identity.ts";
import { printError, printInfo } from "./output.ts";
import { Exit } from "./exit.ts";

/** Options of `chat connect`. */
export interface ConnectOptions {
  name: string;
  serverKey?: string;
  json?: boolean;
  stay?: boolean;
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
      notice: (_code, message) => terminal.info(`server: ${clip(message)}`),
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
      const command = parseLineCommand(text, view.interactive);
      switch (command.kind) {
        case "quit":
          return leave();
        case "who":
          return chat.askWho();
        case "help":
          return terminal.info(CLIENT_HELP);
        case "unknown":
          return terminal.error(`unknown command ${command.command}`, [
            "type /help for the commands",
          ]);
        case "say":
          return send(command.text);
      }
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
  const code = reportEnd(end, target, `${commandPrefix(context)} connect ${target}`);
  return code === Exit.OK && refusedLines > 0 ? Exit.ERROR : code;
}

/** Prints how the chat ended and returns the exit code; `again` is the command to reconnect. */
function reportEnd(end: ChatEnd, target: string, again: string): number {
  switch (end.kind) {
    case "left":
      return Exit.OK;
    case "server-ended":
      printInfo("the server ended the chat");
      return Exit.OK;
    case "removed":
      printError(`the server removed you: ${clip(end.message)} (${end.code})`, [
        end.code === ErrorCode.revoked
          ? "your key is no longer on the allowlist; ask the operator to allow it again"
          : `reconnect with: ${again}`,
      ]);
      return Exit.REMOVED;
    case "lost":
      printError(`lost the connection to ${target}: ${end.reason}`, [`reconnect with: ${again}`]);
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
        "ask the server's operator, by a channel you trust (in person, a call), for the " +
        "fingerprint `chat pubkey` prints on the server",
        `only if it is ${fingerprint(error.presented)}, remove the ${error.address} line from ` +
        `${known} and connect again`,
      ],
    );
    return Exit.SERVER_KEY_CHANGED;
  }
  if (error instanceof ServerRefusedError) {
    const again = `${commandPrefix(where.context)} connect ${address}`;
    if (error.code === ErrorCode.notAllowed) {
      printError(`the server at ${address} does not allow your key`, [
        `your key: ${where.myKey}`,
        `ask the server's operator to run: chat allow ${where.myKey} --name ${where.name}`,
        `then connect again with: ${again}`,
      ]);
      return Exit.NOT_ALLOWED;
    }
    if (error.code === ErrorCode.revoked) {
      printError(`the server at ${address} removed your key from its allowlist`, [
        "ask the operator to allow it again",
      ]);
      return Exit.NOT_ALLOWED;
    }
    if (error.code === ErrorCode.nameConfusable) {
      printError(`the server at ${address} refused your name: ${clip(error.serverMessage)}`, [
        `connect with another name: ${again} --name OTHER`,
      ]);
      return Exit.CONNECTION;
    }
    printError(`the server at ${address} refused: ${clip(error.serverMessage)} (${error.code})`, [
      "try again later",
    ]);
    return Exit.CONNECTION;
  }
  if (error instanceof ConnectError) {
    printError(error.message, [
      error.failure === "refused"
        ? "is `chat serve` running there, on that port?"
        : `check the address and port; the default port is ${DEFAULT_PORT}`,
    ]);
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
