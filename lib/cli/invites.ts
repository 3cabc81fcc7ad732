/**
 * `chat invites [--revoke ID]`: lists a server's pending invites (id, label, expiry, uses left;
 * never a secret: the server has only their hashes), or withdraws one.
 * @module
 */
import { commandPrefix, type Context } from "./context.ts";
import { badLinesHint, printData, printError, printInfo, UserError } from "./output.ts";
import { Exit } from "./exit.ts";

/** Options of `chat invites`. */
export interface InvitesOptions {
  revoke?: string;
}

/** Shown in the label column for an invite without a label. */
const NO_LABEL = "(their name)";

/** Runs `chat invites`; returns the exit code. */
export async function invites(context: Context, options: InvitesOptions): Promise<number> {
  const { keystore } = context;
  const chat = commandPrefix(context);
  if (options.revoke !== undefined) {
    const id = options.revoke.trim().toLowerCase();
    if (!/^[0-9a-f]{8}$/.test(id)) {
      throw new UserError(`"${options.revoke}" is not an invite id (8 hex digits)`, {
        exitCode: Exit.USAGE,
        hints: [`see the ids with: ${chat} invites`],
      });
    }
    const entry = await keystore.revokeInvite(id).catch((error) => {
      if (error?.code !== "NOT_FOUND") throw error;
      throw new UserError(error.message, {
        hints: [
          `it may have been used up or withdrawn; see the pending ones with: ${chat} invites`,
        ],
      });
    });
    printInfo(
      `withdrew invite ${entry.id}${entry.label === undefined ? "" : ` for ${entry.label}`}: ` +
        "its token lets nobody in any more",
    );
    return Exit.OK;
  }
  const file = await keystore.readInvites();
  const now = Date.now();
  const rows = file.entries.map((entry) => [
    entry.id,
    entry.label ?? NO_LABEL,
    new Date(entry.expiresAt).toISOString().replace(".000Z", "Z") +
    (entry.expiresAt <= now ? " (expired)" : ""),
    `${entry.uses} use${entry.uses === 1 ? "" : "s"} left`,
  ]);
  const widths = [0, 1, 2].map((column) => Math.max(0, ...rows.map((row) => row[column].length)));
  for (const row of rows) {
    printData(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join("  ").trimEnd());
  }
  if (file.errors.length > 0) {
    const path = keystore.paths.invites;
    const count = file.errors.length;
    printError(
      `${path} has ${count} bad line${count === 1 ? "" : "s"}`,
      [badLinesHint(path, count)],
      file.errors,
      path,
    );
    return Exit.ERROR;
  }
  if (rows.length === 0) {
    printInfo(`no invites are pending; make one with: ${chat} invite --name LABEL`);
  }
  return Exit.OK;
}
