/**
 * What a client shows of transfers, without a terminal: the progress text, and JSON progress at
 * most once a second, the first at once.
 */
import { assert } from "./helpers.ts";
import { FileView, formatBytes, progressText } from "../lib/cli/file_view.ts";
import type { JsonEvent } from "../lib/cli/json_events.ts";
import type { TransferInfo } from "../lib/chat/file_transfer.ts";

const info = (): TransferInfo => ({
  id: "00112233aabbccdd",
  direction: "in",
  peer: "ann",
  name: "notes.txt",
  size: 1000,
  sha256: "ab".repeat(32),
  done: 0,
  startedAt: 0,
});

Deno.test("formatBytes and progressText say bytes, share, rate and time left", () => {
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(268_435_456), "268.4 MB");
  assert.equal(
    progressText({ done: 25, size: 100, startedAt: 0 }, 5),
    "[#####---------------]  25% 25 B of 100 B, 5 B/s, 0:15 left",
  );
});

Deno.test("the first JSON progress event comes at once, even in a young process; then at most one a second", () => {
  const events: JsonEvent[] = [];
  // a clock at 0: the process has just started (performance.now() counts from there)
  let clock = 0;
  const view = new FileView({ info() {}, emit: (event) => events.push(event) }, () => clock);
  const transfer = info();
  const hooks = view.events();
  hooks.offered({
    type: "file-offer",
    id: transfer.id,
    from: "ann",
    fingerprint: "0000:1111:2222:3333",
    name: transfer.name,
    size: transfer.size,
    sha256: transfer.sha256,
    expires_ms: 600_000,
  }, transfer);
  hooks.started?.(transfer);
  for (const done of [100, 200, 300]) {
    transfer.done = done;
    clock += 300;
    hooks.progress?.(transfer);
  }
  clock += 1000;
  transfer.done = 400;
  hooks.progress?.(transfer);
  const progress = events.filter((event) => event.event === "file-progress");
  assert.deepEqual(progress.map((event) => (event as { bytes: number }).bytes), [100, 400]);
  hooks.ended(transfer, { code: "done", message: "", by: "us", path: "dl/notes.txt" });
  assert.equal(events.at(-1)?.event, "file-received");
});
