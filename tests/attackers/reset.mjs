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

function open() {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress });
    socket.on("connect", () => resolve(socket));
    socket.on("error", () => resolve(null));
  });
}

let made = 0;
let closedByServer = 0;
const held = [];
for (let i = 0; i < count; i++) {
  const socket = await open();
  if (!socket) continue;
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
