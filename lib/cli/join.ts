/**
 * `chat join TOKEN`: joins a server with an invite token (`chat invite`). The token is checked
 * here first, so a typo fails before any network traffic; then it is `chat connect` to the
 * token's address, with the token's server key required (no trust-on-first-use question) and the
 * token's secret presented in the handshake. The identity is created when there is none.
 * @module
 */
import { InviteTokenError, parseInviteToken } from "../keys/invite_token.ts";
import { connect, type ConnectOptions } from "./connect.ts";
import type { Context } from "./context.ts";
import { Exit } from "./exit.ts";
import { UserError } from "./output.ts";

/** Options of `chat join`. */
export type JoinOptions = Pick<ConnectOptions, "name" | "json" | "stay" | "reconnect">;

/** Runs `chat join`; resolves with the exit code when the chat has ended. */
export async function join(
  context: Context,
  text: string,
  options: JoinOptions,
): Promise<number> {
  let token;
  try {
    token = parseInviteToken(text);
  } catch (error) {
    if (!(error instanceof InviteTokenError)) throw error;
    throw new UserError(error.message, {
      exitCode: Exit.USAGE,
      hints: [
        error.problem === "checksum"
          ? "the token was changed on its way (a typo, or a part missing): copy it again, whole"
          : "an invite token starts chatinvite1 and is printed by chat invite on the server",
      ],
    });
  }
  const host = token.hostname.includes(":") ? `[${token.hostname}]` : token.hostname;
  return await connect(context, `${host}:${token.port}`, options, {
    secret: token.secret,
    serverKey: token.serverKey,
  });
}
