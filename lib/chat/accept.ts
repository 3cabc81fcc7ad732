/**
 * A listener's accept loop that only a close can end.
 *
 * `accept()` fails for reasons that belong to one connection or to a passing shortage, not to
 * the listener: a client that connects and resets before we take it (`ENOTCONN`,
 * `ECONNABORTED`), or no file descriptor or memory left for a moment (`EMFILE`, `ENFILE`,
 * `ENOBUFS`, `ENOMEM`). Ending the loop on one of those would leave a server that is up but deaf
 * (one `nmap -sT` was enough), so they are counted, reported at most once a second, and followed
 * by a short pause. Anything else means the listener itself is broken: the loop reports it as
 * fatal, so the caller can exit and a supervisor can restart it.
 * @module
 */
import type { Conn, Listener } from "./network.ts";

/** `accept()` errors that say nothing about the listener itself. */
export const TRANSIENT_ACCEPT_ERRORS: ReadonlySet<string> = new Set([
  "ENOTCONN",
  "ECONNABORTED",
  "ECONNRESET",
  "EPROTO",
  "EMFILE",
  "ENFILE",
  "ENOBUFS",
  "ENOMEM",
]);

/** Errors that mean "out of a resource": the pause is longer, so the shortage can pass. */
const SHORTAGES = new Set(["EMFILE", "ENFILE", "ENOBUFS", "ENOMEM"]);

/** The pause after a reset connection (keeps a flood of them from spinning a core). */
export const RESET_PAUSE_MS = 1;
/** The pause after running out of descriptors or memory. */
export const SHORTAGE_PAUSE_MS = 50;
/** Transient errors are reported at most this often. */
export const REPORT_EVERY_MS = 1000;

/** Whether `error` is an accept() failure that leaves the listener usable. */
export function isTransientAcceptError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && TRANSIENT_ACCEPT_ERRORS.has(code);
}

/** What the accept loop needs from its owner. */
export interface AcceptLoopOptions {
  /** True once the owner is closing the listener on purpose: errors then end the loop quietly. */
  closing(): boolean;
  /** Takes each accepted connection; must not throw (a throw is reported as fatal). */
  onConnection(connection: Conn): void;
  /**
   * Told about transient failures, at most once a second: the code of the latest, and how many
   * there were since the last report.
   */
  onTransient?(code: string, count: number): void;
}

/**
 * Accepts connections from `listener` until the owner closes it. Resolves when `closing()` is
 * true after the listener failed or ended; rejects with the error when the listener broke
 * while the owner still wanted it (the caller must then stop or exit, never stay up deaf).
 */
export async function acceptLoop(
  listener: Listener,
  options: AcceptLoopOptions,
): Promise<void> {
  let unreported = 0;
  let latest = "";
  let reportedAt = -Infinity;
  const report = (force: boolean) => {
    const now = performance.now();
    if (unreported === 0 || (!force && now - reportedAt < REPORT_EVERY_MS)) return;
    options.onTransient?.(latest, unreported);
    unreported = 0;
    reportedAt = now;
  };
  try {
    while (true) {
      let connection: Conn;
      try {
        connection = await listener.accept();
      } catch (error) {
        if (options.closing()) return;
        if (!isTransientAcceptError(error)) throw error;
        latest = (error as { code: string }).code;
        unreported++;
        report(false);
        const pause = SHORTAGES.has(latest) ? SHORTAGE_PAUSE_MS : RESET_PAUSE_MS;
        await new Promise((resolve) => setTimeout(resolve, pause));
        continue;
      }
      report(false);
      if (options.closing()) {
        closeQuietly(connection);
        continue;
      }
      options.onConnection(connection);
    }
  } finally {
    report(true);
  }
}

/** Closes `resource` unless it is already closed (a second close throws BadResource). */
export function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch { /* already closed */ }
}
