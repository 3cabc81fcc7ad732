/**
 * `chat pubkey`: prints the public key of the identity, and nothing else, on stdout.
 * @module
 */
import { encodePublicKey } from "../keys/key_text.ts";
import type { Context } from "./context.ts";
import { printData } from "./output.ts";
import { Exit } from "./exit.ts";

/** Runs `chat pubkey`; returns the exit code. */
export async function pubkey(context: Context): Promise<number> {
  const pair = await context.keystore.loadIdentity();
  printData(encodePublicKey(pair.publicKey));
  return Exit.OK;
}
