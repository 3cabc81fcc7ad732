/**
 * `chat allow <pubkey> [--name LABEL]` and `chat allow -` (keys from stdin, one per line as
 * `KEY [LABEL]`): adds keys to the allowlist. Every input is checked before anything is written.
 * @module
 */
import { fingerprint } from "../keys/key_text.ts";
import { parseAllowlist } from "../keys/key_files.ts";
import type { AllowRequest } from "../keys/allowlist.ts";
import { type Context, parseKeyArgument, parseLabelArgument } from "./context.ts";
import { printInfo, UserError } from "./output.ts";
import { Exit } from "./exit.ts";
import { readStdinText } from "./terminal.ts";

/** Options of `chat allow`. */
export interface AllowOptions {
  /** `--name LABEL`. */
  name?: string;
}

/** The most `chat allow -` reads from stdin; an allowlist is small. */
export const MAX_STDIN_BYTES = 1 << 20;

/** Runs `chat allow`; `key` is a public key or `-` for stdin. Returns the exit code. */
export async function allow(context: Context, key: string, options: AllowOptions): Promise<number> {
  let requests: AllowRequest[];
  let source: string | undefined;
  if (key === "-") {
    if (options.name !== undefined) {
      throw new UserError("--name cannot be used with -", {
        exitCode: Exit.USAGE,
        hints: ['put each label after its key: every line of stdin is "KEY" or "KEY LABEL"'],
      });
    }
    source = "stdin";
    requests = requestsFromText(await readStdin(), source);
  } else {
    const label = options.name === undefined ? undefined : parseLabelArgument(options.name);
    requests = [{ key: parseKeyArgument(key), label }];
  }

  const outcomes = await context.keystore.allow(requests, { source });
  let added = 0;
  for (const { request, added: isNew, existing, relabeled } of outcomes) {
    const id = fingerprint(request.key);
    if (relabeled) {
      const was = relabeled.from === undefined ? "had no label" : `was ${relabeled.from}`;
      printInfo(`relabelled ${id} as ${relabeled.to} (it ${was}); it keeps its access`);
    } else if (isNew) {
      added++;
      printInfo(`allowed ${id}${request.label === undefined ? "" : ` as ${request.label}`}`);
    } else {
      const as = existing?.label === undefined ? "without a label" : `as ${existing.label}`;
      printInfo(`${id} is already allowed ${as}; nothing to do`);
    }
  }
  if (outcomes.length > 1) {
    printInfo(`added ${added} of ${outcomes.length} keys to ${context.keystore.paths.allowed}`);
  }
  return Exit.OK;
}

/** Parses stdin like an allowlist; every bad line is reported and nothing is added. */
function requestsFromText(text: string, source: string): AllowRequest[] {
  const parsed = parseAllowlist(text);
  if (parsed.errors.length > 0) {
    const count = parsed.errors.length;
    throw new UserError(
      `${count} bad line${count === 1 ? "" : "s"} on ${source}; nothing was added`,
      {
        problems: parsed.errors,
        source,
        hints: ['every line is "KEY" or "KEY LABEL"; blank lines and # comments are skipped'],
      },
    );
  }
  if (parsed.entries.length === 0) {
    throw new UserError(`no keys on ${source}`, {
      hints: ['give one key a line, "KEY" or "KEY LABEL", for example: chat pubkey | chat allow -'],
    });
  }
  return parsed.entries.map(({ key, label, line }) => ({ key, label, line }));
}

async function readStdin(): Promise<string> {
  if (Deno.stdin.isTerminal()) {
    printInfo('reading keys from stdin, one a line ("KEY" or "KEY LABEL"); end with Ctrl-D');
  }
  return await readStdinText(MAX_STDIN_BYTES, "nothing was added");
}
