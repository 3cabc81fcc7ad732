/**
 * The identity for `serve` and `connect`: loaded, or created on first use with a notice, so a
 * newcomer's first `chat serve` or `chat connect` just works.
 * @module
 */
import type { KeyPair } from "../protocol/crypto.ts";
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { type Context, describeDefaultFolder } from "./context.ts";
import { printInfo } from "./output.ts";

/** Loads the identity, creating it (and the keys folder) with a notice when there is none. */
export async function loadOrCreateIdentity(context: Context): Promise<KeyPair> {
  const { keystore } = context;
  if (await keystore.hasIdentity()) return await keystore.loadIdentity();
  const { pair } = await keystore.createIdentity();
  printInfo(
    `no identity in ${keystore.dir}: created one (public key ${encodePublicKey(pair.publicKey)}, ` +
      `fingerprint ${fingerprint(pair.publicKey)})`,
  );
  const folder = describeDefaultFolder(context);
  if (folder) printInfo(folder);
  return pair;
}
