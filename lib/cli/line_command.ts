/**
 * What a typed line means at the chat prompt, for `serve` and `connect` alike: an exit word, a
 * slash command, or text to say (`//` at the start sends one literal `/`). Pasted text and a
 * client's piped lines are always text; a server's piped lines may be commands (a supervising
 * script moderates that way).
 * @module
 */

/** Lines that end the chat when typed at the prompt. */
export const EXIT_WORDS: ReadonlySet<string> = new Set(["/quit", "exit"]);

/** What a line asks for. */
export type LineCommand =
  | { kind: "say"; text: string; action?: boolean }
  | { kind: "msg"; to: string; text: string }
  | { kind: "kick"; name: string; reason: string }
  | { kind: "mute"; name: string; duration?: string }
  | { kind: "ignore"; name: string }
  | { kind: "unignore"; name: string }
  | { kind: "send-file"; path: string; to: string }
  | { kind: "accept"; reference: string }
  | { kind: "decline"; reference: string }
  | { kind: "files" }
  | { kind: "quit" }
  | { kind: "who" }
  | { kind: "help" }
  | { kind: "usage"; command: string; usage: string }
  | { kind: "unknown"; command: string }
  | { kind: "nothing" };

/** How lines are read: slash commands at all, and bare exit words (`exit`) too. */
export interface LineMode {
  commands: boolean;
  exitWords: boolean;
}

/** At a terminal: commands and exit words. */
export const TYPED: LineMode = { commands: true, exitWords: true };
/** Pasted, or a client's pipe: everything is text. */
export const TEXT: LineMode = { commands: false, exitWords: false };
/** A server's pipe: `/` commands (`//` for a literal `/`), but `exit` is text. */
export const SCRIPTED: LineMode = { commands: true, exitWords: false };

/** The commands with arguments, and how they are written. */
const USAGE: Record<string, string> = {
  "/msg": "/msg NAME text",
  "/me": "/me text",
  "/kick": "/kick NAME [reason]",
  "/mute": "/mute NAME [duration, e.g. 90s, 10m, 2h]",
  "/ignore": "/ignore NAME",
  "/unignore": "/unignore NAME",
  "/send": "/send PATH NAME (the file at PATH to the member NAME)",
  "/accept": "/accept N (the number shown with the offer)",
  "/decline": "/decline N",
};

/**
 * Reads one line.
 *
 * @example
 * ```ts
 * import { parseLineCommand, TEXT, TYPED } from "./line_command.ts";
 * parseLineCommand("/who", TYPED); // { kind: "who" }
 * parseLineCommand("//etc", TYPED); // { kind: "say", text: "/etc" }
 * parseLineCommand("/msg bob hi there", TYPED); // { kind: "msg", to: "bob", text: "hi there" }
 * parseLineCommand("/who", TEXT); // { kind: "say", text: "/who" }
 * parseLineCommand("/send my notes.txt bob", TYPED); // { kind: "send-file", path: "my notes.txt", to: "bob" }
 * ```
 */
export function parseLineCommand(line: string, mode: LineMode): LineCommand {
  if (!mode.commands) return line ? { kind: "say", text: line } : { kind: "nothing" };
  const command = line.trim();
  if (command === "/quit" || (mode.exitWords && EXIT_WORDS.has(command))) return { kind: "quit" };
  if (command === "/who") return { kind: "who" };
  if (command === "/help") return { kind: "help" };
  if (command === "/files") return { kind: "files" };
  if (command.startsWith("/") && !command.startsWith("//")) return withArguments(command);
  if (!line) return { kind: "nothing" };
  return { kind: "say", text: line.startsWith("//") ? line.slice(1) : line };
}

function withArguments(command: string): LineCommand {
  const [name, ...rest] = command.split(/\s+/);
  const [first = "", ...more] = rest;
  const text = command.slice(name.length).trim();
  const afterFirst = text.slice(first.length).trim();
  const usage = (): LineCommand => ({ kind: "usage", command: name, usage: USAGE[name] });
  switch (name) {
    case "/me":
      return text ? { kind: "say", text, action: true } : usage();
    case "/msg":
      return first && afterFirst ? { kind: "msg", to: first, text: afterFirst } : usage();
    case "/kick":
      return first ? { kind: "kick", name: first, reason: afterFirst } : usage();
    case "/mute":
      return first && more.length <= 1 ? { kind: "mute", name: first, duration: more[0] } : usage();
    case "/ignore":
    case "/unignore":
      return first && more.length === 0
        ? { kind: name === "/ignore" ? "ignore" : "unignore", name: first }
        : usage();
    case "/send": {
      // the name is the last word, so the path may have spaces
      const cut = text.search(/\s+\S+$/);
      return cut > 0
        ? { kind: "send-file", path: text.slice(0, cut).trim(), to: text.slice(cut).trim() }
        : usage();
    }
    case "/accept":
    case "/decline":
      return first && more.length === 0
        ? { kind: name === "/accept" ? "accept" : "decline", reference: first }
        : usage();
    default:
      return { kind: "unknown", command: name };
  }
}
