/**
 * `chat listen HOST[:PORT] [--json]`: joins and prints the room's story until the chat ends or a
 * signal comes: each line as `NAME: text` on stdout (joins, leaves and notices as `chat: …` on
 * stderr), or every event as one JSON object of the schema in json_events.ts.
 * @module
 */
import { type ChatHandlers, ClientChat, type LineDetails } from "../chat/client.ts";
import { clip, sanitize } from "../chat/untrusted.ts";
import { onSignals } from "./chatting.ts";
import { here, reportEnd } from "./connect.ts";
import { presenceText } from "./room_view.ts";
import { commandPrefix, type Context } from "./context.ts";
import { formatJsonEvent, type JsonEvent, presenceEvent } from "./json_events.ts";
import { printData, printError, printInfo, UserError } from "./output.ts";
import { resolvedFolder } from "./files.ts";
import { DownloadFolder } from "../chat/downloads.ts";
import { FileView } from "./file_view.ts";
import { joinUnattended, type UnattendedOptions } from "./unattended.ts";

/** Options of `chat listen`. */
export interface ListenOptions extends UnattendedOptions {
  json?: boolean;
  /** Accept every offered file into this folder. */
  acceptFiles?: string;
}

/** What `listen` prints: JSON events with --json, else `NAME: text` and `chat: …` lines. */
function listenHandlers(json: boolean, me: string): ChatHandlers {
  const event = (value: JsonEvent, at?: string) =>
    printData(formatJsonEvent(value, at ? new Date(at) : undefined));
  const flags = (details: LineDetails = {}) => ({
    ...(details.action ? { action: true as const } : {}),
    ...(details.replay ? { replay: true as const } : {}),
  });
  const plain = (from: string, text: string, details: LineDetails = {}, to?: string) => {
    const who = sanitize(from), said = sanitize(text);
    const line = details.action
      ? `* ${who} ${said}`
      : to
      ? `${who} (private): ${said}`
      : `${who}: ${said}`;
    printData(details.replay ? `(replay ${details.time ?? ""}) ${line}` : line);
  };
  return {
    message: (from, text, details) =>
      json
        ? event({ event: "line", from, text, ...flags(details) }, details?.time)
        : plain(from, text, details),
    private: (from, text, details) =>
      json
        ? event({ event: "private", from, to: me, text, ...flags(details) })
        : plain(from, text, details, me),
    presence: (kind, name, detail) =>
      json ? event(presenceEvent(kind, name, detail)) : printInfo(presenceText(kind, name, detail)),
    who() {},
    notice: (code, message) =>
      json ? event({ event: "notice", code, message }) : printInfo(`server: ${clip(message)}`),
  };
}

/** Runs `chat listen`; resolves with the exit code when the chat has ended. */
export async function listen(
  context: Context,
  target: string,
  options: ListenOptions,
): Promise<number> {
  const folder = options.acceptFiles === undefined
    ? undefined
    : new DownloadFolder(resolvedFolder(options.acceptFiles));
  try {
    await folder?.prepare();
  } catch (error) {
    throw new UserError(`--accept-files: ${(error as Error).message}`, {
      hints: ["give a folder of yours that you can write to (it is created if missing)"],
    });
  }
  const joined = await joinUnattended(context, target, {
    ...options,
    acceptsFiles: folder !== undefined,
  });
  if ("exitCode" in joined) return joined.exitCode;
  const { session } = joined;
  printInfo(
    `listening to ${session.serverName} at ${joined.address} as ${session.name}; ${here(session)}`,
  );
  const files = new FileView({
    info: printInfo,
    emit: options.json ? (event) => printData(formatJsonEvent(event)) : undefined,
  });
  const chat = new ClientChat(session, {
    ...listenHandlers(Boolean(options.json), session.name),
    files: folder ? files.events() : undefined,
  });
  // --accept-files: every offer is taken (resuming what the folder has of it)
  files.onOffer = (offer) =>
    folder &&
    chat.files?.accept(offer.id, folder).catch((error) =>
      printError(`cannot save ${clip(sanitize(offer.name), 120)}: ${(error as Error).message}`, [
        `check that ${options.acceptFiles} is a folder you can write to`,
      ])
    );
  const removeSignals = onSignals(() => void chat.leave());
  const end = await chat.ended;
  removeSignals();
  return reportEnd(end, joined.address, `${commandPrefix(context)} listen ${target}`, false);
}
