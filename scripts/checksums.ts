/**
 * Writes `SHA256SUMS` for the files of a folder (default `dist/`), in the format that
 * `sha256sum -c SHA256SUMS` and `shasum -a 256 -c SHA256SUMS` check: `<hex>  <name>` per line,
 * sorted by name. Dotfiles and SHA256SUMS itself are left out.
 *
 *     deno task compile:checksums            # dist/SHA256SUMS
 *     deno run --allow-read --allow-write scripts/checksums.ts DIR
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The name of the checksum file. */
export const SUMS_FILE = "SHA256SUMS";

/** The lowercase hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The SHA256SUMS text for the regular files of `dir` whose names start with `prefix`. */
export async function checksums(dir: string, options: { prefix?: string } = {}): Promise<string> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || entry.name === SUMS_FILE || entry.name.startsWith(".")) continue;
    if (options.prefix && !entry.name.startsWith(options.prefix)) continue;
    names.push(entry.name);
  }
  names.sort();
  let text = "";
  for (const name of names) {
    text += `${await sha256Hex(await Deno.readFile(join(dir, name)))}  ${name}\n`;
  }
  return text;
}

/** Writes `dir/SHA256SUMS` (see `checksums`) and returns its path. */
export async function writeChecksums(
  dir: string,
  options: { prefix?: string } = {},
): Promise<string> {
  const path = join(dir, SUMS_FILE);
  await Deno.writeTextFile(path, await checksums(dir, options));
  return path;
}

if (import.meta.main) {
  const dir = Deno.args[0] ?? join(dirname(dirname(fileURLToPath(import.meta.url))), "dist");
  const path = await writeChecksums(dir);
  await Deno.stdout.write(await Deno.readFile(path));
  console.error(`checksums: wrote ${path}`);
}
