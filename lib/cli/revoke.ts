/**
 * `chat revoke <pubkey|label>`: removes one key from the allowlist.
 * @module
 */
import { PUBLIC_KEY_HRP } from "../protocol/constants.ts";
import { fingerprint, isPublicKey } from "../keys/key_text.ts";
import { isValidName } from "../protocol/names.ts";
import { type Context, parseKeyArgument } from "./context.ts";
import { printInfo, UserError } from "./output.ts";
import { Exit } from "./exit.ts";

/** Runs `chat revoke`; `target` is a key (either form) or a label. Returns the exit code. */
export async function revoke(context: Context, target: string): Promise<number> {
  const text = target.trim();
  const entry = await context.keystore.revoke(keyOrLabel(text));
  const label = entry.label === undefined ? "" : ` (${entry.label})`;
  printInfo(
    `revoked ${fingerprint(entry.key)}${label}: removed line ${entry.line} of ` +
      context.keystore.paths.allowed,
  );
  return Exit.OK;
}

/** Keys and labels cannot be confused: a label has at most 32 characters, a key 44 or 63. */
function keyOrLabel(text: string): Uint8Array | string {
  if (isPublicKey(text)) return parseKeyArgument(text);
  if (isValidName(text)) return text;
  // Explain the key problem if it looks like a key, else say it is neither.
  if (text.toLowerCase().startsWith(PUBLIC_KEY_HRP + "1") || text.length > 32) {
    return parseKeyArgument(text);
  }
  throw new UserError(`${JSON.stringify(text)} is neither a public key nor a label`, {
    hints: ["see the keys and labels with: chat allowed"],
  });
}
