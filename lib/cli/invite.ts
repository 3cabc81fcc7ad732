/**
 * `chat invite`: on a server's keys folder, makes a one-paste invite: a fresh secret whose
 * SHA-256 goes to `invites`, and a `chatinvite1…` token (the server's address and key and the
 * secret) printed on stdout for the newcomer's `chat join`.
 * @module
 */
import { DEFAULT_PORT } from "../protocol/constants.ts";
import { fingerprint } from "../keys/key_text.ts";
import { encodeInviteToken, INVITE_SECRET_BYTES } from "../keys/invite_token.ts";
import { hashSecret, MAX_INVITE_USES } from "../keys/invites.ts";
import { parseDuration, parseTarget } from "./args.ts";
import { commandPrefix, type Context, parseLabelArgument } from "./context.ts";
import { Exit } from "./exit.ts";
import { printData, printInfo, UserError } from "./output.ts";

/** Where a token sends clients unless `--address` is given: what `chat serve` listens on. */
export const DEFAULT_INVITE_ADDRESS = `127.0.0.1:${DEFAULT_PORT}`;
/** How long an invite works unless `--expires` is given. */
export const DEFAULT_INVITE_EXPIRES = "24h";

/** Options of `chat invite`. */
export interface InviteOptions {
  name?: string;
  expires: string;
  uses: string;
  address: string;
}

/** Runs `chat invite`; prints the token on stdout and returns the exit code. */
export async function invite(context: Context, options: InviteOptions): Promise<number> {
  const label = options.name === undefined ? undefined : parseLabelArgument(options.name);
  const lifetime = usage(() => parseDuration(options.expires), "--expires");
  const uses = /^\d{1,7}$/.test(options.uses.trim()) ? Number(options.uses) : NaN;
  if (!(uses >= 1 && uses <= MAX_INVITE_USES)) {
    throw new UserError(
      `--uses: expected a whole number from 1 to ${MAX_INVITE_USES}, got "${options.uses}"`,
      { exitCode: Exit.USAGE },
    );
  }
  const { hostname, port } = parseTarget(options.address);
  const { keystore } = context;
  // the server's own identity: an invite for a server that has none would be a lie
  const identity = await keystore.loadIdentity();
  const secret = crypto.getRandomValues(new Uint8Array(INVITE_SECRET_BYTES));
  const token = usage(
    () => encodeInviteToken({ hostname, port, serverKey: identity.publicKey, secret }),
    "--address",
  );
  const expiresAt = Math.floor((Date.now() + lifetime) / 1000) * 1000;
  const entry = await keystore.addInvite({ hash: hashSecret(secret), expiresAt, uses, label });
  secret.fill(0);
  printData(token);
  const chat = commandPrefix(context);
  printInfo(
    `invite ${entry.id}${label === undefined ? "" : ` for ${label}`}: ${uses} use` +
      `${uses === 1 ? "" : "s"}, expires ${
        new Date(expiresAt).toISOString().replace(".000Z", "Z")
      }; it lets a new ` +
      `key in to the server ${fingerprint(identity.publicKey)} at ${hostname}:${port}`,
  );
  if (options.address === DEFAULT_INVITE_ADDRESS) {
    printInfo(
      `the token sends clients to ${DEFAULT_INVITE_ADDRESS} (the default of chat serve); for ` +
        "clients on other machines give the server's address with --address HOST[:PORT]",
    );
  }
  printInfo(
    "send the token to the newcomer by a channel you trust; they run: chat join TOKEN " +
      `(list invites with: ${chat} invites; withdraw this one with: ${chat} invites --revoke ` +
      `${entry.id})`,
  );
  return Exit.OK;
}

/** Runs `parse`, turning its SyntaxError into a usage error about `flag`. */
function usage<T>(parse: () => T, flag: string): T {
  try {
    return parse();
  } catch (error) {
    if (!(error instanceof SyntaxError || error instanceof RangeError)) throw error;
    throw new UserError(`${flag}: ${error.message}`, { exitCode: Exit.USAGE });
  }
}
