/**
 * `chat send HOST[:PORT] TEXT…` and `chat send HOST[:PORT] -` (lines from stdin): joins, says
 * the lines in order, leaves, and exits 0 only once the server has read every one of them.
 * @module
 */
import { lineProblem } from "../chat/lines.ts";
import { clip } from "../chat/untrusted.ts";
import { Feature, NoticeCode } from "../protocol/messages.ts";
import { ClientChat } from "../chat/client.ts";
import { parseTarget } from "./args.ts";
import { type Context } from "./context.ts";
import { Exit } from "./exit.ts";
import { printError, printInfo, UserError } from "./output.ts";
import { readStdinText } from "./terminal.ts";
import { joinUnattended, type UnattendedOptions } from "./unattended.ts";
import { sendFile } from "./send_file.ts";

/** Options of `chat send`. */
export type SendOptions = UnattendedOptions & {
  /** Send the lines to this member only, as private lines (with `file`: the file's receiver). */
  to?: string;
  /** Offer this file to `to` instead of saying lines (send_file.ts). */
  file?: string;
};

/** The most `chat send -` reads from stdin. */
export const MAX_SEND_STDIN_BYTES = 16 << 20;

/**
 * The lines to send: the words of `text` joined by spaces, or stdin's lines for `-`; a line
 * break in either starts a new line, and empty lines are skipped (as `connect` does from a pipe).
 */
async function linesOf(text: string[]): Promise<string[]> {
  const fromStdin = text.length === 1 && text[0] === "-";
  if (!fromStdin && text.length === 0) {
    throw new UserError("nothing to send", {
      exitCode: Exit.USAGE,
      hints: ["give the text after the address, or - to send the lines of stdin"],
    });
  }
  if (fromStdin && Deno.stdin.isTerminal()) {
    printInfo("reading the lines to send from stdin; end with Ctrl-D");
  }
  const all = fromStdin
    ? await readStdinText(MAX_SEND_STDIN_BYTES, "nothing was sent")
    : text.join(" ");
  return all.split(/\r?\n/).filter((line) => line !== "");
}

/** Says why line `index` cannot be sent, and that nothing was. */
function refuse(lines: string[], index: number, problem: string): number {
  printError(`line ${index + 1} of ${lines.length}: ${problem}`, [
    "nothing was sent: shorten or split the line and send again",
  ]);
  return Exit.ERROR;
}

/** The first line that cannot be sent under `maxLineBytes`, with why. */
function firstProblem(lines: string[], maxLineBytes?: number) {
  for (const [index, line] of lines.entries()) {
    const problem = lineProblem(line, maxLineBytes);
    if (problem) return { index, problem };
  }
  return undefined;
}

/** Runs `chat send`; resolves with the exit code once the server has every line (or not). */
export async function send(
  context: Context,
  target: string,
  text: string[],
  options: SendOptions,
): Promise<number> {
  parseTarget(target); // a bad address is a usage error before stdin is read
  if (options.file !== undefined) {
    if (text.length > 0) {
      throw new UserError("give either --file or text to say, not both", {
        exitCode: Exit.USAGE,
      });
    }
    return await sendFile(context, target, options.file, options);
  }
  const lines = await linesOf(text);
  // a line no server could take is refused before connecting
  const early = firstProblem(lines);
  if (early) return refuse(lines, early.index, early.problem);

  const joined = await joinUnattended(context, target, options);
  if ("exitCode" in joined) return joined.exitCode;
  let badLine: string | undefined, noSuchMember: string | undefined;
  const chat = new ClientChat(joined.session, {
    message() {},
    presence() {},
    who() {},
    notice(code, message) {
      if (code === NoticeCode.badLine) badLine ??= message;
      if (code === NoticeCode.noSuchMember || code === NoticeCode.unsupported) {
        noSuchMember ??= message;
      }
    },
  });
  // this server's limit, from its welcome: nothing is sent unless every line fits
  const late = firstProblem(lines, joined.session.maxLineBytes);
  if (late) {
    await chat.leave();
    return refuse(lines, late.index, late.problem);
  }
  if (options.to !== undefined && !joined.session.features.has(Feature.private)) {
    await chat.leave();
    printError(`the server at ${joined.address} has no private messages (an older version)`, [
      "send to the room without --to, or ask the operator to upgrade",
    ]);
    return Exit.ERROR;
  }
  const end = await chat.sendAll(lines, options.to);
  if (badLine !== undefined || noSuchMember !== undefined) {
    if (noSuchMember !== undefined) {
      printError(`the server could not deliver: ${clip(noSuchMember)}`);
      return Exit.ERROR;
    }
    printError(`the server refused a line: ${clip(badLine ?? "")}`);
    return Exit.ERROR;
  }
  const unsure = "the server may not have read every line; sending again may repeat some";
  switch (end.kind) {
    case "left":
      printInfo(`sent ${lines.length} line(s) to ${joined.address}`);
      return Exit.OK;
    case "removed":
      printError(`the server removed you: ${clip(end.message)} (${end.code})`, [unsure]);
      return Exit.REMOVED;
    case "server-ended":
      printError("the server ended the chat before it had read our bye", [unsure]);
      return Exit.CONNECTION;
    case "lost":
      printError(`lost the connection to ${joined.address}: ${end.reason}`, [unsure]);
      return Exit.CONNECTION;
  }
}
