/**
 * What the unattended commands (`send`, `listen`) share: they never prompt and never trust a
 * server's key on first contact unless told to (`--server-key KEY`, or `--accept-new`), and they
 * join with the same reporting as `connect`.
 * @module
 */
import { encodePublicKey } from "../keys/key_text.ts";
import type { Context } from "./context.ts";
import { joinTarget, joinWith, reportJoinFailure } from "./connect.ts";
import { type ClientSession } from "../chat/join.ts";

/** The options `send` and `listen` share. */
export interface UnattendedOptions {
  name: string;
  serverKey?: string;
  /** Pin the server's key on first contact (ssh's StrictHostKeyChecking=accept-new). */
  acceptNew?: boolean;
  /** Take files (`listen --accept-files`): say so in the join. */
  acceptsFiles?: boolean;
}

/** A joined session, or the exit code of a join that failed (already reported). */
export type Joined = { session: ClientSession; address: string } | { exitCode: number };

/**
 * Checks the arguments, loads the identity (never creating one: a new key would be refused
 * anyway) and joins. A first contact without `--server-key` or `--accept-new` is refused
 * (exit 4) and pins nothing.
 */
export async function joinUnattended(
  context: Context,
  target: string,
  options: UnattendedOptions,
): Promise<Joined> {
  const where = { ...joinTarget(target, options), acceptsFiles: options.acceptsFiles };
  const identity = await context.keystore.loadIdentity();
  try {
    const session = await joinWith(context, where, identity, options.acceptNew ? "pin" : "refuse");
    return { session, address: `${where.hostname}:${where.port}` };
  } catch (error) {
    const myKey = encodePublicKey(identity.publicKey);
    return { exitCode: reportJoinFailure(error, { ...where, myKey, context }) };
  }
}
