/**
 * What every command starts from: the keys folder (`--keys DIR` > `CHAT_KEYS` > `./keys`), its
 * keystore, and command-line arguments turned into values with errors the user can act on.
 * @module
 */
import { Exit } from "../constants.ts";
import { parsePublicKey, PUBLIC_KEY_BASE64_LENGTH, PUBLIC_KEY_TEXT_LENGTH } from "../keys.ts";
import { Keystore } from "../keystore.ts";
import { validateName } from "../names.ts";
import { UserError } from "./output.ts";

/** The keys folder when neither `--keys` nor `CHAT_KEYS` is given. */
export const DEFAULT_KEYS_DIR = "keys";
/** The environment variable that names the keys folder. */
export const KEYS_ENV = "CHAT_KEYS";

/** The options every command accepts (the program's global options). */
export interface GlobalOptions {
  /** `--keys DIR`. */
  keys?: string;
}

/** What a command runs with. */
export interface Context {
  /** The keys folder in use. */
  keysDir: string;
  /** The keystore of that folder. */
  keystore: Keystore;
}

/**
 * The keys folder: the `--keys` flag, else the `CHAT_KEYS` variable (when not empty), else
 * `keys`. An empty `--keys ""` is a usage error.
 *
 * @example
 * ```ts
 * import { resolveKeysDir } from "./context.ts";
 * resolveKeysDir(undefined, "/home/me/.chat"); // "/home/me/.chat"
 * resolveKeysDir("other", "/home/me/.chat"); // "other"
 * resolveKeysDir(undefined, undefined); // "keys"
 * ```
 */
export function resolveKeysDir(flag: string | undefined, env: string | undefined): string {
  if (flag !== undefined) {
    if (flag === "") throw new UserError("--keys needs a folder", { exitCode: Exit.USAGE });
    return flag;
  }
  if (env !== undefined && env !== "") return env;
  return DEFAULT_KEYS_DIR;
}

/** The context of a command, from the global options and the environment. */
export function createContext(options: GlobalOptions): Context {
  const keysDir = resolveKeysDir(options.keys, Deno.env.get(KEYS_ENV));
  return { keysDir, keystore: new Keystore(keysDir) };
}

/**
 * Parses a public key given on the command line (either form; surrounding white space, as left
 * by copy and paste, is ignored). Throws a `UserError` with the reason and the accepted forms.
 */
export function parseKeyArgument(text: string): Uint8Array {
  try {
    return parsePublicKey(text.trim());
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new UserError(error.message, {
      hints: [
        `a public key is chat1… (${PUBLIC_KEY_TEXT_LENGTH} characters, as printed by ` +
        `"chat pubkey") or ${PUBLIC_KEY_BASE64_LENGTH} characters of standard base64`,
      ],
    });
  }
}

/** Checks a label given on the command line; throws a `UserError` saying what is wrong. */
export function parseLabelArgument(label: string): string {
  try {
    return validateName(label, "label");
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new UserError(error.message);
  }
}
