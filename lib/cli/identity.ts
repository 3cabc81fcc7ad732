/**
 * The identity for `serve` and `connect`: loaded, or created on first use with a notice, so a
 * newcomer's first `chat serve` or `chat connect` just works.
 * @module
 */
import type { KeyPair } from "../protocol/crypto.ts";
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { type Context, describeDefaultFolder } from "./context.ts";
import { printInfo, printWarning } from "./output.ts";

/**
 * Loads the identity, creating it (and the keys folder) when there is none, and then saying so
 * loudly: a new identity is a new key that no server knows yet, so the person learns its public
 * key and what to do with it, before anything else happens.
 */
export async function loadOrCreateIdentity(
  context: Context,
  role: "serve" | "connect" | "join",
): Promise<KeyPair> {
  const { keystore } = context;
  if (await keystore.hasIdentity()) return await keystore.loadIdentity();
  const { pair } = await keystore.createIdentity();
  const key = encodePublicKey(pair.publicKey);
  printWarning(`there was no identity in ${keystore.dir}: created a NEW one`);
  printInfo(`your public key: ${key} (fingerprint ${fingerprint(pair.publicKey)})`);
  const folder = describeDefaultFolder(context);
  if (folder) printInfo(folder);
  printInfo(
    role === "join"
      ? `the invite lets this key in; if you meant to use an identity you already have, stop ` +
        `(Ctrl-C) and give its folder with --keys DIR`
      : role === "connect"
      ? `no server knows this key yet: send it to the server's operator, who lets it in with ` +
        `"chat allow ${key} --name NAME"; if you meant to use an identity you already have, ` +
        `stop (Ctrl-C) and give its folder with --keys DIR`
      : `clients pin this key on first contact; if this server had another identity before, ` +
        `stop (Ctrl-C) and give its folder with --keys DIR, or clients will refuse it`,
  );
  return pair;
}
