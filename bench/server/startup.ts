/**
 * Server benchmark 5, start-up: `chat --help` and `chat pubkey` as spawned processes, median of
 * `--runs` after 2 warm-up runs, interleaved, against `deno run` of an empty script.
 * @module
 */
import { CHAT_RUN_FLAGS, f, MAIN, makeKeysDir, percentile, ROOT, type Table } from "./harness.ts";
import { withDeadline } from "../../lib/protocol/deadline.ts";

/** Milliseconds `deno ARGS` takes from spawn to exit in `cwd`; throws if it fails. */
async function timeRun(args: string[], cwd: string): Promise<number> {
  const start = performance.now();
  const output = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", CHAT_KEYS: "" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).output();
  const elapsed = performance.now() - start;
  if (!output.success) {
    throw new Error(`deno ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
  return elapsed;
}

/** Median and p90 of `runs` timed runs of each case, the empty script first. */
async function measureStartup(runs: number) {
  const dir = await makeKeysDir([]);
  const empty = `${dir}/empty.ts`;
  await Deno.writeTextFile(empty, "");
  // an identity for `chat pubkey`
  await timeRun(["run", ...CHAT_RUN_FLAGS, MAIN, "--keys", dir, "keygen"], ROOT.pathname);
  const cases: [string, string[], string][] = [
    ["deno run empty.ts", ["run", empty], dir],
    ["chat --help", ["run", ...CHAT_RUN_FLAGS, MAIN, "--help"], ROOT.pathname],
    ["chat pubkey", ["run", ...CHAT_RUN_FLAGS, MAIN, "--keys", dir, "pubkey"], ROOT.pathname],
  ];
  const times = cases.map(() => [] as number[]);
  for (let run = -2; run < runs; run++) {
    for (const [i, [, args, cwd]] of cases.entries()) {
      const ms = await withDeadline(timeRun(args, cwd), 20_000, "start-up run", () => {});
      if (run >= 0) times[i].push(ms);
    }
  }
  return cases.map(([name], i) => {
    const sorted = times[i].sort((a, b) => a - b);
    return { name, median: percentile(sorted, 50), p90: percentile(sorted, 90) };
  });
}

/** Benchmark 5 with `runs` timed runs of each case. */
export async function startupPhase(table: Table, runs: number): Promise<void> {
  const s = await measureStartup(runs);
  const base = s[0].median;
  for (const { name, median, p90 } of s) {
    table.row(
      `${name}, median / p90 of ${runs}${name.startsWith("deno") ? " [baseline]" : ""}`,
      `${f(median, 1)} / ${f(p90, 1)} ms`,
      `${f(median / base, 2)}x`,
    );
  }
}
