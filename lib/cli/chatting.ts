/**
 * What `serve` and `connect` share at the command line: in-chat help, the name check, and
 * graceful signals.
 * @module
 */
import { validateName } from "../protocol/names.ts";
import { UserError } from "./output.ts";
import { Exit } from "./exit.ts";

/** The in-chat help a client's /help shows. */
export const CLIENT_HELP = "commands: /who (who is here), /msg NAME text, /me text, " +
  "/send PATH NAME (offer a file), /accept N or /decline N (an offer), /files, /help, /quit " +
  "or exit (leave the chat); a line starting with // sends it with one / removed";

/** The in-chat help the operator's /help shows: their /quit ends the chat for everyone. */
export const OPERATOR_HELP = "commands: /who (who is here), /msg NAME text, /me text, " +
  "/kick NAME [reason], /mute NAME [duration], /send PATH NAME (offer a file), /accept N or " +
  "/decline N (an offer), /files, /help, /quit or exit (end the chat for everyone and stop " +
  "the server); a line starting with // sends it with one / removed";

/** Checks a display name from the command line; a bad one is a usage error. */
export function checkName(name: string, flag: string): string {
  try {
    return validateName(name, "name");
  } catch (error) {
    throw new UserError(`${flag}: ${(error as Error).message}`, { exitCode: Exit.USAGE });
  }
}

/** The default display name: the login name where it is a valid name, else "guest". */
export function defaultName(): string {
  const login = Deno.env.get("USER") ?? Deno.env.get("USERNAME") ?? "";
  const cleaned = login.replace(/[^A-Za-z0-9._-]/g, "").slice(0, 32);
  return cleaned || "guest";
}

/**
 * Calls `handler` on Ctrl-C (SIGINT) and, where the platform has them, SIGTERM and SIGHUP (the
 * terminal was closed): each ends the chat with the documented goodbye. Returns a function that
 * removes the listeners.
 */
export function onSignals(handler: () => void): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const signal of signals) Deno.addSignalListener(signal, handler);
  return () => signals.forEach((signal) => Deno.removeSignalListener(signal, handler));
}
