/**
 * The `./chat` launcher the quick start uses: it execs Deno, so a signal sent to the command a
 * person ran reaches the program itself (a launcher in between once printed "Terminated" and
 * left the server running with its port).
 */
import { fileURLToPath } from "node:url";
import { assert } from "./helpers.ts";
import { ChatProcess, LISTENING, Sandbox } from "./process.ts";

const LAUNCHER = fileURLToPath(new URL("../chat", import.meta.url));

for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
  Deno.test({
    name: `${signal} to ./chat serve stops the server with its goodbye, and frees the port`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: () =>
      Sandbox.run(async (s) => {
        await s.keygen("srv");
        const server = new ChatProcess(["--keys", "srv", "serve", "--port", "0", "--headless"], {
          cwd: s.dir,
          executable: LAUNCHER,
        });
        try {
          const [, address] = await server.waitFor("stderr", LISTENING);
          server.signal(signal);
          assert.equal(await server.exitCode(10_000), 0, server.stderr.join("\n"));
          assert.ok(server.stderr.some((line) => /the server stopped/.test(line)));
          const [hostname, port] = address.split(":");
          const refused = await Deno.connect({ hostname, port: Number(port) }).then(
            (connection) => (connection.close(), false),
            () => true,
          );
          assert.ok(refused, "the port is still open after the launcher was signalled");
        } finally {
          await server.stop();
        }
      }),
  });
}
