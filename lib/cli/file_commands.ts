/**
 * The prompt's file commands, for a client (`chat connect`) and the operator (`chat serve`)
 * alike: `/send PATH NAME`, `/accept N`, `/decline N` and `/files`.
 * @module
 */
import type { FileTransfers } from "../chat/file_transfer.ts";
import type { DownloadFolder } from "../chat/downloads.ts";
import type { FileView } from "./file_view.ts";
import type { Terminal } from "./terminal.ts";

/** What a file command needs: the transfers (absent while reconnecting), the view, the folder. */
export interface FileCommandContext {
  files(): FileTransfers | undefined;
  view: FileView;
  downloads: DownloadFolder;
  terminal: Terminal;
}

/** `/send PATH NAME`: offers the file; the transfer then runs beside the chat. */
export function sendFile(context: FileCommandContext, path: string, to: string): void {
  const { terminal, view } = context;
  const files = context.files();
  if (!files) {
    return terminal.error("no file transfers here now (reconnecting, or an older server)");
  }
  files.offer(path, to, { onOffered: (info) => view.offered(info) }).catch((error) =>
    terminal.error(`cannot offer ${path}: ${(error as Error).message}`, [
      "give the path of a readable file, then the member's name: /send PATH NAME",
    ])
  );
}

/** `/accept N` or `/decline N`. */
export function answerOffer(
  context: FileCommandContext,
  kind: "accept" | "decline",
  reference: string,
): void {
  const { terminal, view } = context;
  const files = context.files();
  const id = view.idOf(reference);
  if (!files || !id || !files.pendingOffers.some((offer) => offer.id === id)) {
    return terminal.error(`no offer ${reference} is waiting`, ["/files lists the offers"]);
  }
  if (kind === "decline") return void files.decline(id);
  files.accept(id, context.downloads).catch((error) =>
    terminal.error(`cannot save the file: ${(error as Error).message}`, [
      "choose a folder you can write to with --downloads DIR",
    ])
  );
}

/** `/files`: the offers waiting and the transfers going on. */
export function listFiles(context: FileCommandContext): void {
  const active = context.files()?.active ?? [];
  if (active.length === 0) return context.terminal.info("no offers or transfers");
  for (const info of active) context.terminal.info(context.view.describe(info));
}
