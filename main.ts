/**
 * `chat`: an end-to-end encrypted terminal chat. This file only builds the command line and
 * dispatches: each command is one `program.command(...)` block that calls its module in
 * `lib/cli/`. Usage errors exit 2, other errors 1 (see `Exit`), always without a stack trace.
 * @module
 */
import { Command, CommanderError, Option } from "commander";
import denoJson from "./deno.json" with { type: "json" };
import { type Context, createContext, type GlobalOptions } from "./lib/cli/context.ts";
import { printError, reportError, writeStderr, writeStdout } from "./lib/cli/output.ts";
import { keygen, type KeygenOptions } from "./lib/cli/keygen.ts";
import { pubkey } from "./lib/cli/pubkey.ts";
import { allow, type AllowOptions } from "./lib/cli/allow.ts";
import { allowed } from "./lib/cli/allowed.ts";
import { revoke } from "./lib/cli/revoke.ts";
import { serve, type ServeOptions } from "./lib/cli/serve.ts";
import { connect, type ConnectOptions } from "./lib/cli/connect.ts";
import { send, type SendOptions } from "./lib/cli/send.ts";
import { listen, type ListenOptions } from "./lib/cli/listen.ts";
import {
  DEFAULT_INVITE_ADDRESS,
  DEFAULT_INVITE_EXPIRES,
  invite,
  type InviteOptions,
} from "./lib/cli/invite.ts";
import { invites, type InvitesOptions } from "./lib/cli/invites.ts";
import { join, type JoinOptions } from "./lib/cli/join.ts";
import { defaultName } from "./lib/cli/chatting.ts";
import { DEFAULT_PORT } from "./lib/protocol/constants.ts";
import { Exit } from "./lib/cli/exit.ts";

/** The program's version, from deno.json. */
export const VERSION: string = denoJson.version;

const HELP_FOOTER = `
Keys folder:
  --keys DIR, else the CHAT_KEYS variable, else the default: the repository's keys/ when run
  from source, ~/.config/chat ($XDG_CONFIG_HOME/chat; %APPDATA%\\chat on Windows) when
  installed. It holds identity (your secret key, mode 0600), identity.pub, allowed (the
  allowlist), known_servers (pinned server keys) and, on a server, names (names shown).

Keys are written chat1… (bech32); the 44-character base64 form is accepted too.

Exit codes: 0 ok, 1 error, 2 usage, 3 not allowed, 4 server key changed (for send and
listen also: not pinned), 5 connection, 6 removed by the server, 7 invite refused.`;

/** Sends commander's output through lib/cli/output.ts and turns its exits into exceptions. */
function configure(command: Command, path: string): Command {
  return command.exitOverride().configureOutput({
    writeOut: writeStdout,
    writeErr: writeStderr,
    outputError: (message) => {
      // commander puts a suggestion on a line of its own: "(Did you mean --rate?)"; a hint here
      const [first, ...more] = message.trim().split(/\r?\n/);
      const suggestions = more.map((line) => line.trim().replace(/^\((.*)\)$/, "$1"))
        .filter((line) => line !== "");
      printError(first.replace(/^error: /, ""), [...suggestions, `see: ${path} --help`]);
    },
  });
}

/** The context of the command being run, from the global options. */
function contextOf(command: Command): Context {
  return createContext(command.optsWithGlobals<GlobalOptions>());
}

/** The server argument and the first-contact options of `send` and `listen`. */
function unattended(command: Command): Command {
  return command
    .argument("<HOST[:PORT]>", `the server (default port ${DEFAULT_PORT})`)
    .option(
      "--name <NAME>",
      "your display name (default: your login name, else guest)",
      defaultName(),
    )
    .option("--server-key <KEY>", "the server's public key: refuse any other, and pin it")
    .option("--accept-new", "on first contact, trust and pin the key the server presents");
}

/**
 * Builds the command line. Each action reports its exit code through `setExitCode`; errors are
 * thrown to `main`.
 */
export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = configure(new Command("chat"), "chat")
    .description("End-to-end encrypted terminal chat.")
    .version(VERSION, "--version", "print the version and exit")
    .helpOption("-h, --help", "show help")
    .option("--keys <DIR>", "keys folder (default: $CHAT_KEYS, else see below)")
    .addHelpText("after", HELP_FOOTER);

  const keygenCommand = program.command("keygen")
    .description("create your identity (an X25519 key pair) in the keys folder")
    .option("--force", "replace an existing identity (the old secret key is lost)")
    .addHelpText("after", "\nPrints the public key on stdout; says where the files are on stderr.")
    .action(async (options: KeygenOptions, command: Command) => {
      setExitCode(await keygen(contextOf(command), options));
    });
  configure(keygenCommand, "chat keygen");

  const pubkeyCommand = program.command("pubkey")
    .description("print your public key (only the key, on stdout)")
    .action(async (_options: unknown, command: Command) => {
      setExitCode(await pubkey(contextOf(command)));
    });
  configure(pubkeyCommand, "chat pubkey");

  const allowCommand = program.command("allow")
    .description("add a public key to the allowlist")
    .argument("<pubkey>", "chat1… or base64 key, or - to read KEY [LABEL] lines from stdin")
    .option(
      "--name <LABEL>",
      "a label for the key (1-32 of A-Z a-z 0-9 . _ -), unique; on an allowed key, relabels it",
    )
    .addHelpText(
      "after",
      "\nExample: chat allow chat1… --name alice\n         chat pubkey | chat allow -",
    )
    .action(async (key: string, options: AllowOptions, command: Command) => {
      setExitCode(await allow(contextOf(command), key, options));
    });
  configure(allowCommand, "chat allow");

  const allowedCommand = program.command("allowed")
    .description("list the allowlist: label, fingerprint, key")
    .action(async (_options: unknown, command: Command) => {
      setExitCode(await allowed(contextOf(command)));
    });
  configure(allowedCommand, "chat allowed");

  const revokeCommand = program.command("revoke")
    .description("remove a key from the allowlist")
    .argument("<pubkey|label>", "the key (either form) or its label")
    .action(async (target: string, _options: unknown, command: Command) => {
      setExitCode(await revoke(contextOf(command), target));
    });
  configure(revokeCommand, "chat revoke");

  const serveCommand = program.command("serve")
    .description("run a chat server: handshakes on --port, each session on its own data port")
    .option("--host <ADDR>", "address to listen on", "127.0.0.1")
    .option("--port <N>", `control (handshake) port; 0 picks a free one`, String(DEFAULT_PORT))
    .option("--data-ports <A-B>", "take data ports from this range (for firewalls)")
    .option("--name <NAME>", "the server's display name (also the operator's)", "server")
    .option("--headless", "serve with no operator: do not read stdin")
    .option("--json", "print the room's lines as JSON objects, one per line")
    .option("--handshake-timeout <S>", "seconds from accept to a finished handshake (10)")
    .option("--join-timeout <S>", "seconds from the port message to the join (10)")
    .option("--keepalive <S>", "keepalive interval; 3 missed = dead peer (15)")
    .option("--max-handshakes <N>", "handshakes in flight; past it the oldest is shed (512)")
    .option("--max-handshakes-per-address <N>", "the same, per IP address (128)")
    .option("--max-line-bytes <N>", "longest line relayed, in UTF-8 bytes (16384)")
    .option("--max-queue-bytes <N>", "bytes queued to a client before it is dropped (1048576)")
    .option("--max-members <N>", "clients in the room at once (1000)")
    .option("--rate <N>", "lines per second a client may send; faster ones wait (20)")
    .option("--burst <N>", "lines a client may send at once before --rate applies (100)")
    .option("--max-pending-sessions <N>", "sessions waiting for their join; oldest shed (64)")
    .option("--max-pending-per-key <N>", "the same, per key; a newer one ends the oldest (2)")
    .option("--max-unproven <N>", "unproven connections on all data ports; oldest shed (256)")
    .option("--connect-rate <N>", "new connections/s per address while busy; more are shed (20)")
    .option("--connect-burst <N>", "new connections at once per address before the rate (5)")
    .option("--history <N>", "lines kept and replayed to each newcomer; 0 for none (50)")
    .option("--downloads <DIR>", "where files the operator accepts land (~/Downloads/chat)")
    .option("--max-file-bytes <N>", "largest file a member may offer (1073741824)")
    .option("--max-transfers <N>", "file transfers one member may take part in at once (4)")
    .option("--offer-ttl <S>", "seconds an offer waits for its accept before it expires (600)")
    .option("--log <FILE>", "append every room event to FILE as JSON lines (created 0600)")
    .addHelpText(
      "after",
      `
Only keys on the allowlist (chat allow) get in; it is re-read for every handshake, and a
revoked key's session ends within about 2 s. The identity is created on first use.
At a terminal: type to talk to the room; /who, /help, /quit or exit (ends the chat for
everyone); /send PATH NAME, /accept N, /decline N, /files for files. From a pipe: every
line is said; end of input does not stop the server.
Ctrl-C or SIGTERM: bye to everyone, exit 0.`,
    )
    .action(async (options: ServeOptions, command: Command) => {
      setExitCode(await serve(contextOf(command), options));
    });
  configure(serveCommand, "chat serve");

  const connectCommand = program.command("connect")
    .description("join a chat server")
    .argument("<HOST[:PORT]>", `the server (default port ${DEFAULT_PORT})`)
    .option(
      "--name <NAME>",
      "your display name (1-32 of A-Z a-z 0-9 . _ -; default: your login name, else guest)",
      defaultName(),
    )
    .option("--server-key <KEY>", "the server's public key: refuse any other, and pin it")
    .option("--json", "print each received message as one JSON object per line")
    .option("--stay", "with piped input: stay after the input ends, until the chat ends")
    .option(
      "--reconnect",
      "join again after a lost connection even from a pipe (always at a terminal)",
    )
    .addOption(
      new Option("--bell <WHEN>", "ring the bell at a terminal: off, mention, all")
        .choices(["off", "mention", "all"])
        .default("mention"),
    )
    .option("--downloads <DIR>", "where accepted files land (default: ~/Downloads/chat)")
    .addHelpText(
      "after",
      `
The server's key is pinned on first contact (keys/known_servers) and checked ever after.
At a terminal: /msg NAME text, /me text, /ignore NAME, /who, /help, /quit or exit.
Files: /send PATH NAME offers one; /accept N or /decline N answers an offer; /files. From a
pipe: every line is sent; at the end of input the client says bye and exits 0 (unless
--stay). Received lines print as NAME: text. A lost connection is rejoined at a terminal
(from a pipe with --reconnect).
Exit codes: 0 ok, 3 not allowed, 4 server key changed, 5 connection failed or lost,
6 removed by the server (revoked).`,
    )
    .action(async (target: string, options: ConnectOptions, command: Command) => {
      setExitCode(await connect(contextOf(command), target, options));
    });
  configure(connectCommand, "chat connect");

  const sendCommand = unattended(program.command("send"))
    .description("say lines in a room and leave: for scripts (never prompts)")
    .argument("[TEXT...]", "the line to say (words joined by spaces), or - to say stdin's lines")
    .option("--to <NAME>", "say them to this member only, as private lines")
    .option("--file <PATH>", "offer this file to the member --to instead of saying lines")
    .addHelpText(
      "after",
      `
With --file PATH --to NAME: exits 0 only once NAME has the whole file and has verified its
SHA-256 (1 if declined, expired or refused; 5 if the connection was lost). Offering the same
file again resumes from what NAME already has.
Exits 0 only once the server has read every line. Nothing is sent if a line is too long for
the server (exit 1). A server that is not pinned is refused (exit 4, nothing pinned) unless
--server-key or --accept-new is given. Text that starts with - goes after --.
Examples:
  chat send 127.0.0.1 --server-key chat1… the build is green
  make 2>&1 | tail -5 | chat send chat.example.org:7447 -
  chat send 127.0.0.1 --file build.tar.gz --to bob
Exit codes: 0 every line read by the server, 1 a line refused, 2 usage, 3 not allowed,
4 server key changed or unknown, 5 connection failed or lost, 6 removed by the server.`,
    )
    .action(async (target: string, text: string[], options: SendOptions, command: Command) => {
      setExitCode(await send(contextOf(command), target, text, options));
    });
  configure(sendCommand, "chat send");

  const listenCommand = unattended(program.command("listen"))
    .description("print the room's lines and events until the chat ends: for scripts")
    .option("--json", "print every event as one JSON object per line (the --json schema, v 1)")
    .option("--accept-files <DIR>", "accept every file offered, into DIR (else none is taken)")
    .addHelpText(
      "after",
      `
With --accept-files DIR, every offered file is accepted, saved under DIR once its SHA-256
matches (never overwriting: name (1).ext), and reported (file-received with --json).
Lines print as NAME: text on stdout; joins, leaves and notices as chat: … on stderr. Never
reads stdin. SIGINT, SIGTERM or SIGHUP: bye, exit 0. A server that is not pinned is refused
(exit 4, nothing pinned) unless --server-key or --accept-new is given.
Examples:
  chat listen 127.0.0.1 --json >> room.jsonl
  chat listen chat.example.org:7447 --server-key chat1… | grep -i deploy
Exit codes: 0 the chat ended (the server ended it, or a signal), 3 not allowed, 4 server key
changed or unknown, 5 connection failed or lost, 6 removed by the server.`,
    )
    .action(async (target: string, options: ListenOptions, command: Command) => {
      setExitCode(await listen(contextOf(command), target, options));
    });
  configure(listenCommand, "chat listen");
  const inviteCommand = program.command("invite")
    .description("on a server: print a one-paste invite token that lets one new key in")
    .option("--name <LABEL>", "the label the new key gets (default: the name it joins with)")
    .option("--expires <DURATION>", "how long it works: 90s, 30m, 24h, 7d", DEFAULT_INVITE_EXPIRES)
    .option("--uses <N>", "how many keys it lets in", "1")
    .option(
      "--address <HOST[:PORT]>",
      "where clients reach the server (the default is what chat serve listens on)",
      DEFAULT_INVITE_ADDRESS,
    )
    .addHelpText(
      "after",
      `
Run it on the server's keys folder; a running server takes the invite at once. The token
(chatinvite1…, on stdout) holds the server's address and key and a fresh secret; the
server keeps only the secret's SHA-256 (in the keys folder's invites file).
Example: chat --keys keys/alice invite --name bob --address chat.example.org:7447`,
    )
    .action(async (options: InviteOptions, command: Command) => {
      setExitCode(await invite(contextOf(command), options));
    });
  configure(inviteCommand, "chat invite");

  const invitesCommand = program.command("invites")
    .description("list pending invites: id, label, expiry, uses left (never a secret)")
    .option("--revoke <ID>", "withdraw the invite ID: its token lets nobody in any more")
    .action(async (options: InvitesOptions, command: Command) => {
      setExitCode(await invites(contextOf(command), options));
    });
  configure(invitesCommand, "chat invites");

  const joinCommand = program.command("join")
    .description("join a server with an invite token (creates your identity if needed)")
    .argument("<TOKEN>", "the chatinvite1… token from the server's operator")
    .option(
      "--name <NAME>",
      "your display name (1-32 of A-Z a-z 0-9 . _ -; default: your login name, else guest)",
      defaultName(),
    )
    .option("--json", "print each received message as one JSON object per line")
    .option("--stay", "with piped input: stay after the input ends, until the chat ends")
    .option("--reconnect", "join again after a lost connection even from a pipe")
    .addHelpText(
      "after",
      `
The token is checked locally first (a typo is caught before any connection). The server's
key comes from the token and is pinned; a server with another key is refused before your
key or the invite is sent. Once in, your key is on the server's allowlist: next time run
chat connect HOST[:PORT]. Otherwise as chat connect.
Exit codes: 0 ok, 2 bad token, 4 not the invite's server, 5 connection, 7 invite refused
(unknown, used up, withdrawn or expired).`,
    )
    .action(async (token: string, options: JoinOptions, command: Command) => {
      setExitCode(await join(contextOf(command), token, options));
    });
  configure(joinCommand, "chat join");

  return program;
}

/** Runs the program with `args` (without the program name) and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let exitCode: number = Exit.OK;
  const program = buildProgram((code) => exitCode = code);
  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    // Help and version "exit" 0; every other commander exit is a usage error.
    if (error instanceof CommanderError) return error.exitCode === 0 ? Exit.OK : Exit.USAGE;
    return reportError(error);
  }
  return exitCode;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
