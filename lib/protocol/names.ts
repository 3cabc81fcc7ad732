/**
 * Names: display names and allowlist labels. One rule everywhere (`NAME_PATTERN`), so a name that
 * is accepted once can be written to a file, shown in a room and typed back on the command line.
 * @module
 */
import { NAME_PATTERN } from "./constants.ts";

/** The rule in words, for error messages. */
export const NAME_RULE = "1 to 32 letters, digits, '-', '_' or '.'";

/**
 * Whether `name` is a valid name or label (see `NAME_PATTERN`).
 *
 * @example
 * ```ts
 * import { isValidName } from "./names.ts";
 * isValidName("alice-laptop"); // true
 * isValidName("alice laptop"); // false
 * ```
 */
export function isValidName(name: string): boolean {
  return typeof name === "string" && NAME_PATTERN.test(name);
}

/**
 * Checks `name` and returns it, or throws a `SyntaxError` saying what is wrong with it.
 * `what` names the thing in the message ("label", "name").
 *
 * @example
 * ```ts
 * import { validateName } from "./names.ts";
 * validateName("alice", "label"); // "alice"
 * // validateName("a\nb", "label") throws: invalid label "a\nb": it contains a line break
 * ```
 */
export function validateName(name: string, what = "name"): string {
  if (isValidName(name)) return name;
  const shown = JSON.stringify(name.length > 40 ? name.slice(0, 40) + "…" : name);
  throw new SyntaxError(`invalid ${what} ${shown}: ${nameProblem(name)}`);
}

function nameProblem(name: string): string {
  if (name.length === 0) return "it is empty";
  if (/[\r\n]/.test(name)) return "it contains a line break";
  if (/\s/.test(name)) return `it contains white space; use ${NAME_RULE}`;
  if (name.length > 32) return `it is ${name.length} characters long; the limit is 32`;
  const bad = [...name].find((c) => !/^[A-Za-z0-9._-]$/.test(c)) ?? "";
  return `${JSON.stringify(bad)} is not allowed; use ${NAME_RULE}`;
}

// UTS #39 confusables that stay inside the name alphabet: each maps to the one character (or
// pair) a reader could take it for. Case is folded too: `Alice` and `alice` read as one name.
const CONFUSABLE_PAIRS: [RegExp, string][] = [[/rn/g, "m"], [/vv/g, "w"], [/cl/g, "d"]];
const CONFUSABLE_CHARS: Record<string, string> = { "1": "l", "I": "l", "|": "l", "0": "o" };

/**
 * The skeleton of a name (after UTS #39, for the ASCII the name rule allows): two names with
 * the same skeleton can be mistaken for one another on screen.
 *
 * @example
 * ```ts
 * import { skeleton } from "./names.ts";
 * skeleton("aIice") === skeleton("alice"); // true
 * skeleton("rnallory") === skeleton("mallory"); // true
 * skeleton("bob") === skeleton("rob"); // false
 * ```
 */
export function skeleton(name: string): string {
  let folded = "";
  for (const c of name) folded += CONFUSABLE_CHARS[c] ?? c.toLowerCase();
  for (const [pair, single] of CONFUSABLE_PAIRS) folded = folded.replace(pair, single);
  return folded;
}

/** Whether `a` and `b` differ but could be taken for one another (same skeleton). */
export function confusable(a: string, b: string): boolean {
  return a !== b && skeleton(a) === skeleton(b);
}
