/**
 * `chat listen HOST[:PORT] [--json]`: joins and prints the room's story until the chat ends or a
 * signal comes: each line as `NAME: text` on stdout (joins, leaves and notices as `chat: …` on
 * stderr), or every event as one JSON object of the schema in json_events.ts.
 * @module
 */
import { type ChatHandlers, ClientChat } from "../chat/client.ts";
import { clip, sanitize } from "../chat/untrusted.ts";
import { onSignals } from "./chatting.ts";
import { here, presenceText, reportEnd } from "./connect.ts";
import { commandPrefix, type Context } from "./context.ts";
import { formatJsonEvent, type JsonEvent, presenceEvent } from "./json_events.ts";
import { printData, printInfo } from "./output.ts";
import { joinUnattended, type UnattendedOptions } from "./unattended.ts";

/** Options of `chat listen`. */
export interface ListenOptions extends UnattendedOptions {
  json?: boolean;
}

/** What `listen` prints: JSON events with --json, else `NAME: text` and `chat: …` lines. */
function listenHandlers(json: boolean): ChatHandlers {
  const event = (value: JsonEvent) => printData(formatJsonEvent(value));
  return {
    message: (from, text) =>
      json
        ? event({ event: "line", from, text })
        : printData(`${sanitize(from)}: ${sanitize(text)}`),
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
  const joined = await joinUnattended(context, target, options);
  if ("exitCode" in joined) return joined.exitCode;
  const { session } = joined;
  printInfo(
    `listening to ${session.serverName} at ${joined.address} as ${session.name}; ${here(session)}`,
  );
  const chat = new ClientChat(session, listenHandlers(Boolean(options.json)));
  const removeSignals = onSignals(() => void chat.leave());
  const end = await chat.ended;
  removeSignals();
  return reportEnd(end, joined.address, `${commandPrefix(context)} listen ${target}`, false);
}
