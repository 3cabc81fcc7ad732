/**
 * Builds standalone `chat` executables with `deno compile`, one per target, into `dist/`:
 * `dist/chat-<version>-<target>[.exe]`, then writes `dist/SHA256SUMS`. Each executable gets
 * exactly the permissions of the `chat` task in deno.json (read, write, net, env; never -A).
 *
 *     deno task compile                      # every release target
 *     deno task compile:host                 # only this machine's target
 *     deno run … scripts/compile.ts --target x86_64-pc-windows-msvc --out DIR
 *
 * `deno compile` embeds the program in `denort`, Deno's runtime-only binary, which it downloads
 * once per Deno version and target from dl.deno.land into DENO_DIR. Where that download is not
 * possible, set `DENORT_BIN` to a `denort` of the same Deno version for the one target you pass
 * with `--target` (or `--host`). A host build is run once (`--version`) to prove it is `chat`.
 *
 * Exit codes: 0 built, 1 a build failed, 2 usage.
 * @module
 */
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { writeChecksums } from "./checksums.ts";
import { CHAT_RUN_FLAGS } from "./permissions.ts";

/** The release targets (`deno compile --target`). */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** The flags compiled into every executable (permissions, V8 flags): the `chat` task's, from deno.json. */
export const PERMISSIONS: readonly string[] = CHAT_RUN_FLAGS;

/** The project folder (where deno.json and main.ts are). */
export const ROOT: string = dirname(dirname(fileURLToPath(import.meta.url)));

/** The version in deno.json. */
export async function readVersion(root = ROOT): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
  if (typeof config.version !== "string" || config.version === "") {
    throw new Error(`${join(root, "deno.json")} has no "version"`);
  }
  return config.version;
}

/** The file name of the executable for `target`: `chat-<version>-<target>[.exe]`. */
export function executableName(version: string, target: string): string {
  return `chat-${version}-${target}${target.includes("windows") ? ".exe" : ""}`;
}

/** The `deno compile` arguments that build `target` into `output`. */
export function compileArgs(target: string, output: string, root = ROOT): string[] {
  return [
    "compile",
    ...PERMISSIONS,
    "--config",
    join(root, "deno.json"),
    "--target",
    target,
    "--output",
    output,
    join(root, "main.ts"),
  ];
}

/** A build that failed, with what to do about it. */
export class CompileError extends Error {
  /** What to do about it. */
  readonly hints: string[];
  /** Creates the error. */
  constructor(message: string, hints: string[] = []) {
    super(message);
    this.name = "CompileError";
    this.hints = hints;
  }
}

/** Options of `compile`. */
export interface CompileOptions {
  /** Targets to build; default: every release target. */
  targets?: readonly string[];
  /** Output folder; default: `dist/` in the project. */
  out?: string;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
}

/**
 * Builds the executables and writes SHA256SUMS over them; returns their paths. Throws
 * `CompileError` when `deno compile` fails (with a hint when it could not download `denort`)
 * or when a host build does not run as `chat`.
 */
export async function compile(options: CompileOptions = {}): Promise<string[]> {
  const targets = options.targets ?? TARGETS;
  const out = options.out ?? join(ROOT, "dist");
  const log = options.log ?? ((line: string) => console.error(line));
  const version = await readVersion();
  const runtime = Deno.env.get("DENORT_BIN");
  if (runtime && targets.length !== 1) {
    throw new CompileError(
      `DENORT_BIN (${runtime}) is the runtime of one target, but ${targets.length} were asked for`,
      ["pass the target that runtime is for: --target TARGET, or --host"],
    );
  }
  await Deno.mkdir(out, { recursive: true });
  const built: string[] = [];
  for (const target of targets) {
    const output = join(out, executableName(version, target));
    log(`compile: ${target} -> ${relative(Deno.cwd(), output) || output}`);
    const result = await new Deno.Command(Deno.execPath(), {
      args: compileArgs(target, output),
      cwd: ROOT,
      stdin: "null",
      stdout: "inherit",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(result.stderr);
    await Deno.stderr.write(result.stderr);
    if (!result.success) throw compileFailure(target, version, stderr, runtime);
    if (target === Deno.build.target) {
      await checkRuns(output, version).catch(async (error) => {
        await Deno.remove(output).catch(() => {}); // never leave a wrong executable in dist/
        throw error;
      });
    }
    built.push(output);
  }
  const sums = await writeChecksums(out, { prefix: `chat-${version}-` });
  log(`compile: wrote ${relative(Deno.cwd(), sums) || sums}`);
  return built;
}

/** The error for a failed `deno compile`, explaining the denort download when that was it. */
function compileFailure(
  target: string,
  version: string,
  stderr: string,
  runtime: string | undefined,
): CompileError {
  const deno = Deno.version.deno;
  if (runtime) {
    return new CompileError(`deno compile failed for ${target} with DENORT_BIN=${runtime}`, [
      `DENORT_BIN must be a denort binary of Deno ${deno} for ${target}`,
    ]);
  }
  if (/denort|dl\.deno\.land/.test(stderr)) {
    return new CompileError(
      `deno compile could not get its runtime (denort-${target}.zip) for ${target}`,
      [
        `deno compile downloads https://dl.deno.land/release/v${deno}/denort-${target}.zip ` +
        `once per Deno version and target (cached in DENO_DIR)`,
        `offline: set DENORT_BIN to a denort binary of Deno ${deno} for ${target} and run ` +
        `scripts/compile.ts --target ${target} (chat ${version})`,
      ],
    );
  }
  return new CompileError(`deno compile failed for ${target}`);
}

/** Runs a host build with `--version`; throws unless it prints `version`. */
async function checkRuns(path: string, version: string): Promise<void> {
  const result = await new Deno.Command(path, {
    args: ["--version"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).output();
  const printed = new TextDecoder().decode(result.stdout).trim();
  if (result.success && printed === version) return;
  throw new CompileError(
    `${path} --version printed ${JSON.stringify(printed)} (exit ${result.code}), ` +
      `not ${JSON.stringify(version)}: the executable does not run chat`,
    ["is DENORT_BIN a full deno binary? it must be denort, the runtime-only binary"],
  );
}

const USAGE = `usage: scripts/compile.ts [--host | --target TARGET]... [--out DIR]
targets: ${TARGETS.join(", ")}`;

/** Parses the command line; returns undefined (after printing why) on a usage error. */
function parseArgs(args: string[]): CompileOptions | undefined {
  const targets: string[] = [];
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--host") targets.push(Deno.build.target);
    else if (arg === "--target" && i + 1 < args.length) targets.push(args[++i]);
    else if (arg === "--out" && i + 1 < args.length) out = args[++i];
    else if (arg === "-h" || arg === "--help") {
      console.log(USAGE);
      Deno.exit(0);
    } else {
      console.error(`compile: error: unexpected argument ${JSON.stringify(arg)}\n${USAGE}`);
      return undefined;
    }
  }
  const unknown = targets.find((target) => !(TARGETS as readonly string[]).includes(target));
  if (unknown) {
    console.error(`compile: error: ${unknown} is not a release target\n${USAGE}`);
    return undefined;
  }
  return { targets: targets.length > 0 ? [...new Set(targets)] : undefined, out };
}

if (import.meta.main) {
  const options = parseArgs(Deno.args);
  if (!options) Deno.exit(2);
  try {
    await compile(options);
  } catch (error) {
    if (!(error instanceof CompileError)) throw error;
    console.error(`compile: error: ${error.message}`);
    for (const hint of error.hints) console.error(`compile: hint: ${hint}`);
    Deno.exit(1);
  }
}
