/**
 * `chat keygen [--force]`: creates the identity in the keys folder. The public key goes to
 * stdout; where the files are goes to stderr.
 * @module
 */
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { type Context, describeDefaultFolder } from "./context.ts";
import { keystoreHints, printData, printInfo, printWarning, UserError } from "./output.ts";
import { KeystoreError } from "../errors.ts";
import { Exit } from "./exit.ts";

/** Options of `chat keygen`. */
export interface KeygenOptions {
  /** Replace an existing identity. */
  force?: boolean;
}

/** Runs `chat keygen`; returns the exit code. */
export async function keygen(context: Context, options: KeygenOptions): Promise<number> {
  const { keystore } = context;
  let created;
  try {
    created = await keystore.createIdentity({ force: options.force });
  } catch (error) {
    if (error instanceof KeystoreError && error.code === "IDENTITY_EXISTS") {
      throw new UserError(`there is already an identity in ${keystore.dir}`, {
        hints: keystoreHints(error),
      });
    }
    throw error;
  }
  const { pair, createdFolder, replaced } = created;
  printData(encodePublicKey(pair.publicKey));
  if (createdFolder) printInfo(`created the keys folder ${keystore.dir} (mode 0700)`);
  printInfo(`wrote the secret key to ${keystore.paths.identity} (mode 0600): keep it private`);
  printInfo(
    `wrote the public key to ${keystore.paths.publicKey} ` +
      `(fingerprint ${fingerprint(pair.publicKey)})`,
  );
  const folder = describeDefaultFolder(context);
  if (folder) printInfo(folder);
  if (replaced) {
    printWarning("the old identity is gone: whoever allowed or pinned it needs the new key");
  }
  return Exit.OK;
}
