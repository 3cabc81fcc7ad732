/**
 * A client's conversation at the command line: lines in, messages out, until someone ends it;
 * after a lost connection it joins again by itself (at a terminal, or with --reconnect),
 * keeping the terminal and what is being typed.
 * @module
 */
import { type ChatEnd, ClientChat } from "../chat/client.ts";
import { lineProblem } from "../chat/lines.ts";
import { CLIENT_HELP, onSignals } from "./chatting.ts";
import type { ConnectOptions } from "./connect.ts";
import { type LineCommand, parseLineCommand, TEXT, TYPED } from "./line_command.ts";
import { reconnect } from "./reconnect.ts";
import { here, RoomView } from "./room_view.ts";
import { detectTerminal, Terminal, type TerminalOptions } from "./terminal.ts";
import { DownloadFolder } from "../chat/downloads.ts";
import { FileView } from "./file_view.ts";
import { answerOffer, type FileCommandContext, listFiles, sendFile } from "./file_commands.ts";
import { downloadsFolder } from "./files.ts";
import { formatJsonEvent } from "./json_events.ts";
import { printData } from "./output.ts";
import { type ClientSession } from "../chat/join.ts";

/** How a conversation ended: as a chat ends, or with a final refusal while reconnecting. */
export type ConversationEnd = ChatEnd | { kind: "final"; error: unknown };

/** One run of `chat connect` after its first join. */
export class Conversation {
  readonly #options: ConnectOptions;
  readonly #join: () => Promise<ClientSession>;
  readonly #view: TerminalOptions;
  readonly #terminal: Terminal;
  readonly #room: RoomView;
  readonly #files: FileView;
  readonly #fileContext: FileCommandContext;
  readonly #leaving = Promise.withResolvers<void>();
  #chat: ClientChat | undefined;
  #left = false;
  #refused = false;

  constructor(options: ConnectOptions, join: () => Promise<ClientSession>) {
    this.#options = options;
    this.#join = join;
    this.#view = detectTerminal(Boolean(options.json));
    this.#terminal = new Terminal(this.#view, {
      line: (text, info) => {
        const mode = this.#view.interactive && !info.pasted ? TYPED : TEXT;
        this.#command(parseLineCommand(text, mode));
      },
      end: () => {
        if (options.stay && !this.#view.interactive) this.#terminal.stopReading();
        else this.#leave();
      },
      interrupt: () => this.#leave(),
    });
    this.#room = new RoomView(this.#terminal, {
      json: Boolean(options.json),
      bell: options.bell ?? "mention",
    });
    const terminal = this.#terminal;
    this.#files = new FileView({
      info: (text) => terminal.info(text),
      status: this.#view.interactive ? (text) => terminal.status(text) : undefined,
      emit: options.json ? (event) => printData(formatJsonEvent(event)) : undefined,
    });
    this.#fileContext = {
      files: () => this.#chat?.files,
      view: this.#files,
      downloads: new DownloadFolder(downloadsFolder(options.downloads)),
      terminal,
    };
  }

  /**
   * Chats from `first` until the end. Says how it ended, and whether any line typed was refused
   * (then a clean end still exits 1).
   */
  async run(first: ClientSession): Promise<{ how: ConversationEnd; refused: boolean }> {
    const removeSignals = onSignals(() => this.#leave());
    let session = first;
    let how: ConversationEnd;
    while (true) {
      this.#room.ownName = session.name;
      this.#chat = new ClientChat(session, {
        ...this.#room.handlers(),
        files: this.#files.events(),
      });
      how = await this.#chat.ended;
      this.#chat = undefined;
      const retry = how.kind === "lost" && !this.#left &&
        (this.#view.interactive || this.#options.reconnect);
      if (!retry) break;
      const next = await this.#rejoin((how as { reason: string }).reason);
      if ("session" in next) session = next.session;
      else {
        how = next.how;
        break;
      }
    }
    removeSignals();
    this.#terminal.close();
    return { how, refused: this.#refused };
  }

  /** Joins again after a loss, saying so; or how the conversation ends instead. */
  async #rejoin(lost: string): Promise<{ session: ClientSession } | { how: ConversationEnd }> {
    const terminal = this.#terminal;
    const again = await reconnect(lost, {
      join: this.#join,
      say: (line) => terminal.info(line),
      stopped: this.#leaving.promise,
    });
    if (again.kind === "joined") {
      const { session } = again;
      terminal.info(`reconnected to ${session.serverName} as ${session.name}; ${here(session)}`);
      return { session };
    }
    if (again.kind === "final") return { how: { kind: "final", error: again.error } };
    if (again.kind === "stopped") return { how: { kind: "left" } };
    return { how: { kind: "lost", reason: `gave up reconnecting: ${again.reason}` } };
  }

  #leave(): void {
    this.#left = true;
    this.#leaving.resolve();
    if (this.#chat) void this.#chat.leave();
  }

  /** Carries out what a line asks for. */
  #command(command: LineCommand): void {
    const terminal = this.#terminal;
    switch (command.kind) {
      case "quit":
        return this.#leave();
      case "who":
        return this.#chat ? this.#chat.askWho() : terminal.error("not connected (reconnecting)");
      case "help":
        return terminal.info(CLIENT_HELP);
      case "say":
        return this.#send(command.text, command.action);
      case "msg":
        return this.#send(command.text, false, command.to);
      case "ignore":
        return terminal.info(this.#room.ignore(command.name));
      case "unignore":
        return terminal.info(this.#room.unignore(command.name));
      case "kick":
      case "mute":
        return terminal.error("only the server's operator can do that");
      case "send-file":
        return sendFile(this.#fileContext, command.path, command.to);
      case "accept":
      case "decline":
        return answerOffer(this.#fileContext, command.kind, command.reference);
      case "files":
        return listFiles(this.#fileContext);
      case "usage":
        return terminal.error(`usage: ${command.usage}`);
      case "unknown":
        return terminal.error(`unknown command ${command.command}`, [
          "type /help for the commands",
        ]);
    }
  }

  /** Sends a line to the room (or to `to` only), unless it is too long or we are away. */
  #send(text: string, action = false, to?: string): void {
    const chat = this.#chat, terminal = this.#terminal;
    if (!chat) return terminal.error("not connected (reconnecting): the line was not sent");
    const problem = lineProblem(text, chat.session.maxLineBytes);
    if (problem) {
      this.#refused = true;
      return terminal.error(problem);
    }
    try {
      const sending = to === undefined ? chat.say(text, action) : chat.tell(to, text, action);
      sending.catch(() => {}); // a failed send shows up as the chat ending
    } catch (error) {
      return terminal.error((error as Error).message); // no private lines on this server
    }
    const shown = to === undefined ? text : `(to ${to}) ${text}`;
    terminal.sent(chat.session.name, shown, { action, private: to !== undefined });
  }
}
