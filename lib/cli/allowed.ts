/**
 * `chat allowed`: lists the allowlist, one key a line: label, fingerprint, key.
 * @module
 */
import { encodePublicKey, fingerprint } from "../keys/key_text.ts";
import { commandPrefix, type Context } from "./context.ts";
import { badLinesHint, printData, printError, printInfo } from "./output.ts";
import { Exit } from "./exit.ts";

/** Shown in the label column for a key without a label (never a valid label). */
export const NO_LABEL = "(no label)";

/**
 * Runs `chat allowed`; returns the exit code. Bad lines are listed on stderr with their line
 * numbers after the good entries, and make the exit code an error.
 */
export async function allowed(context: Context): Promise<number> {
  const { keystore } = context;
  const list = await keystore.readAllowlist();
  const labels = list.entries.map((entry) => entry.label ?? NO_LABEL);
  const width = Math.max(0, ...labels.map((label) => label.length));
  list.entries.forEach((entry, index) => {
    printData(
      `${labels[index].padEnd(width)}  ${fingerprint(entry.key)}  ${encodePublicKey(entry.key)}`,
    );
  });
  if (list.errors.length > 0) {
    const count = list.errors.length;
    printError(
      `${keystore.paths.allowed} has ${count} bad line${count === 1 ? "" : "s"}`,
      [badLinesHint(keystore.paths.allowed, count)],
      list.errors,
      keystore.paths.allowed,
    );
    return Exit.ERROR;
  }
  if (list.entries.length === 0) {
    printInfo(
      `the allowlist ${keystore.paths.allowed} is empty; add a key with: ` +
        `${commandPrefix(context)} allow KEY`,
    );
  }
  return Exit.OK;
}
