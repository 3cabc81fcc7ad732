/**
 * The layers of lib/ (docs/ARCHITECTURE.md), checked by reading the imports: the wire knows
 * nothing of key files or the room, key files nothing of the room, nothing below the command
 * line prints or exits, and lib/errors.ts imports nothing so that every layer may use it.
 */
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { assert } from "./helpers.ts";

const LIB = fileURLToPath(new URL("../lib/", import.meta.url));

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return [...Deno.readDirSync(dir)].flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

/** The layer of a file of lib/: its folder, or the file itself at the top. */
function layerOf(path: string): string {
  const [first] = relative(LIB, path).split("/");
  return first.endsWith(".ts") ? first : first + "/";
}

/** The lib/ files `path` imports (relative imports only; npm: and node: are outside lib/). */
function importsOf(path: string): string[] {
  const text = Deno.readTextFileSync(path);
  const code = text.split("\n").filter((line) => !/^\s*(\*|\/\/)/.test(line)).join("\n");
  return [...code.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)]
    .map((match) => resolve(dirname(path), match[1]));
}

/** What each layer may import from lib/. */
const ALLOWED: Record<string, string[]> = {
  "errors.ts": [],
  "protocol/": ["protocol/", "errors.ts"],
  "keys/": ["keys/", "protocol/", "errors.ts"],
  "chat/": ["chat/", "keys/", "protocol/", "errors.ts"],
  "cli/": ["cli/", "chat/", "keys/", "protocol/", "errors.ts"],
};

Deno.test("each layer of lib/ imports only the layers below it", () => {
  const breaches: string[] = [];
  for (const file of sources(LIB)) {
    const layer = layerOf(file);
    const allowed = ALLOWED[layer];
    assert.ok(allowed, `${relative(LIB, file)} is in no known layer`);
    for (const target of importsOf(file)) {
      if (!allowed.includes(layerOf(target))) {
        breaches.push(`${relative(LIB, file)} imports ${relative(LIB, target)}`);
      }
    }
  }
  assert.deepEqual(breaches, []);
});

Deno.test("only lib/cli/ touches stdin, stdout, stderr, Deno.exit or console", () => {
  const breaches: string[] = [];
  for (const file of sources(LIB)) {
    if (layerOf(file) === "cli/") continue;
    Deno.readTextFileSync(file).split("\n").forEach((line, index) => {
      if (/^\s*(\*|\/\/)/.test(line)) return; // comments and doc examples
      if (/\bDeno\.(stdin|stdout|stderr|exit)\b|\bconsole\./.test(line)) {
        breaches.push(`${relative(LIB, file)}:${index + 1}: ${line.trim()}`);
      }
    });
  }
  assert.deepEqual(breaches, []);
});

Deno.test("the layer check sees a breach (it reads real imports)", () => {
  // keys/name_book.ts imports keys/keystore.ts: a real edge the parser must find
  const edges = importsOf(join(LIB, "keys/name_book.ts")).map((path) => relative(LIB, path));
  assert.ok(edges.includes("keys/key_text.ts"), edges.join(", "));
  assert.ok(!ALLOWED["protocol/"].includes(layerOf(join(LIB, "chat/room.ts"))));
});
