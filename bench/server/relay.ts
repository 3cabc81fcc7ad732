/**
 * The raw-TCP baseline of the server bulk benchmark (bench/server/bulk.ts): a plain byte relay
 * in its own process, the topology of `chat serve` relaying one client to another, with no crypto
 * and no framing.
 *
 * Prints its port on stdout, accepts two connections (the first is the source, the second the
 * sink), copies the source to the sink with one 64 KiB buffer, then exits. Run only by
 * bench/server/bulk.ts, with `--allow-net=127.0.0.1`; it exits by itself after 60 s in any case.
 * @module
 */

const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log((listener.addr as Deno.NetAddr).port);
const guard = setTimeout(() => Deno.exit(124), 60_000);

const source = await listener.accept();
const sink = await listener.accept();
listener.close();
source.setNoDelay(true);
sink.setNoDelay(true);
const buffer = new Uint8Array(64 * 1024);
while (true) {
  const n = await source.read(buffer);
  if (n === null) break;
  let offset = 0;
  while (offset < n) offset += await sink.write(buffer.subarray(offset, n));
}
sink.close();
source.close();
clearTimeout(guard);
