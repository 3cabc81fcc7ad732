/**
 * End-to-end: files through the chat, with real `chat serve`, `chat send --file` and
 * `chat listen --accept-files` processes over 127.0.0.1 (and in-process clients where a test
 * needs a peer that declines, leaves, or offers hostile names). What each test shows is in its
 * name.
 */
import { assert } from "./helpers.ts";
import { type ChatProcess, Sandbox } from "./process.ts";
import {
  type Identity,
  makeIdentities,
  NO_PINS,
  rssKiB,
  startServer,
  waitUntil,
} from "./clients.ts";
import { type ChatHandlers, ClientChat } from "../lib/chat/client.ts";
import type { FileEvents, TransferEnd } from "../lib/chat/file_transfer.ts";
import {
  chunkPlaintext,
  type FileOffer,
  MAX_CHUNK_DATA_BYTES,
} from "../lib/protocol/file_messages.ts";
import { sha256Stream } from "../lib/protocol/crypto.ts";
import { hexOf } from "../lib/protocol/bytes.ts";
import { joinServer } from "../lib/chat/join.ts";

const e2e = (name: string, fn: (sandbox: Sandbox) => Promise<void>) =>
  Deno.test({ name, fn: () => Sandbox.run(fn), sanitizeResources: false, sanitizeOps: false });

/** `chat listen` as `name`, taking files into `downloads`, with JSON events on stdout. */
async function receiver(s: Sandbox, name: string, address: string, downloads: string) {
  const process = s.spawn([
    "--keys",
    name,
    "listen",
    address,
    "--accept-new",
    "--json",
    "--accept-files",
    downloads,
  ]);
  await process.waitFor("stderr", /^chat: listening to /);
  return process;
}

/** `chat send --file` from `name`. */
function sender(s: Sandbox, name: string, address: string, path: string, to: string) {
  return s.spawn(["--keys", name, "send", address, "--accept-new", "--file", path, "--to", to]);
}

/** The JSON events of a `listen --json` of kind `event`. */
function events(process: ChatProcess, event: string): Record<string, unknown>[] {
  return process.stdout.map((line) => JSON.parse(line)).filter((e) => e.event === event);
}

/** Writes `bytes` random bytes to `path` and returns their SHA-256 in hex. */
async function randomFile(path: string, bytes: number): Promise<string> {
  const hash = sha256Stream();
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const block = new Uint8Array(1 << 20);
  for (let left = bytes; left > 0; left -= block.length) {
    const piece = block.subarray(0, Math.min(left, block.length));
    for (let i = 0; i < piece.length; i += 65536) {
      crypto.getRandomValues(piece.subarray(i, Math.min(i + 65536, piece.length)));
    }
    hash.update(piece);
    await file.write(piece);
  }
  return hexOf(hash.digest());
}

async function sha256Of(path: string): Promise<string> {
  const hash = sha256Stream();
  hash.update(await Deno.readFile(path));
  return hexOf(hash.digest());
}

async function listDir(path: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(path)) names.push(entry.name);
  return names.sort();
}

e2e(
  "a 10 MiB random file arrives byte-identical, and chat send exits 0 only once it is verified",
  async (s) => {
    const { address } = await s.room(["ann", "bob"]);
    const bob = await receiver(s, "bob", address, "dl");
    const sha = await randomFile(`${s.dir}/data.bin`, 10 << 20);
    const ann = sender(s, "ann", address, "data.bin", "bob");
    assert.equal(await ann.exitCode(30_000), 0, ann.stderr.join("\n"));
    assert.match(ann.stderr.join("\n"), /bob received data\.bin \(10\.5 MB.*SHA-256 verified\)/);
    // exit 0 means bob has it already: no waiting here
    const [received] = events(bob, "file-received");
    assert.equal(received.from, "ann");
    assert.equal(received.bytes, 10 << 20);
    assert.equal(received.path, `dl/data.bin`);
    assert.equal(await sha256Of(`${s.dir}/dl/data.bin`), sha);
    // no part file is left behind, and the offer came first, with the size and hash
    assert.deepEqual(await listDir(`${s.dir}/dl`), ["data.bin"]);
    const [offer] = events(bob, "file-offer");
    assert.equal(offer.sha256, sha);
    assert.equal(offer.size, 10 << 20);
    // a second copy never overwrites the first
    const again = sender(s, "ann", address, "data.bin", "bob");
    assert.equal(await again.exitCode(30_000), 0, again.stderr.join("\n"));
    assert.deepEqual(await listDir(`${s.dir}/dl`), ["data (1).bin", "data.bin"]);
  },
);

/**
 * A headless server with an in-process client's identity (`peer`, allowed as `peer0`… by
 * makeIdentities) and a command-line keys folder `cli` (allowed under its own name).
 */
async function mixedRoom(s: Sandbox, peer: string, cli: string) {
  const [identity] = makeIdentities(peer, 1);
  await s.keygen(cli);
  const key = (await s.run(["--keys", cli, "pubkey"])).stdout.trim();
  const { server, address, port } = await startServer(s, [identity], ["--headless"]);
  assert.equal((await s.run(["--keys", "srv", "allow", key, "--name", cli])).code, 0);
  return { server, address, port, identity };
}

/** An in-process client that takes files and records what happens; it accepts nothing itself. */
async function filePeer(port: number, identity: Identity) {
  const offers: FileOffer[] = [];
  const ends: TransferEnd[] = [];
  const files: FileEvents = {
    offered: (offer) => offers.push(offer),
    ended: (_info, end) => ends.push(end),
  };
  const quiet: ChatHandlers = { message() {}, presence() {}, who() {}, notice() {}, files };
  const session = await joinServer({
    hostname: "127.0.0.1",
    port,
    identity: identity.keys,
    name: identity.name,
    pins: NO_PINS,
    acceptsFiles: true,
  });
  return { chat: new ClientChat(session, quiet), offers, ends };
}

e2e(
  "an offer is declined: the sender exits 1 saying so, and the receiver writes nothing",
  async (s) => {
    const { address, port, identity: bob } = await mixedRoom(s, "bob", "ann");
    const peer = await filePeer(port, bob);
    await randomFile(`${s.dir}/small.bin`, 1000);
    const ann = sender(s, "ann", address, "small.bin", "bob0");
    await waitUntil(() => peer.offers.length === 1, 10_000, "the offer");
    assert.equal(peer.offers[0].name, "small.bin");
    assert.equal(peer.offers[0].size, 1000);
    assert.equal(peer.offers[0].from, "ann");
    assert.equal(peer.offers[0].expires_ms, 600_000);
    peer.chat.files!.decline(peer.offers[0].id);
    assert.equal(await ann.exitCode(10_000), 1);
    assert.match(ann.stderr.join("\n"), /ended: the receiver declined the file \[declined\]/);
    await peer.chat.leave();
  },
);

e2e(
  "offers to someone absent, or who leaves before accepting, end the sender with exit 1",
  async (s) => {
    const { address, port, identity: bob } = await mixedRoom(s, "bob", "ann");
    await randomFile(`${s.dir}/small.bin`, 1000);

    const nobody = await s.run(
      ["--keys", "ann", "send", address, "--accept-new", "--file", "small.bin", "--to", "zed"],
    );
    assert.equal(nobody.code, 1, nobody.stderr);
    assert.match(nobody.stderr, /nobody here is called "zed" \[no-such-member\]/);

    const peer = await filePeer(port, bob);
    const ann = sender(s, "ann", address, "small.bin", "bob0");
    await waitUntil(() => peer.offers.length === 1, 10_000, "the offer");
    await peer.chat.leave();
    assert.equal(await ann.exitCode(10_000), 1);
    assert.match(ann.stderr.join("\n"), /ended: bob0 left the room \[gone\]/);
  },
);

e2e(
  "the server refuses a file over --max-file-bytes at the offer, with the limit in the message",
  async (s) => {
    const { address } = await s.room(["ann", "bob"], ["--max-file-bytes", "1000"]);
    await receiver(s, "bob", address, "dl");
    await randomFile(`${s.dir}/big.bin`, 2000);
    const ann = await s.run(
      ["--keys", "ann", "send", address, "--accept-new", "--file", "big.bin", "--to", "bob"],
    );
    assert.equal(ann.code, 1, ann.stderr);
    assert.match(
      ann.stderr,
      /the file is 2000 bytes; this server takes files of at most 1000 bytes/,
    );
    assert.match(ann.stderr, /\[too-large\]/);
    assert.deepEqual(await listDir(`${s.dir}/dl`), []); // nothing written (listen made the folder)
  },
);

e2e(
  "offered names are reduced to safe base names in the downloads folder, whatever the sender says",
  async (s) => {
    const { address, port, identity: mallory } = await mixedRoom(s, "mallory", "bob");
    const bob = await receiver(s, "bob", address, "dl");
    const peer = await filePeer(port, mallory);
    const hostile: [string, string][] = [
      ["../../escape.txt", "escape.txt"],
      ["/etc/passwd", "passwd"],
      ["..", "file"],
      [".bashrc", "bashrc"],
      ["CON", "_CON"],
      ["nul.txt", "_nul.txt"],
      ["C:\\Windows\\evil.exe", "evil.exe"],
      ["report\u202Etxt.exe", "reporttxt.exe"],
      ["x\x1b]52;c;QUFB\x07.txt", "x]52;c;QUFB.txt"],
      ["a".repeat(300) + ".txt", "a".repeat(196) + ".txt"],
    ];
    await Deno.writeTextFile(`${s.dir}/payload`, "not what it says\n");
    for (const [name] of hostile) {
      const end = await peer.chat.files!.offer(`${s.dir}/payload`, "bob", { name });
      assert.equal(end.code, "done", `${JSON.stringify(name)}: ${end.message}`);
    }
    assert.deepEqual(await listDir(`${s.dir}/dl`), hostile.map(([, safe]) => safe).sort());
    // nothing landed outside the folder
    await assert.rejects(Deno.stat(`${s.dir}/escape.txt`), Deno.errors.NotFound);
    assert.equal(events(bob, "file-received").length, hostile.length);
    await peer.chat.leave();
  },
);

e2e(
  "a transfer cut by killing the receiver resumes: the second run sends only what is missing",
  async (s) => {
    const { address } = await s.room(["ann", "bob"]);
    const size = 48 << 20;
    const sha = await randomFile(`${s.dir}/data.bin`, size);
    const first = await receiver(s, "bob", address, "dl");
    const ann = sender(s, "ann", address, "data.bin", "bob");
    // stop the receiver once it has written something, then kill it: the part stays on disk
    await first.waitFor("stdout", /"event":"file-progress"/, 20_000);
    first.signal("SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, 300));
    first.signal("SIGKILL");
    assert.equal(await ann.exitCode(20_000), 1);
    assert.match(ann.stderr.join("\n"), /left the room \[gone\]/);
    const [part] = await listDir(`${s.dir}/dl`);
    assert.match(part, /^\.data\.bin\.[0-9a-f]{16}-[0-9a-f]{16}\.part$/);
    const had = (await Deno.stat(`${s.dir}/dl/${part}`)).size;
    assert.ok(had > 0 && had < size, `part of ${had} bytes`);

    const second = await receiver(s, "bob", address, "dl");
    const again = sender(s, "ann", address, "data.bin", "bob");
    assert.equal(await again.exitCode(30_000), 0, again.stderr.join("\n"));
    const [received] = events(second, "file-received");
    assert.equal(received.resumed_at, had);
    assert.match(again.stderr.join("\n"), /resuming at/);
    assert.equal(await sha256Of(`${s.dir}/dl/data.bin`), sha);
    assert.deepEqual(await listDir(`${s.dir}/dl`), ["data.bin"]);
  },
);

e2e(
  "a receiver that stops reading slows its sender; nobody is dropped and the room's lines flow",
  async (s) => {
    const { server, address } = await s.room(["ann", "bob", "cat", "dan"]);
    const sha = await randomFile(`${s.dir}/data.bin`, 64 << 20);
    const bob = await receiver(s, "bob", address, "dl");
    const cat = s.spawn(["--keys", "cat", "listen", address, "--accept-new", "--json"]);
    await cat.waitFor("stderr", /^chat: listening to /);
    const ann = sender(s, "ann", address, "data.bin", "bob");
    await bob.waitFor("stdout", /"event":"file-progress"/, 20_000);
    bob.signal("SIGSTOP");
    try {
      // lines between others still flow while bob's transfer is stuck
      for (let i = 1; i <= 3; i++) {
        const said = await s.run(["--keys", "dan", "send", address, "--accept-new", `line ${i}`]);
        assert.equal(said.code, 0, said.stderr);
        await cat.waitFor("stdout", new RegExp(`"text":"line ${i}"`), 2000);
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // the sender is held back, not finished and not failed
      assert.equal(
        await Promise.race([ann.status.then(() => "exited"), Promise.resolve("running")]),
        "running",
      );
      assert.ok(
        !server.stderr.some((line) => /(bob|ann) left/.test(line)),
        server.stderr.join("\n"),
      );
    } finally {
      bob.signal("SIGCONT");
    }
    assert.equal(await ann.exitCode(60_000), 0, ann.stderr.join("\n"));
    assert.equal(await sha256Of(`${s.dir}/dl/data.bin`), sha);
    assert.ok(!server.stderr.some((line) => /dropped/.test(line)), server.stderr.join("\n"));
  },
);

e2e(
  "a sender that ignores the window is not read faster than a stopped receiver drains: the server's memory stays flat",
  async (s) => {
    const { server, address, port, identity: mallory } = await mixedRoom(s, "mallory", "bob");
    const bob = await receiver(s, "bob", address, "dl");
    const peer = await filePeer(port, mallory);
    const before = await rssKiB(server.pid);
    // an offer by hand, so that nothing keeps to the window
    const id = "00112233aabbccdd", size = 256 << 20;
    await peer.chat.session.channel.send({
      type: "file-offer",
      id,
      to: "bob",
      name: "flood.bin",
      size,
      sha256: "00".repeat(32),
    });
    await bob.waitFor("stdout", /"event":"file-offer"/);
    // bob's accept has reached the relay (else the flood would end at its first chunk, and the
    // checks below would pass without a stopped receiver to test)
    await server.waitFor("stderr", new RegExp(`file ${id} .* to bob: accepted$`), 10_000);
    bob.signal("SIGSTOP");
    let pushed = 0;
    try {
      const flood = (async () => {
        while (pushed < size) {
          const plaintext = chunkPlaintext(id, pushed, MAX_CHUNK_DATA_BYTES);
          await peer.chat.session.channel.sendBulk(plaintext);
          pushed += MAX_CHUNK_DATA_BYTES;
        }
      })().catch(() => {});
      await new Promise((resolve) => setTimeout(resolve, 3000));
      const grown = (await rssKiB(server.pid)) - before;
      // what got through sits in socket buffers and at most 256 KiB in the server: not 256 MiB
      assert.ok(pushed < 64 << 20, `the server read ${pushed} bytes from the flood`);
      assert.ok(pushed > 0, "the flood got under way");
      // and the transfer is still running: not ended (bad-offer, stalled) behind the test's back
      const ended = server.stderr.filter((line) =>
        line.includes(`file ${id}`) && !/: (offered|accepted)$/.test(line)
      );
      assert.deepEqual(ended, []);
      assert.ok(grown < 32 * 1024, `the server grew by ${grown} KiB`);
      assert.ok(!server.stderr.some((line) => / left /.test(line)), server.stderr.join("\n"));
      void flood;
    } finally {
      bob.signal("SIGCONT");
      peer.chat.session.channel.close();
    }
  },
);

e2e(
  "a client that does not take files (an older one, or listen without --accept-files) is never sent an offer",
  async (s) => {
    const { address } = await s.room(["ann", "bob"]);
    const bob = s.spawn(["--keys", "bob", "listen", address, "--accept-new", "--json"]);
    await bob.waitFor("stderr", /^chat: listening to /);
    await randomFile(`${s.dir}/small.bin`, 1000);
    const ann = await s.run(
      ["--keys", "ann", "send", address, "--accept-new", "--file", "small.bin", "--to", "bob"],
    );
    assert.equal(ann.code, 1, ann.stderr);
    assert.match(ann.stderr, /bob's client cannot take files \[unsupported\]/);
    assert.ok(!bob.stdout.some((line) => line.includes("file")), bob.stdout.join("\n"));
  },
);

e2e(
  "an offer-and-cancel flood is paced at the line rate: the receiver is not dropped and keeps no empty parts",
  async (s) => {
    const { server, address, port, identity: mallory } = await mixedRoom(s, "mallory", "bob");
    const bob = await receiver(s, "bob", address, "dl");
    const peer = await filePeer(port, mallory);
    const channel = peer.chat.session.channel;
    const flood = (async () => {
      for (let i = 0; i < 3000; i++) {
        const id = i.toString(16).padStart(16, "0");
        const name = `spam-${i}.bin`;
        await channel.send({
          type: "file-offer",
          id,
          to: "bob",
          name,
          size: 10,
          sha256: "00".repeat(32),
        });
        await channel.send({ type: "file-end", id, code: "cancelled", message: "" });
      }
    })().catch(() => {});
    await new Promise((resolve) => setTimeout(resolve, 4000));
    // 100 offers at once, then 20 a second: the flooder is slowed down, not bob's queue filled
    const offered = events(bob, "file-offer").length;
    assert.ok(offered <= 100 + 20 * 5, `${offered} offers reached bob in 4 s`);
    assert.ok(peer.chat.session.channel.closed === false);
    assert.ok(!server.stderr.some((line) => /bob left/.test(line)), server.stderr.join("\n"));
    assert.ok(!bob.stderr.some((line) => /error/.test(line)), bob.stderr.join("\n"));
    channel.close();
    void flood;
    await waitUntil(
      async () => (await listDir(`${s.dir}/dl`).catch(() => [])).length === 0,
      5000,
      "no part files left",
    );
  },
);
