import { assert } from "./helpers.ts";
import { RoomView } from "../lib/cli/room_view.ts";
import type { MessageStyle, Terminal } from "../lib/cli/terminal.ts";

/** A terminal that records what it was asked to show. */
function recordingTerminal() {
  const shown: { from: string; text: string; style: MessageStyle }[] = [];
  const infos: string[] = [];
  const terminal = {
    message: (from: string, text: string, style: MessageStyle = {}) =>
      shown.push({ from, text, style }),
    info: (text: string) => infos.push(text),
  } as unknown as Terminal;
  return { terminal, shown, infos };
}

const EVE = "eeee:1111:2222:3333";

Deno.test("/ignore hides a key's lines, under any name, until /unignore", () => {
  const { terminal, shown } = recordingTerminal();
  const view = new RoomView(terminal, { json: false, bell: "mention" });
  const handlers = view.handlers();
  handlers.presence("join", "eve~eeee", EVE);
  assert.match(view.ignore("eve~eeee"), /ignoring eve~eeee \(key eeee:1111:2222:3333\)/);
  handlers.message("eve~eeee", "spam", { fingerprint: EVE });
  handlers.message("eve2~eeee", "spam under another name", { fingerprint: EVE });
  handlers.private?.("eve~eeee", "private spam", { fingerprint: EVE });
  handlers.message("bob", "hello", { fingerprint: "bbbb:1111:2222:3333" });
  assert.deepEqual(shown.map((s) => s.text), ["hello"]);
  assert.equal(view.unignore("eve~eeee"), "showing eve~eeee again");
  handlers.message("eve~eeee", "back", { fingerprint: EVE });
  assert.deepEqual(shown.map((s) => s.text), ["hello", "back"]);
  assert.match(view.ignore("nobody"), /no join or line of nobody seen yet/);
});

Deno.test("the bell rings for a mention of our name or a private line, not for replays", () => {
  const { terminal, shown } = recordingTerminal();
  const view = new RoomView(terminal, { json: false, bell: "mention" });
  view.ownName = "ann~1234";
  const handlers = view.handlers();
  handlers.message("bob", "hi everyone");
  handlers.message("bob", "ANN, look");
  handlers.message("bob", "banner is not a mention");
  handlers.private?.("bob", "psst");
  handlers.message("bob", "ann said this long ago", { replay: true, time: "2026-01-01T00:00:00Z" });
  assert.deepEqual(shown.map((s) => Boolean(s.style.bell)), [false, true, false, true, false]);
  assert.deepEqual(shown.map((s) => Boolean(s.style.highlight)), [false, true, false, true, false]);
  assert.equal(shown[4].style.replay, true);
  assert.equal(shown[4].style.at?.toISOString(), "2026-01-01T00:00:00.000Z");
  const quiet = recordingTerminal();
  const off = new RoomView(quiet.terminal, { json: false, bell: "off" });
  off.ownName = "ann";
  off.handlers().private?.("bob", "psst");
  assert.equal(quiet.shown[0].style.bell, false);
});
