/**
 * `chat send HOST[:PORT] --file PATH --to NAME`: offers one file to one member, sends it as
 * fast as the receiver takes it, and exits 0 only once the receiver has the whole file and has
 * verified its SHA-256. Offering the same file again resumes where the receiver stopped.
 * @module
 */
import { type ChatEnd, ClientChat } from "../chat/client.ts";
import type { TransferEnd } from "../chat/file_transfer.ts";
import { hashFile } from "../chat/file_io.ts";
import { FileEndCode } from "../protocol/file_messages.ts";
import { onSignals } from "./chatting.ts";
import type { Context } from "./context.ts";
import { Exit } from "./exit.ts";
import { FileView } from "./file_view.ts";
import { printError, printInfo, UserError } from "./output.ts";
import type { SendOptions } from "./send.ts";
import { joinUnattended } from "./unattended.ts";

/** Checks `--file` before anything is sent: a readable regular file. */
async function checkFile(path: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    throw new UserError(`cannot read ${path}: ${(error as Error).message}`, {
      exitCode: Exit.ERROR,
      hints: ["give the path of a file you can read"],
    });
  }
  if (!info.isFile) {
    throw new UserError(`${path} is not a regular file`, {
      exitCode: Exit.ERROR,
      hints: ["send one file at a time; for a folder, send an archive of it (tar czf)"],
    });
  }
}

/** The exit code for a transfer's end, given how the chat ended if it did. */
function exitCodeOf(end: TransferEnd, chatEnd: ChatEnd | undefined): number {
  if (end.code === FileEndCode.done) return Exit.OK;
  if (chatEnd?.kind === "removed") return Exit.REMOVED;
  if (chatEnd && chatEnd.kind !== "left") return Exit.CONNECTION;
  return Exit.ERROR;
}

/** Runs `chat send --file`; resolves with the exit code. */
export async function sendFile(
  context: Context,
  target: string,
  path: string,
  options: SendOptions,
): Promise<number> {
  if (options.to === undefined) {
    throw new UserError("--file needs --to NAME: a file goes to one member", {
      exitCode: Exit.USAGE,
    });
  }
  await checkFile(path);
  // hashing 256 MiB takes ~0.35 s: done while the handshake and join go on
  const digest = hashFile(path);
  digest.catch(() => {}); // reported by offer() below, if we get that far
  const joined = await joinUnattended(context, target, options);
  if ("exitCode" in joined) return joined.exitCode;
  const view = new FileView({ info: printInfo });
  const chat = new ClientChat(joined.session, {
    message() {},
    presence() {},
    who() {},
    notice() {},
    files: view.events(),
  });
  let chatEnd: ChatEnd | undefined;
  chat.ended.then((end) => chatEnd = end);
  if (!chat.files) {
    await chat.leave();
    printError(`the server at ${joined.address} cannot relay files (an older version)`, [
      "ask the operator to upgrade",
    ]);
    return Exit.ERROR;
  }
  const files = chat.files;
  const removeSignals = onSignals(() => files.cancelAll("the sender stopped"));
  let end: TransferEnd;
  try {
    end = await files.offer(path, options.to, {
      onOffered: (info) => view.offered(info),
      digest,
    });
  } catch (error) {
    removeSignals();
    await chat.leave();
    printError(`cannot send ${path}: ${(error as Error).message}`);
    return Exit.ERROR;
  }
  removeSignals();
  await chat.leave();
  return exitCodeOf(end, chatEnd);
}
