/**
 * Command-line values turned into checked values: ports, port ranges, `HOST[:PORT]` targets and
 * the server's limit flags. A bad value is a usage error (exit 2) that says what was expected.
 * @module
 */
import { MAX_FILE_SIZE } from "../protocol/file_messages.ts";
import {
  DEFAULT_PORT,
  MAX_KEEPALIVE_MS,
  MAX_PLAINTEXT_BYTES,
  MIN_KEEPALIVE_MS,
} from "../protocol/constants.ts";
import type { PortRange } from "../chat/data_port.ts";
import { MAX_MEMBERS_LIMIT, type ServerLimits } from "../chat/limits.ts";
import { Exit } from "./exit.ts";
import { UserError } from "./output.ts";

/** Parses `A-B` (1 <= A <= B <= 65535); throws SyntaxError saying what is wrong. */
export function parsePortRange(text: string): PortRange {
  const match = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  if (!match) throw new SyntaxError(`invalid port range "${text}": expected A-B, e.g. 7500-7599`);
  const [first, last] = [Number(match[1]), Number(match[2])];
  if (first < 1 || last > 65535 || first > last) {
    throw new SyntaxError(`invalid port range "${text}": need 1 <= A <= B <= 65535`);
  }
  return { first, last };
}

/** Parses a TCP port number 1..65535 (0 only when `allowZero`, meaning "any free port"). */
export function parsePort(text: string, allowZero = false): number {
  const port = /^\d{1,5}$/.test(text.trim()) ? Number(text) : NaN;
  if (!(port >= (allowZero ? 0 : 1) && port <= 65535)) {
    throw new SyntaxError(`invalid port "${text}": expected a number from 1 to 65535`);
  }
  return port;
}

/** Splits `HOST[:PORT]` (IPv6 as `[::1]:7447` or bare `::1`); throws a usage error. */
export function parseTarget(target: string): { hostname: string; port: number } {
  const usage = (why: string) =>
    new UserError(`invalid address "${target}": ${why}`, {
      exitCode: Exit.USAGE,
      hints: ["give HOST or HOST:PORT, e.g. chat connect 127.0.0.1:7447"],
    });
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(target);
  let hostname: string, portText: string | undefined;
  if (bracketed) [hostname, portText] = [bracketed[1], bracketed[2]];
  else if ((target.match(/:/g) ?? []).length > 1) hostname = target; // bare IPv6, no port
  else [hostname, portText] = target.split(":") as [string, string | undefined];
  if (!hostname) throw usage("no host");
  if (portText === undefined) return { hostname, port: DEFAULT_PORT };
  try {
    return { hostname, port: parsePort(portText) };
  } catch (error) {
    throw usage((error as Error).message);
  }
}

/** Seconds in each unit a duration may be given in. */
const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };
/** The longest duration accepted: a year. */
export const MAX_DURATION_MS = 365 * 86400 * 1000;

/**
 * Parses a duration, a whole number and a unit: `90s`, `30m`, `24h`, `7d`, into milliseconds
 * (1 s to 365 days). Throws SyntaxError saying what is expected.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./args.ts";
 * parseDuration("30m"); // 1800000
 * parseDuration("7d"); // 604800000
 * ```
 */
export function parseDuration(text: string): number {
  const match = /^(\d{1,9})([smhd])$/.exec(text.trim());
  const ms = match ? Number(match[1]) * DURATION_UNITS[match[2]] * 1000 : NaN;
  if (!(ms >= 1000 && ms <= MAX_DURATION_MS)) {
    throw new SyntaxError(
      `invalid duration "${text}": expected a whole number and s, m, h or d ` +
        "(e.g. 90s, 30m, 24h, 7d), from 1s to 365d",
    );
  }
  return ms;
}

/** Options of `chat serve` (limits as given on the command line, checked here). */
export interface ServeOptions {
  host: string;
  port: string;
  dataPorts?: string;
  name: string;
  headless?: boolean;
  json?: boolean;
  handshakeTimeout?: string;
  joinTimeout?: string;
  keepalive?: string;
  maxHandshakes?: string;
  maxHandshakesPerAddress?: string;
  maxLineBytes?: string;
  maxQueueBytes?: string;
  maxMembers?: string;
  rate?: string;
  burst?: string;
  maxPendingSessions?: string;
  maxPendingPerKey?: string;
  maxUnproven?: string;
  connectRate?: string;
  connectBurst?: string;
  history?: string;
  maxFileBytes?: string;
  maxTransfers?: string;
  offerTtl?: string;
  /** `--downloads DIR`: where the operator's accepted files land. */
  downloads?: string;
  /** `--log FILE`: every room event appended as JSON lines. */
  log?: string;
}

/** One limit flag of `chat serve`: the option, its ServerLimits field, its unit and range. */
interface LimitFlag {
  option: keyof ServeOptions;
  field: keyof ServerLimits;
  /** Seconds (turned into ms) or a count. */
  unit: "s" | "n";
  /** The smallest and largest values accepted, in the flag's unit. */
  min: number;
  max: number;
}

const HOUR = 3600;
const MILLION = 1_000_000;

/**
 * The limit flags of `chat serve`. Every one has a range: a duration past it would overflow a
 * timer (Deno turns a delay over 2^31-1 ms into 1 ms), a member count past it would not fit the
 * member list of a `welcome` in one frame.
 */
export const LIMIT_FLAGS: LimitFlag[] = [
  { option: "handshakeTimeout", field: "handshakeTimeoutMs", unit: "s", min: 0.1, max: HOUR },
  { option: "joinTimeout", field: "joinTimeoutMs", unit: "s", min: 0.1, max: HOUR },
  {
    option: "keepalive",
    field: "keepaliveMs",
    unit: "s",
    min: MIN_KEEPALIVE_MS / 1000,
    max: MAX_KEEPALIVE_MS / 1000,
  },
  { option: "maxHandshakes", field: "maxHandshakes", unit: "n", min: 1, max: MILLION },
  {
    option: "maxHandshakesPerAddress",
    field: "maxHandshakesPerAddress",
    unit: "n",
    min: 1,
    max: MILLION,
  },
  { option: "maxLineBytes", field: "maxLineBytes", unit: "n", min: 1, max: MAX_PLAINTEXT_BYTES },
  { option: "maxQueueBytes", field: "maxQueuedBytes", unit: "n", min: 1024, max: 2 ** 30 },
  { option: "maxMembers", field: "maxMembers", unit: "n", min: 1, max: MAX_MEMBERS_LIMIT },
  { option: "rate", field: "rateLinesPerSecond", unit: "n", min: 1, max: MILLION },
  { option: "burst", field: "rateBurstLines", unit: "n", min: 1, max: MILLION },
  { option: "maxPendingSessions", field: "maxPendingSessions", unit: "n", min: 1, max: 65535 },
  {
    option: "maxPendingPerKey",
    field: "maxPendingSessionsPerKey",
    unit: "n",
    min: 1,
    max: 65535,
  },
  { option: "maxUnproven", field: "maxUnprovenConnections", unit: "n", min: 1, max: MILLION },
  { option: "connectRate", field: "connectRatePerSecond", unit: "n", min: 1, max: MILLION },
  { option: "connectBurst", field: "connectBurst", unit: "n", min: 1, max: MILLION },
  { option: "history", field: "historyLines", unit: "n", min: 0, max: 10_000 },
  { option: "maxFileBytes", field: "maxFileBytes", unit: "n", min: 0, max: MAX_FILE_SIZE },
  { option: "maxTransfers", field: "maxTransfersPerMember", unit: "n", min: 0, max: 1000 },
  { option: "offerTtl", field: "offerTtlMs", unit: "s", min: 1, max: HOUR * 24 },
];

function flagName(option: string): string {
  return "--" + option.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** Reads the limit flags; a value that is not a number in the flag's range is a usage error. */
export function parseLimits(options: ServeOptions): Partial<ServerLimits> {
  const limits: Partial<ServerLimits> = {};
  for (const { option, field, unit, min, max } of LIMIT_FLAGS) {
    const text = options[option];
    if (text === undefined) continue;
    const value = Number(text);
    const whole = unit === "n";
    const pattern = whole ? /^\d+$/ : /^\d+(\.\d+)?$/;
    if (!(typeof text === "string" && pattern.test(text) && value >= min && value <= max)) {
      const what = whole ? "a whole number" : "a number of seconds";
      throw new UserError(
        `${flagName(option)}: expected ${what} from ${min} to ${max}, got "${text}"`,
        { exitCode: Exit.USAGE },
      );
    }
    limits[field] = unit === "s" ? Math.round(value * 1000) : value;
  }
  return limits; // the silence limit follows the keepalive interval (withDefaults)
}
