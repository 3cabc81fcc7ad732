/**
 * Command-line options of the benchmark scripts (`--name N` or `--name=N`).
 * @module
 */

/** The positive number given as `--name`, or `fallback`; anything else exits 2 with a message. */
export function numberOption(name: string, fallback: number): number {
  const at = Deno.args.indexOf(`--${name}`);
  const inline = Deno.args.find((arg) => arg.startsWith(`--${name}=`));
  const text = inline?.slice(name.length + 3) ?? (at >= 0 ? Deno.args[at + 1] : undefined);
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!(Number.isFinite(value) && value > 0)) {
    console.error(`--${name} must be a positive number, got ${text}`);
    Deno.exit(2);
  }
  return value;
}
