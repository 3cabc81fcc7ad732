/**
 * Where received files land: `--downloads DIR`, else `$CHAT_DOWNLOADS`, else the `chat` folder
 * in the user's Downloads (`~/Downloads/chat`), created (mode 0700) on the first accept.
 * @module
 */
import { UserError } from "./output.ts";
import { Exit } from "./exit.ts";

/** The downloads folder for `option` (`--downloads`). */
export function downloadsFolder(option?: string): string {
  if (option !== undefined && option !== "") return option;
  const fromEnv = Deno.env.get("CHAT_DOWNLOADS");
  if (fromEnv) return fromEnv;
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (!home) {
    throw new UserError("no home folder to put downloads in (HOME is not set)", {
      exitCode: Exit.USAGE,
      hints: ["choose a folder with --downloads DIR"],
    });
  }
  return `${home}/Downloads/chat`;
}
