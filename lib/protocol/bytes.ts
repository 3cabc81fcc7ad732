/**
 * The one check for bytes entering the program's core, after noble's `abytes`: a Uint8Array of
 * an exact length (or within bounds), or a TypeError / RangeError that names what it is; and hex.
 * @module
 */

/** The lengths `abytes` accepts: one exact length, or an inclusive range. */
export type Lengths = number | { min?: number; max?: number };

/**
 * Returns `value` if it is a Uint8Array whose length fits `lengths`; throws otherwise, naming
 * `label` ("handshake message 2", "cipher key").
 *
 * @example
 * ```ts
 * import { abytes } from "./bytes.ts";
 * abytes(new Uint8Array(32), 32, "public key"); // the array
 * // abytes(new Uint8Array(31), 32, "public key") throws: public key must be 32 bytes, got 31
 * ```
 */
export function abytes(value: unknown, lengths: Lengths | undefined, label: string): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`${label} must be a Uint8Array, got ${describe(value)}`);
  }
  if (typeof lengths === "number") {
    if (value.length !== lengths) {
      throw new RangeError(`${label} must be ${lengths} bytes, got ${value.length}`);
    }
  } else if (lengths) {
    if (lengths.min !== undefined && value.length < lengths.min) {
      throw new RangeError(
        `${label} is too short: ${value.length} bytes, at least ${lengths.min} expected`,
      );
    }
    if (lengths.max !== undefined && value.length > lengths.max) {
      throw new RangeError(
        `${label} is too long: ${value.length} bytes, at most ${lengths.max} allowed`,
      );
    }
  }
  return value;
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

/**
 * Lowercase hex of `bytes`.
 *
 * @example
 * ```ts
 * import { bytesOfHex, hexOf } from "./bytes.ts";
 * hexOf(new Uint8Array([0, 255])); // "00ff"
 * bytesOfHex("00ff"); // Uint8Array [0, 255]
 * ```
 */
export function hexOf(bytes: Uint8Array): string {
  let hex = "";
  for (const byte of bytes) hex += byte.toString(16).padStart(2, "0");
  return hex;
}

/** The bytes of lowercase hex text (checked by the caller). */
export function bytesOfHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}
