/**
 * What a typed line means at the chat prompt, for `serve` and `connect` alike: an exit word, a
 * slash command, or text to say (`//` at the start sends one literal `/`). From a pipe, every
 * line is text, said verbatim.
 * @module
 */

/** Lines that end the chat when typed at the prompt. */
export const EXIT_WORDS: ReadonlySet<string> = new Set(["/quit", "exit"]);

/** What a line asks for. */
export type LineCommand =
  | { kind: "say"; text: string }
  | { kind: "quit" }
  | { kind: "who" }
  | { kind: "help" }
  | { kind: "unknown"; command: string }
  | { kind: "nothing" };

/**
 * Reads one line typed at the prompt (`interactive`), or read from a pipe (then it is text).
 *
 * @example
 * ```ts
 * import { parseLineCommand } from "./line_command.ts";
 * parseLineCommand("/who", true); // { kind: "who" }
 * parseLineCommand("//etc", true); // { kind: "say", text: "/etc" }
 * parseLineCommand("/who", false); // { kind: "say", text: "/who" }
 * ```
 */
export function parseLineCommand(line: string, interactive: boolean): LineCommand {
  if (!interactive) return line ? { kind: "say", text: line } : { kind: "nothing" };
  const command = line.trim();
  if (EXIT_WORDS.has(command)) return { kind: "quit" };
  if (command === "/who") return { kind: "who" };
  if (command === "/help") return { kind: "help" };
  if (command.startsWith("/") && !command.startsWith("//")) {
    return { kind: "unknown", command: command.split(/\s/)[0] };
  }
  if (!line) return { kind: "nothing" };
  return { kind: "say", text: line.startsWith("//") ? line.slice(1) : line };
}
