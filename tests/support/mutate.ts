/**
 * A seeded PRNG and byte-level mutators for fuzz tests. Every mutator returns a new buffer and leaves
 * its input alone, and every choice comes from the `Rng`, so a seed replays a run exactly.
 *
 * @module
 */

/** mulberry32: small, fast and good enough to pick mutations; not for cryptography. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed | 0;
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.#state ^ (this.#state >>> 15), 1 | this.#state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in `[0, n)`; `n` must be at least 1. */
  below(n: number): number {
    return this.next() % n;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** `n` random bytes, generated four at a time so that 64 KiB buffers stay cheap. */
  bytes(n: number): Uint8Array {
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) words[i] = this.next();
    return new Uint8Array(words.buffer, 0, n);
  }
}

/**
 * A big-endian unsigned field of 1-4 bytes; `mask` limits it to some bits (e.g. the IPv4 IHL nibble), and
 * `values` lists values that mean something there (protocol numbers, flags, GREASE).
 */
export interface Field {
  at: number;
  size: 1 | 2 | 3 | 4;
  mask?: number;
  values?: readonly number[];
}

/** Values that tend to break parsers: the edges of each size and of signedness. */
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff];

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Flips 1-8 random bits of `input[from..to)` (the whole input by default). */
export function flipBits(rng: Rng, input: Uint8Array, from = 0, to = input.length): Uint8Array {
  const out = input.slice();
  if (to <= from) return out;
  for (let n = 1 + rng.below(8); n > 0; n--) out[from + rng.below(to - from)] ^= 1 << rng.below(8);
  return out;
}

/** Sets one byte to an interesting value, or to its old value ±1. */
export function setInterestingByte(rng: Rng, input: Uint8Array): Uint8Array {
  const out = input.slice();
  if (out.length === 0) return out;
  const at = rng.below(out.length);
  const choice = rng.below(INTERESTING.length + 2);
  out[at] = choice < INTERESTING.length ? INTERESTING[choice] : out[at] + (choice % 2 ? 1 : -1);
  return out;
}

/** Removes a chunk of 1-64 bytes. */
export function deleteChunk(rng: Rng, input: Uint8Array): Uint8Array {
  if (input.length === 0) return input.slice();
  const at = rng.below(input.length);
  const end = Math.min(input.length, at + 1 + rng.below(64));
  return concat(input.subarray(0, at), input.subarray(end));
}

/** Repeats a chunk of 1-64 bytes right after itself. */
export function duplicateChunk(rng: Rng, input: Uint8Array): Uint8Array {
  if (input.length === 0) return input.slice();
  const at = rng.below(input.length);
  const end = Math.min(input.length, at + 1 + rng.below(64));
  return concat(input.subarray(0, end), input.subarray(at));
}

/** Inserts 1-64 random bytes, or as many copies of one interesting byte. */
export function insertChunk(rng: Rng, input: Uint8Array): Uint8Array {
  const at = rng.below(input.length + 1);
  const n = 1 + rng.below(64);
  const chunk = rng.below(2) ? rng.bytes(n) : new Uint8Array(n).fill(rng.pick(INTERESTING));
  return concat(input.subarray(0, at), chunk, input.subarray(at));
}

/** The head of `a` joined to the tail of `b`, each cut at a random point. */
export function splice(rng: Rng, a: Uint8Array, b: Uint8Array): Uint8Array {
  return concat(a.subarray(0, rng.below(a.length + 1)), b.subarray(rng.below(b.length + 1)));
}

/** A random prefix (possibly empty, possibly whole). */
export function truncate(rng: Rng, input: Uint8Array): Uint8Array {
  return input.slice(0, rng.below(input.length + 1));
}

/** The field's value (bytes past the end read as 0). */
function readField(input: Uint8Array, field: Field): number {
  const raw = readRaw(input, field);
  return field.mask === undefined ? raw : (raw & field.mask) >>> shiftOf(field.mask);
}

/**
 * Sets a field to one of its meaningful `values` (half the time, when it has some), else to 0, 1, its old
 * value ±1, its maximum, the bytes left after it ±1, twice its value or a random value: the off-by-one
 * and overrun cases a length check must catch.
 */
export function mutateField(rng: Rng, input: Uint8Array, field: Field): Uint8Array {
  const bits = field.mask === undefined ? 8 * field.size : popcount(field.mask);
  const max = 2 ** bits - 1;
  const old = readField(input, field);
  const left = input.length - field.at - field.size;
  const candidates = field.values && rng.below(2)
    ? field.values
    : [0, 1, old + 1, old - 1, max, left, left + 1, left - 1, old * 2, rng.next() % (max + 1)];
  const value = Math.min(max, Math.max(0, rng.pick(candidates)));
  return writeField(input, field, value);
}

function writeField(input: Uint8Array, field: Field, value: number): Uint8Array {
  const out = input.slice();
  let whole = value;
  if (field.mask !== undefined) {
    whole = ((readRaw(input, field) & ~field.mask) | ((value << shiftOf(field.mask)) & field.mask)) >>> 0;
  }
  for (let i = field.size - 1; i >= 0; i--) {
    if (field.at + i < out.length) out[field.at + i] = whole & 0xff;
    whole = Math.floor(whole / 256);
  }
  return out;
}

function readRaw(input: Uint8Array, field: Field): number {
  let v = 0;
  for (let i = 0; i < field.size; i++) v = v * 256 + (input[field.at + i] ?? 0);
  return v;
}

function shiftOf(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

function popcount(mask: number): number {
  let n = 0;
  for (let m = mask >>> 0; m; m &= m - 1) n++;
  return n;
}

/**
 * A copy of `input` with one to four bytes overwritten, inserted or deleted; the new bytes are drawn from
 * `special` (the metacharacters of a text protocol, say) half the time, else from any value.
 */
export function editBytes(rng: Rng, input: Uint8Array, special: readonly number[]): Uint8Array {
  const out = Array.from(input);
  for (let k = 1 + rng.below(4); k > 0; k--) {
    const at = rng.below(out.length + 1);
    const byte = rng.below(2) === 0 ? rng.pick(special) : rng.below(256);
    const op = rng.below(10);
    if (op < 4) out[at] = byte;
    else if (op < 7) out.splice(at, 0, byte);
    else out.splice(at, 1);
  }
  return new Uint8Array(out);
}
