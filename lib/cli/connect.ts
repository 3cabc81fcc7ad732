/**
 * `chat connect HOST[:PORT]`: joins a server and chats, interactively at a terminal or line by
 * line from a pipe, and turns every way a chat can end into a message and an exit code.
 * @module
 */
import { type ChatEnd } from "../chat/client.ts";
import { isFinal } from "./reconnect.ts";
import { Conversation } from "./conversation.ts";
import type { KeyPair } from "../protocol/crypto.ts";
import { DEFAULT_PORT } from "../protocol/constants.ts";
export { parseTarget };
import {
  ConnectError,
  ProtocolError,
  ServerKeyChangedError,
  ServerRefusedError,
  TimeoutError,
  UnknownServerError,
} from "../errors.ts";
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { clip } from "../chat/untrusted.ts";
import { ErrorCode } from "../protocol/messages.ts";
import { parseTarget } from "./args.ts";
import { detectTerminal } from "./terminal.ts";
import { checkName } from "./chatting.ts";
import { commandPrefix, type Context, parseKeyArgument } from "./context.ts";
import { type BellMode, here } from "./room_view.ts";
export { here };
import { loadOrCreateIdentity } from "./identity.ts";
import { printError, printInfo, writeStderr } from "./output.ts";
import { Exit } from "./exit.ts";
import { type ClientSession, joinServer } from "../chat/join.ts";

/** Options of `chat connect`. */
export interface ConnectOptions {
  name: string;
  serverKey?: string;
  json?: boolean;
  stay?: boolean;
  /** Reconnect after a lost connection even when not at a terminal. */
  reconnect?: boolean;
  /** When the bell rings at a terminal (default: a private line or a mention of your name). */
  bell?: BellMode;
  /** Where accepted files land (files.ts has the default). */
  downloads?: string;
}

/**
 * Runs `chat connect`; resolves with the exit code when the chat has ended. `invite` (from
 * `chat join`) is an invite's secret and the server key its token holds: the first join
 * presents the secret and refuses any other server key; reconnections need neither.
 */
export async function connect(
  context: Context,
  target: string,
  options: ConnectOptions,
  invite?: { secret: Uint8Array; serverKey: Uint8Array },
): Promise<number> {
  const where = { ...joinTarget(target, options), acceptsFiles: true };
  if (invite) where.serverKey = invite.serverKey; // the token's key, and no other
  const identity = await loadOrCreateIdentity(context, invite ? "join" : "connect");
  let secret = invite?.secret;
  // at a terminal, a first contact is the person's decision (ssh's question); from a pipe the
  // key is trusted on first use, and the pinning is said on stderr
  let trusted = false;
  const ask = !where.serverKey && detectTerminal(Boolean(options.json)).interactive
    ? async (address: string, key: Uint8Array) => trusted = await askFirstContact(address, key)
    : undefined;
  // every join, the first and each reconnection, checks the server's key against the pin
  const join = () => joinWith(context, where, identity, "pin", secret, ask);
  const failed = (error: unknown) =>
    reportJoinFailure(error, {
      ...where,
      myKey: encodePublicKey(identity.publicKey),
      context,
      invite: invite !== undefined,
    });
  let session: ClientSession;
  try {
    session = await join();
  } catch (error) {
    // while the person read the fingerprint the server may have given up on the handshake:
    // the key is pinned now, so once more, without a question
    if (!trusted || isFinal(error)) return failed(error);
    try {
      session = await join();
    } catch (again) {
      return failed(again);
    }
  }
  printInfo(
    `joined ${session.serverName} at ${where.hostname}:${where.port} as ${session.name}; ` +
      here(session),
  );
  if (secret) {
    secret = undefined; // used: a reconnection is an ordinary connect
    printInfo(
      `the invite let your key in and the server's key is pinned: from now on, join with: ` +
        `${commandPrefix(context)} connect ${target}`,
    );
  }
  const end = await new Conversation(options, join).run(session);
  if (end.how.kind === "final") return failed(end.how.error);
  return reportEnd(end.how, target, `${commandPrefix(context)} connect ${target}`, end.refused);
}

/** Where a command joins, and as whom: checked from its arguments (a bad one is exit 2). */
export interface JoinTarget {
  hostname: string;
  port: number;
  name: string;
  /** `--server-key`: the only key to accept. */
  serverKey?: Uint8Array;
  /** Whether this client takes files (it says so in its join: section 7.11). */
  acceptsFiles?: boolean;
}

/** Checks `HOST[:PORT]`, `--name` and `--server-key` of a command that joins a server. */
export function joinTarget(
  target: string,
  options: { name: string; serverKey?: string },
): JoinTarget {
  const { hostname, port } = parseTarget(target);
  const name = checkName(options.name, "--name");
  const serverKey = options.serverKey === undefined
    ? undefined
    : parseKeyArgument(options.serverKey);
  return { hostname, port, name, serverKey };
}

/**
 * Joins `where` as `identity`, checking the server's key against `--server-key` or the pins; a
 * first contact pins the key, or with `firstContact: "refuse"` throws UnknownServerError.
 */
export function joinWith(
  context: Context,
  where: JoinTarget,
  identity: KeyPair,
  firstContact: "pin" | "refuse" = "pin",
  invite?: Uint8Array,
  confirmFirstContact?: (address: string, key: Uint8Array) => Promise<boolean>,
): Promise<ClientSession> {
  return joinServer({
    ...where,
    identity,
    pins: context.keystore,
    firstContact,
    invite,
    confirmFirstContact,
    onPinned: printPinned,
  });
}

/**
 * The first-contact question at a terminal, as ssh asks it: the server's fingerprint, how to
 * check it, and a yes or no (anything but yes is no). Read in the terminal's own line mode,
 * before the chat's prompt takes the terminal.
 */
export async function askFirstContact(address: string, key: Uint8Array): Promise<boolean> {
  printInfo(`the server at ${address} is not known yet (no key pinned for it)`);
  printInfo(`its key: ${encodePublicKey(key)}`);
  printInfo(`its fingerprint: ${fingerprint(key)}`);
  printInfo(
    "compare the fingerprint with the one its operator sees (`chat pubkey` on the server), by " +
      "a channel you trust",
  );
  writeStderr("chat: trust this key and connect? [yes/no] ");
  const answer = (await readAnswer()).trim().toLowerCase();
  return answer === "yes" || answer === "y";
}

/** One line typed at the terminal (cooked mode), or "" at the end of input. */
async function readAnswer(): Promise<string> {
  const buffer = new Uint8Array(256);
  let text = "";
  while (!text.includes("\n")) {
    const n = await Deno.stdin.read(buffer);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return text.split("\n")[0];
}

/** Says that a server's key was pinned on first contact (`ConnectConfig.onPinned`). */
export function printPinned(address: string, key: Uint8Array): void {
  printInfo(
    `pinned the key of ${address}: fingerprint ${fingerprint(key)} (${
      encodePublicKey(key)
    }); it will be checked on every later connection`,
  );
}

/**
 * Prints how the chat ended and returns the exit code; `again` is the command to reconnect. A
 * clean end after a refused line is exit 1: a script's line was not sent.
 */
export function reportEnd(end: ChatEnd, target: string, again: string, refused: boolean): number {
  const clean = refused ? Exit.ERROR : Exit.OK;
  switch (end.kind) {
    case "left":
      return clean;
    case "server-ended":
      printInfo("the server ended the chat");
      return clean;
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
export function reportJoinFailure(
  error: unknown,
  where: {
    hostname: string;
    port: number;
    name: string;
    myKey: string;
    context: Context;
    invite?: boolean;
  },
): number {
  const address = `${where.hostname}:${where.port}`;
  if (error instanceof ServerKeyChangedError) {
    return where.invite ? reportInviteKey(error) : reportKeyChanged(error, where.context);
  }
  if (error instanceof UnknownServerError) {
    printError(`${error.message}: refusing to trust a key on first contact`, [
      `presented: fingerprint ${fingerprint(error.presented)} (${
        encodePublicKey(error.presented)
      })`,
      "get the server's key from its operator (`chat pubkey` on the server) by a channel you " +
      "trust, then give it with --server-key KEY (it is pinned for later runs)",
      "or, to trust the key the server presents on first contact and pin it, add --accept-new",
    ]);
    return Exit.SERVER_KEY_CHANGED;
  }
  if (error instanceof ServerRefusedError) {
    const again = `${commandPrefix(where.context)} connect ${address}`;
    if (error.code === ErrorCode.badInvite) {
      printError(`the server at ${address} refused the invite: ${clip(error.serverMessage)}`, [
        "an invite works for a limited time and number of uses; ask the server's operator " +
        "for a new one (chat invite --name NAME) and run chat join with it",
      ]);
      return Exit.BAD_INVITE;
    }
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

/** The refusal of a server whose key is not the one the invite token holds (before m3). */
function reportInviteKey(error: ServerKeyChangedError): number {
  printError(
    `the server at ${error.address} is not the server of the invite: refusing to connect`,
    [
      `the invite is for fingerprint ${fingerprint(error.expected)}; the server there presented ` +
      `${fingerprint(error.presented)} (your key and the invite were not sent to it)`,
      "check the address with the person who sent the invite; someone may be impersonating " +
      "the server, or the token was made on another server's keys folder",
    ],
  );
  return Exit.SERVER_KEY_CHANGED;
}

/** The loud refusal of a server whose key is not the pinned or expected one. */
function reportKeyChanged(error: ServerKeyChangedError, context: Context): number {
  const known = context.keystore.paths.knownServers;
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
