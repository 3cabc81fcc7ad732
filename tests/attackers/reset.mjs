// A test-owned attacker, run with Node (the machines' own runtime): connects to
// 127.0.0.1:PORT COUNT times and resets each connection at once (SO_LINGER {1, 0}, which
// Node's resetAndDestroy() sets), so the server's accept() meets a connection already gone.
// With HOLD, it instead opens COUNT connections, keeps them open HOLD ms, then resets them all.
// Prints the number of connections made, then how many the server closed while held.
// usage: node reset.mjs PORT COUNT [LOCAL_ADDRESS] [HOLD_MS]
import net from "node:net";

const port = Number(process.argv[2]);
const count = Number(process.argv[3] ?? 1);
const localAddress = process.argv[4] || undefined;
const holdMs = Number(process.argv[5] ?? 0);

/** One connection, or null if it fails or is not accepted by the kernel within 2 s. */
function open() {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(null);
    }, 2000);
    socket.on("connect", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.on("error", () => {
      clearTimeout(timer);
      resolve(null);
    });
  });
}

// a deaf server fills its backlog, and then every connect waits: give up after 3 s of that
let failuresInARow = 0;
let made = 0;
let closedByServer = 0;
const held = [];
for (let i = 0; i < count; i++) {
  const socket = await open();
  if (!socket) {
    if (++failuresInARow >= 2) break;
    continue;
  }
  failuresInARow = 0;
  made++;
  if (holdMs > 0) {
    socket.on("close", () => closedByServer++);
    socket.on("end", () => socket.destroy());
    socket.on("data", () => {});
    held.push(socket);
  } else socket.resetAndDestroy();
}
if (holdMs > 0) {
  await new Promise((resolve) => setTimeout(resolve, holdMs));
  const closed = closedByServer;
  for (const socket of held) if (!socket.destroyed) socket.resetAndDestroy();
  console.log(made, closed);
} else console.log(made, 0);
