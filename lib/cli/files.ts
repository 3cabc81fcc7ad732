/**
 * Where received files land: `--downloads DIR`, else `$CHAT_DOWNLOADS`, else the `chat` folder
 * in the user's Downloads (`~/Downloads/chat`), created (mode 0700) on the first accept.
 * @module
 */
import { UserError } from "./output.ts";
import { Exit } from "./exit.ts";

/**
 * A folder the user named, with the links in its path resolved when it exists: a `~/Downloads`
 * that is a link to another disk is the user's choice (the downloads folder itself must not be a
 * link when chat opens it: that is checked then, against a swap).
 */
export function resolvedFolder(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path; // not there yet: created at the first accept
  }
}

/** The downloads folder for `option` (`--downloads`). */
export function downloadsFolder(option?: string): string {
  if (option !== undefined && option !== "") return resolvedFolder(option);
  const fromEnv = Deno.env.get("CHAT_DOWNLOADS");
  if (fromEnv) return resolvedFolder(fromEnv);
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (!home) {
    throw new UserError("no home folder to put downloads in (HOME is not set)", {
      exitCode: Exit.USAGE,
      hints: ["choose a folder with --downloads DIR"],
    });
  }
  return `${home}/Downloads/chat`;
}
