/**
 * Host names and IP literals in the one spelling pins are keyed by. The resolver accepts many
 * spellings of one address (`127.1`, `2130706433`, `0x7f.1`, `[::ffff:127.0.0.1]` are all
 * 127.0.0.1, as inet_aton(3) and RFC 4291 read them); a pin keyed by the literal text would make
 * each of them a new first contact. Pure functions, no I/O.
 * @module
 */

/**
 * The canonical form of a host: an IPv4 literal in any inet_aton form (1 to 4 parts, each
 * decimal, octal with a leading 0, or hex with 0x) becomes a dotted quad; an IPv6 literal (with
 * or without brackets) becomes its RFC 5952 text, lower case and compressed, or the dotted quad
 * when it is IPv4-mapped (`::ffff:a.b.c.d`); a name is lower-cased without a trailing dot.
 * Throws `SyntaxError` for brackets around something that is not an IPv6 address.
 *
 * @example
 * ```ts
 * import { canonicalHost } from "./address.ts";
 * canonicalHost("0x7f.1"); // "127.0.0.1"
 * canonicalHost("[0:0:0:0:0:0:0:1]"); // "::1"
 * canonicalHost("Example.ORG."); // "example.org"
 * ```
 */
export function canonicalHost(host: string): string {
  const bracketed = host.startsWith("[") && host.endsWith("]");
  const bare = bracketed ? host.slice(1, -1) : host;
  const ipv6 = bracketed || bare.includes(":") ? parseIPv6(bare) : undefined;
  if (ipv6 !== undefined) return formatIPv6(ipv6);
  if (bracketed || bare.includes(":")) {
    throw new SyntaxError(`${JSON.stringify(bare)} is not an IPv6 address`);
  }
  const ipv4 = parseIPv4(bare);
  if (ipv4 !== undefined) return formatIPv4(ipv4);
  const name = bare.toLowerCase();
  return name.length > 1 && name.endsWith(".") ? name.slice(0, -1) : name;
}

/** Whether a canonical host is an IPv6 literal (and needs brackets before a port). */
export function isIPv6(host: string): boolean {
  return host.includes(":");
}

/** An IPv4 address in inet_aton's forms as a 32-bit number, or undefined if it is not one. */
function parseIPv4(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]+$/i.test(part)) value = parseInt(part.slice(2), 16);
    else if (/^0[0-7]*$/.test(part)) value = parseInt(part, 8);
    else if (/^[1-9][0-9]*$/.test(part)) value = parseInt(part, 10);
    else return undefined;
    values.push(value);
  }
  // every part but the last is one byte; the last fills the bytes that are left
  const last = values.pop()!;
  if (values.some((value) => value > 255)) return undefined;
  if (last >= 2 ** (8 * (4 - values.length))) return undefined;
  return values.reduce((sum, value, index) => sum + value * 2 ** (8 * (3 - index)), 0) + last;
}

function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join(".");
}

/** An IPv6 address as eight 16-bit groups, or undefined if it is not one (RFC 4291 §2.2). */
function parseIPv6(text: string): number[] | undefined {
  let body = text;
  const tail: number[] = [];
  // an embedded IPv4 address in the last 32 bits must be a strict dotted quad
  const dotted = /^(.*:)((?:0|[1-9]\d{0,2})(?:\.(?:0|[1-9]\d{0,2})){3})$/.exec(body);
  if (dotted) {
    const bytes = dotted[2].split(".").map(Number);
    if (bytes.some((byte) => byte > 255)) return undefined;
    tail.push(bytes[0] * 256 + bytes[1], bytes[2] * 256 + bytes[3]);
    body = dotted[1].endsWith("::") ? dotted[1] : dotted[1].slice(0, -1);
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string) => half === "" ? [] : half.split(":");
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if ([...head, ...rest].some((group) => !/^[0-9a-f]{1,4}$/i.test(group))) return undefined;
  const known = head.length + rest.length + tail.length;
  if (halves.length === 2 ? known > 7 : known !== 8) return undefined;
  const zeros = new Array(8 - known).fill(0);
  return [
    ...head.map((group) => parseInt(group, 16)),
    ...zeros,
    ...rest.map((group) => parseInt(group, 16)),
    ...tail,
  ];
}

/** RFC 5952 §4: lower case, no leading zeros, the longest run (2+) of zero groups as "::". */
function formatIPv6(groups: number[]): string {
  if (groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff) {
    return formatIPv4(groups[6] * 65536 + groups[7]); // IPv4-mapped: the same host
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8;) {
    let end = start;
    while (end < 8 && groups[end] === 0) end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  const hex = groups.map((group) => group.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLength).join(":")}`;
}
