/**
 * What every command starts from: the keys folder (`--keys DIR` > `CHAT_KEYS` > the default
 * folder, see `defaultKeysDir`), its keystore, and command-line arguments turned into values with
 * errors the user can act on.
 * @module
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  parsePublicKey,
  PUBLIC_KEY_BASE64_LENGTH,
  PUBLIC_KEY_TEXT_LENGTH,
} from "../keys/key_text.ts";
import { Keystore } from "../keys/keystore.ts";
import { validateName } from "../protocol/names.ts";
import { setCommandPrefix, shellWord, UserError } from "./output.ts";
import { Exit } from "./exit.ts";

/** The name of the per-user keys folder (in `$XDG_CONFIG_HOME`, `~/.config` or `%APPDATA%`). */
export const APP_FOLDER = "chat";
/** The environment variable that names the keys folder. */
export const KEYS_ENV = "CHAT_KEYS";

/** How the program runs, for `defaultKeysDir` (the real values by default). */
export interface RunningAs {
  /** A `deno compile`d executable (`Deno.build.standalone`). */
  standalone: boolean;
  /** The URL of this module: a `file:` URL in the repository when run from source. */
  moduleUrl: string;
  /** Deno.build.os. */
  os: string;
  /** Reads an environment variable. */
  env: (name: string) => string | undefined;
}

function runningAs(): RunningAs {
  return {
    standalone: Deno.build.standalone,
    moduleUrl: import.meta.url,
    os: Deno.build.os,
    env: (name) => Deno.env.get(name),
  };
}

/**
 * The keys folder when neither `--keys` nor `CHAT_KEYS` is given, never the current directory's:
 * an installed `chat` is run from anywhere, and a `./keys` of whatever folder it stands in may be
 * someone else's.
 *
 * - From source (`deno task chat`, `main.ts` on disk): the repository's `keys/` folder, found
 *   from this module's own `file:` URL, wherever the command is run from.
 * - Compiled (`Deno.build.standalone`, set by `deno compile`; its modules also have `file:`
 *   URLs, of a virtual folder, so the URL alone cannot tell) or loaded from a non-`file:` URL: a
 *   per-user folder, `$XDG_CONFIG_HOME/chat`, else `$HOME/.config/chat`; on Windows
 *   `%APPDATA%\chat`. `undefined` if none of these variables is set.
 *
 * @example
 * ```ts
 * import { defaultKeysDir } from "./context.ts";
 * const env = (name: string) => ({ HOME: "/home/me" } as Record<string, string>)[name];
 * defaultKeysDir({ standalone: true, moduleUrl: "file:///x.ts", os: "linux", env });
 * // "/home/me/.config/chat"
 * ```
 */
export function defaultKeysDir(running: RunningAs = runningAs()): string | undefined {
  if (!running.standalone && running.moduleUrl.startsWith("file:")) {
    return fileURLToPath(new URL("../../keys", running.moduleUrl));
  }
  const variable = (name: string) => {
    const value = running.env(name);
    return value !== undefined && value !== "" ? value : undefined;
  };
  if (running.os === "windows") {
    const appData = variable("APPDATA");
    return appData === undefined ? undefined : join(appData, APP_FOLDER);
  }
  // XDG Base Directory: a relative $XDG_CONFIG_HOME is invalid and must be ignored
  const config = variable("XDG_CONFIG_HOME");
  if (config?.startsWith("/")) return join(config, APP_FOLDER);
  const home = variable("HOME");
  return home === undefined ? undefined : join(home, ".config", APP_FOLDER);
}

/** The options every command accepts (the program's global options). */
export interface GlobalOptions {
  /** `--keys DIR`. */
  keys?: string;
}

/** What a command runs with. */
export interface Context {
  /** The keys folder in use. */
  keysDir: string;
  /** Where it came from: `--keys`, `CHAT_KEYS`, or the default (`defaultKeysDir`). */
  keysFrom: "flag" | "env" | "default";
  /** The keystore of that folder. */
  keystore: Keystore;
}

/**
 * The keys folder and where it came from: the `--keys` flag, else the `CHAT_KEYS` variable (when
 * not empty), else `fallback()` (`defaultKeysDir()`). An empty `--keys ""` is a usage error, and so is no
 * default (no home folder to put it in).
 *
 * @example
 * ```ts
 * import { resolveKeysDir } from "./context.ts";
 * resolveKeysDir(undefined, "/home/me/.chat"); // { dir: "/home/me/.chat", from: "env" }
 * resolveKeysDir("other", "/home/me/.chat"); // { dir: "other", from: "flag" }
 * resolveKeysDir(undefined, undefined, () => "/home/me/.config/chat").from; // "default"
 * ```
 */
export function resolveKeysDir(
  flag: string | undefined,
  env: string | undefined,
  fallback: () => string | undefined = defaultKeysDir,
): { dir: string; from: Context["keysFrom"] } {
  if (flag !== undefined) {
    if (flag === "") throw new UserError("--keys needs a folder", { exitCode: Exit.USAGE });
    return { dir: flag, from: "flag" };
  }
  if (env !== undefined && env !== "") return { dir: env, from: "env" };
  const dir = fallback();
  if (dir === undefined) {
    throw new UserError("there is no default keys folder: HOME (APPDATA on Windows) is not set", {
      exitCode: Exit.USAGE,
      hints: ["give one with --keys DIR or CHAT_KEYS=DIR"],
    });
  }
  return { dir, from: "default" };
}

/**
 * The context of a command, from the global options and the environment. Also makes the
 * commands printed in hints start with the `--keys DIR` it was given (`setCommandPrefix`).
 */
export function createContext(options: GlobalOptions): Context {
  const { dir, from } = resolveKeysDir(options.keys, Deno.env.get(KEYS_ENV));
  const context: Context = { keysDir: dir, keysFrom: from, keystore: new Keystore(dir) };
  setCommandPrefix(commandPrefix(context)); // the commands in hints of this run
  return context;
}

/**
 * How a printed command starts so that it works pasted in the same shell: `chat`, plus the
 * `--keys DIR` this command was given (with `withKeys`; `CHAT_KEYS` is still set there).
 */
export function commandPrefix(context: Context, withKeys = true): string {
  return withKeys && context.keysFrom === "flag"
    ? `chat --keys ${shellWord(context.keysDir)}`
    : "chat";
}

/** Says which keys folder a new identity went to when the user did not choose it. */
export function describeDefaultFolder(context: Context): string | undefined {
  if (context.keysFrom !== "default") return undefined;
  return `${context.keysDir} is the default keys folder; choose another with --keys DIR or ` +
    "CHAT_KEYS=DIR";
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
      exitCode: Exit.USAGE, // a bad value on the command line, like a bad option
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
    throw new UserError(error.message, { exitCode: Exit.USAGE });
  }
}
