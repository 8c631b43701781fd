/**
 * The four parser entry points survive over a million deterministic fuzz inputs derived from the shared
 * vectors: generic mutations (bit flips, interesting bytes, chunk deletion, duplication and insertion,
 * splices), mutations aimed at the length and type fields of each protocol (TLS records, handshake and
 * extensions; HTTP/2 frames, HPACK integers and Huffman bits; IPv4/IPv6 and TCP headers and options),
 * every truncation of every vector, and random buffers up to and past the 64 KiB cap.
 *
 * For every input: nothing throws, the wasm never traps (`parserTraps()` stays 0; a trap names its input
 * in hex), every result is a well-formed `Parsed` value or a typed error, and `clientHelloNeeded` agrees
 * with `fingerprintClientHello`. Many mutants must still fingerprint, to many distinct values, so the
 * mutations reach the code behind the first length checks. Inputs at the cap whose structure is valid
 * throughout (tens of thousands of suites, extensions, records, frames or HPACK fields) give their
 * expected outcome. The slowest input of each run is printed for the record, never asserted on.
 */
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  akamai,
  clientHelloNeeded,
  fingerprintClientHello,
  MAX_INPUT,
  p0fSignature,
  type ParseError,
  parserTraps,
  type TlsFingerprint,
} from "../shared/fingerprint.ts";
import {
  concat,
  deleteChunk,
  duplicateChunk,
  type Field,
  flipBits,
  insertChunk,
  mutateField,
  Rng,
  setInterestingByte,
  splice,
  truncate,
} from "./support/mutate.ts";

const VECTORS = new URL("../../shared/fingerprint-vectors/", import.meta.url);

function load(file: string, key: string): Uint8Array[] {
  const entries: Record<string, string>[] = JSON.parse(Deno.readTextFileSync(new URL(file, VECTORS)));
  return entries.map((e) => Uint8Array.from(e[key].match(/../g) ?? [], (h) => parseInt(h, 16)));
}

const hellos = load("ja4_vectors.json", "client_hello_record_hex");
const streams = load("h2_vectors.json", "client_to_server_hex");
const syns = load("syn_vectors.json", "ip_packet_hex");

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const ERRORS = new Set<string>(["not_protocol", "truncated", "malformed", "over_limit", "unsupported"]);

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const u8 = (b: Uint8Array, at: number) => b[at] ?? 0;
const u16 = (b: Uint8Array, at: number) => u8(b, at) << 8 | u8(b, at + 1);
const u24 = (b: Uint8Array, at: number) => u8(b, at) << 16 | u16(b, at + 1);

// ---- Where the length and type fields are -------------------------------------------------------------

/** The fields of one input worth aiming at, and the byte spans worth flipping bits in (Huffman strings). */
interface Located {
  fields: Field[];
  spans: [number, number][];
}

const TLS_EXTENSIONS = [0x0000, 0x000a, 0x000b, 0x000d, 0x0010, 0x0015, 0x0023, 0x0029, 0x002b, 0x0a0a];

/** Record headers, the handshake header and every length of the ClientHello, wherever records split it. */
function tlsFields(input: Uint8Array): Field[] {
  const fields: Field[] = [];
  const where: number[] = []; // handshake message offset -> input offset
  for (let at = 0; at + 5 <= input.length; at += 5 + u16(input, at + 3)) {
    fields.push({ at, size: 1, values: [0x16, 0x17, 0x80] }, { at: at + 3, size: 2 });
    for (let i = at + 5; i < Math.min(at + 5 + u16(input, at + 3), input.length); i++) where.push(i);
  }
  const msg = Uint8Array.from(where, (i) => input[i]);
  const add = (at: number, size: Field["size"], values?: number[]) => {
    if (at + size <= where.length && where[at + size - 1] === where[at] + size - 1) {
      fields.push({ at: where[at], size, values });
    }
  };
  add(0, 1, [1, 2]);
  add(1, 3);
  let p = 4 + 2 + 32; // legacy_version, random
  add(p, 1);
  p += 1 + u8(msg, p); // session id
  add(p, 2);
  add(p + 2, 2, [0x0a0a, 0x00ff, 0x1301]); // the first cipher suite
  p += 2 + u16(msg, p);
  add(p, 1);
  p += 1 + u8(msg, p); // compression methods
  add(p, 2);
  const end = Math.min(msg.length, p + 2 + u16(msg, p));
  for (p += 2; p + 4 <= end; p += 4 + u16(msg, p + 2)) {
    const data = p + 4;
    add(p, 2, TLS_EXTENSIONS);
    add(p + 2, 2);
    switch (u16(msg, p)) {
      case 0x0000: // server_name: list, name type, name
        add(data, 2);
        add(data + 2, 1);
        add(data + 3, 2);
        break;
      case 0x0010: // ALPN: list, then each name's length
        add(data, 2);
        for (let q = data + 2; q < Math.min(end, data + 4 + u16(msg, p + 2)); q += 1 + u8(msg, q)) add(q, 1);
        break;
      case 0x000a:
      case 0x000d:
        add(data, 2);
        add(data + 2, 2, [0x0a0a, 0x0000]);
        break;
      case 0x000b:
      case 0x002b:
        add(data, 1);
        add(data + 1, 2, [0x0a0a, 0x0304, 0x0303, 0xfeff]);
    }
  }
  return fields;
}

/** The HPACK representations of a header block fragment: prefixes, integers, string lengths, Huffman spans. */
function hpackFields(b: Uint8Array, from: number, to: number, fields: Field[], huffman: [number, number][]) {
  const integer = (at: number, mask: number): [value: number, next: number] => {
    fields.push({ at, size: 1, mask });
    let value = u8(b, at) & mask;
    let p = at + 1;
    if (value === mask) {
      for (let shift = 0; p < to && shift < 35; shift += 7) {
        fields.push({ at: p, size: 1, values: [0x80, 0xff, 0x7f] });
        value += (b[p] & 0x7f) * 2 ** shift;
        if ((b[p++] & 0x80) === 0) break;
      }
    }
    return [value, p];
  };
  const string = (at: number): number => {
    fields.push({ at, size: 1, mask: 0x80 });
    const [len, start] = integer(at, 0x7f);
    if (u8(b, at) & 0x80 && len > 0) huffman.push([start, Math.min(to, start + len)]);
    return start + len;
  };
  for (let p = from; p < to;) {
    const first = b[p];
    fields.push({ at: p, size: 1, mask: 0xf0, values: [0x8, 0x4, 0x2, 0x1, 0x0] });
    const mask = first & 0x80 ? 0x7f : first & 0x40 ? 0x3f : first & 0x20 ? 0x1f : 0x0f;
    const [index, next] = integer(p, mask);
    p = next;
    if (first & 0xa0) continue; // indexed field or size update: no strings
    if (index === 0) p = string(p);
    p = string(p);
  }
}

const H2_TYPES = [0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xff];
const H2_FLAGS = [0x0, 0x1, 0x4, 0x5, 0x8, 0x20, 0x24, 0x25, 0x2c, 0xff];

/** Frame headers, SETTINGS, WINDOW_UPDATE and PRIORITY payloads, and the HPACK inside HEADERS/CONTINUATION. */
function h2Fields(input: Uint8Array): Located {
  const fields: Field[] = [];
  const huffman: [number, number][] = [];
  for (let p = 24; p + 9 <= input.length; p += 9 + u24(input, p)) {
    const [len, type, flags, payload] = [u24(input, p), input[p + 3], input[p + 4], p + 9];
    const end = Math.min(input.length, payload + len);
    fields.push(
      { at: p, size: 3 },
      { at: p + 3, size: 1, values: H2_TYPES },
      { at: p + 4, size: 1, values: H2_FLAGS },
      { at: p + 5, size: 4, values: [0, 1, 3, 0x80000001, 0x7fffffff] },
    );
    if (type === 0x4) {
      for (let q = payload; q + 6 <= end; q += 6) {
        fields.push({ at: q, size: 2, values: [0, 1, 2, 3, 4, 5, 6, 8, 9] }, { at: q + 2, size: 4 });
      }
    } else if (type === 0x8) {
      fields.push({ at: payload, size: 4, values: [0, 0x7fffffff, 0x80000000, 0xffffffff] });
    } else if (type === 0x2) {
      fields.push({ at: payload, size: 4, values: [0x80000000, 0, 0x7fffffff] }, {
        at: payload + 4,
        size: 1,
      });
    } else if (type === 0x1 || type === 0x9) {
      let from = payload;
      let to = end;
      if (type === 0x1 && flags & 0x8) {
        fields.push({ at: from, size: 1 });
        to -= u8(input, from++);
      }
      if (type === 0x1 && flags & 0x20) from += 5;
      hpackFields(input, from, Math.min(to, end), fields, huffman);
    }
  }
  return { fields, spans: huffman };
}

/** IP version, lengths, protocol and fragment fields; the TCP header; each option's kind, length and value. */
function synFields(input: Uint8Array): Field[] {
  const v6 = input[0] >> 4 === 6;
  const fields: Field[] = [{ at: 0, size: 1, mask: 0xf0, values: [4, 6, 0, 5, 15] }];
  if (v6) {
    fields.push(
      { at: 0, size: 4, mask: 0x0ff00000, values: [0, 1, 3] }, // traffic class (ECN bits)
      { at: 4, size: 2 },
      { at: 6, size: 1, values: [6, 0, 43, 44, 60, 17, 59] },
      { at: 7, size: 1, values: [0, 1, 64, 65, 255] },
    );
  } else {
    fields.push(
      { at: 0, size: 1, mask: 0x0f, values: [0, 4, 5, 6, 15] },
      { at: 1, size: 1, values: [0, 1, 2, 3] },
      { at: 2, size: 2 },
      { at: 4, size: 2, values: [0] },
      { at: 6, size: 2, values: [0, 0x4000, 0x2000, 0x8000, 0x0001, 0x1fff] },
      { at: 8, size: 1, values: [0, 1, 32, 33, 64, 65, 128, 129, 255] },
      { at: 9, size: 1, values: [6, 17, 1] },
    );
  }
  const tcp = v6 ? 40 : (input[0] & 0x0f) * 4;
  fields.push(
    { at: tcp + 4, size: 4, values: [0] },
    { at: tcp + 8, size: 4, values: [0, 1] },
    { at: tcp + 12, size: 1, mask: 0xf0, values: [0, 4, 5, 15] },
    { at: tcp + 12, size: 1, mask: 0x01 },
    { at: tcp + 13, size: 1, values: [0x02, 0x12, 0x03, 0x06, 0x42, 0xc2, 0x22, 0x0a, 0x2a] },
    { at: tcp + 14, size: 2, values: [0, 1460, 65535] },
    { at: tcp + 18, size: 2, values: [0, 1] },
  );
  const end = Math.min(input.length, tcp + (u8(input, tcp + 12) >> 4) * 4);
  for (let p = tcp + 20; p < end;) {
    const kind = input[p];
    fields.push({ at: p, size: 1, values: [0, 1, 2, 3, 4, 5, 8, 30, 255] });
    if (kind === 0) break;
    if (kind === 1) {
      p++;
      continue;
    }
    fields.push({ at: p + 1, size: 1, values: [0, 1, 2, 3, 4, 10, 34, 40] });
    if (kind === 2) fields.push({ at: p + 2, size: 2, values: [0, 99, 100, 1460, 65535] });
    if (kind === 3) fields.push({ at: p + 2, size: 1, values: [0, 14, 15, 255] });
    if (kind === 8) fields.push({ at: p + 2, size: 4, values: [0] }, { at: p + 6, size: 4, values: [0] });
    p += Math.max(2, u8(input, p + 1));
  }
  return fields;
}

// ---- Mutation --------------------------------------------------------------------------------------------

interface Corpus {
  seeds: Uint8Array[];
  located: Located[];
}

function corpus(seeds: Uint8Array[], locate: (b: Uint8Array) => Located): Corpus {
  return { seeds, located: seeds.map(locate) };
}

/** One mutant of a random seed: mostly aimed at fields, else generic, sometimes several stacked. */
function mutant(rng: Rng, corpus: Corpus): Uint8Array {
  const i = rng.below(corpus.seeds.length);
  const { fields, spans } = corpus.located[i];
  const once = (input: Uint8Array): Uint8Array => {
    switch (rng.below(10)) {
      case 0:
      case 1:
      case 2:
        return mutateField(rng, input, rng.pick(fields));
      case 3:
        return spans.length ? flipBits(rng, input, ...rng.pick(spans)) : flipBits(rng, input);
      case 4:
        return flipBits(rng, input);
      case 5:
        return setInterestingByte(rng, input);
      case 6:
        return rng.pick([deleteChunk, duplicateChunk, insertChunk])(rng, input);
      case 7:
        return splice(rng, input, rng.pick(corpus.seeds));
      case 8:
        return truncate(rng, input);
      default:
        return mutateField(rng, mutateField(rng, input, rng.pick(fields)), rng.pick(fields));
    }
  };
  let out = once(corpus.seeds[i]);
  // A quarter of the mutants stack two to four mutations (offsets may then be stale: that is fine).
  const extra = rng.below(4) === 0 ? 1 + rng.below(3) : 0;
  for (let n = 0; n < extra; n++) out = once(out);
  return out;
}

/** The hello with its handshake bytes re-cut into records of `size()` bytes, to reach the joining path. */
function reframe(record: Uint8Array, size: () => number): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let handshake = record.subarray(5); handshake.length > 0;) {
    const body = handshake.subarray(0, size());
    parts.push(Uint8Array.of(0x16, 0x03, 0x01, body.length >> 8, body.length & 0xff), body);
    handshake = handshake.subarray(body.length);
  }
  return concat(...parts);
}

/** Checks one input through an entry point; returns the fingerprint if there is one. */
type Check = (input: Uint8Array, deep: boolean) => string | undefined;

// ---- What every result must look like --------------------------------------------------------------------

const JA4_A = "t(?:13|12|11|10|s3|s2|d1|d2|d3|00)[di]\\d{4}[0-9A-Za-z]{2}";
const HEX_LIST = "(?:[0-9a-f]{4}(?:,[0-9a-f]{4})*)?";
const JA4 = new RegExp(`^${JA4_A}_[0-9a-f]{12}_[0-9a-f]{12}$`);
const JA4_RAW = new RegExp(`^${JA4_A}_${HEX_LIST}_${HEX_LIST}(?:_${HEX_LIST})?$`);
const DEC_LIST = "(?:\\d{1,5}(?:-\\d{1,5})*)?";
const JA3 = new RegExp(`^\\d{1,5},${DEC_LIST},${DEC_LIST},${DEC_LIST},${DEC_LIST}$`);
const AKAMAI = new RegExp(
  "^(?:\\d+:\\d+(?:;\\d+:\\d+)*)?\\|\\d+\\|(?:0|\\d+:[01]:\\d+:\\d+(?:,\\d+:[01]:\\d+:\\d+)*)\\|(?:[mpsa](?:,[mpsa])*)?$",
);
const OPTION = "(?:eol\\+\\d{1,5}|nop|mss|ws|sok|sack|ts|\\?\\d{1,3})";
const QUIRK =
  "(?:df|id\\+|id-|ecn|0\\+|flow|seq-|ack\\+|uptr\\+|urgf\\+|pushf\\+|ts1-|ts2\\+|opt\\+|exws|bad)";
const P0F = new RegExp(
  `^[46]:\\d{1,3}\\+(?:\\d{1,2}|\\?):\\d{1,2}:\\d{1,5}:(?:mss\\*|mtu\\*)?\\d{1,5},\\d{1,3}:` +
    `(?:${OPTION}(?:,${OPTION}){0,23})?:(?:${QUIRK}(?:,${QUIRK})*)?:[0+]$`,
);

function isParseError(e: unknown): e is ParseError {
  return typeof e === "string" && ERRORS.has(e);
}

function isGrease(v: number): boolean {
  return (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);
}

const sha12 = (s: string) =>
  s === "" ? "0".repeat(12) : createHash("sha256").update(s).digest("hex").slice(0, 12);

/** Field shapes of a TLS fingerprint, plus (when `deep`) the hashes recomputed from the raw strings. */
function checkTlsValue(fp: TlsFingerprint, input: Uint8Array, deep: boolean) {
  for (const [hashed, raw] of [[fp.ja4, fp.ja4_r], [fp.ja4_o, fp.ja4_or], [fp.ja4_s1, fp.ja4_s1r]]) {
    ok(JA4.test(hashed), `bad JA4 ${hashed}`);
    ok(JA4_RAW.test(raw) && raw.length <= 0xffff, `bad raw JA4 ${raw.slice(0, 200)}`);
    equal(raw.slice(0, 10), hashed.slice(0, 10));
    if (deep) {
      const [, b, ...c] = raw.split("_");
      equal(hashed.slice(11), `${sha12(b)}_${sha12(c.join("_"))}`);
    }
  }
  ok(JA3.test(fp.ja3) && fp.ja3.length <= 0xffff, `bad JA3 ${fp.ja3.slice(0, 200)}`);
  ok(/^[0-9a-f]{32}$/.test(fp.ja3_hash));
  if (deep) equal(fp.ja3_hash, createHash("md5").update(fp.ja3).digest("hex"));
  equal(fp.ja4[3] === "d", fp.sni !== undefined);
  ok(fp.sni === undefined || fp.sni.length < input.length);
  ok(fp.alpn.every((name) => name.length <= 255));
  ok(fp.versions.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffff && !isGrease(v)));
}

/** Both TLS entry points on one input; the JA4 when it fingerprinted. */
function checkTls(input: Uint8Array, deep: boolean): string | undefined {
  const needed = clientHelloNeeded(input);
  const fp = fingerprintClientHello(input);
  if (typeof needed === "number") {
    ok(Number.isInteger(needed) && needed >= 0, `needed ${needed}`);
    // A positive count is a lower bound that never points past the buffering cap.
    if (needed > 0) {
      ok(input.length + needed <= MAX_INPUT, `needs ${needed} more after ${input.length}`);
      deepStrictEqual(fp, { ok: false, error: "malformed" }); // the wrapper folds need-more into malformed
    }
  } else {
    ok(isParseError(needed), `needed ${needed}`);
    deepStrictEqual(fp, { ok: false, error: needed });
  }
  if (!fp.ok) {
    ok(isParseError(fp.error), `error ${fp.error}`);
    return undefined;
  }
  equal(needed, 0);
  checkTlsValue(fp.value, input, deep);
  if (deep) deepStrictEqual(fingerprintClientHello(concat(input, input.subarray(0, 100))), fp);
  return fp.value.ja4;
}

/** The Akamai string when it fingerprinted. */
function checkAkamai(input: Uint8Array, deep: boolean): string | undefined {
  const r = akamai(input);
  if (r === "need_more") return undefined;
  if (deep) deepStrictEqual(akamai(concat(input, input.subarray(0, 100))), r);
  if (!r.ok) {
    ok(isParseError(r.error), `error ${r.error}`);
    return undefined;
  }
  ok(AKAMAI.test(r.value) && r.value.length <= 0xffff, `bad Akamai string ${r.value.slice(0, 200)}`);
  return r.value;
}

/** The signature when it fingerprinted. */
function checkP0f(input: Uint8Array): string | undefined {
  const r = p0fSignature(input);
  if (!r.ok) {
    ok(isParseError(r.error), `error ${r.error}`);
    return undefined;
  }
  ok(P0F.test(r.value), `bad p0f signature ${r.value}`);
  equal(r.value[0], String(input[0] >> 4));
  return r.value;
}

// ---- The largest well-formed inputs ---------------------------------------------------------------------

const be = (n: number, size: number) =>
  Uint8Array.from({ length: size }, (_, i) => n / 2 ** (8 * (size - 1 - i)) & 0xff);

/**
 * A single-record ClientHello with `ciphers` suites (distinct, or all `suite`) and `extensions` distinct
 * empty extensions.
 */
function bigHello(ciphers: number, extensions: number, suite?: number): Uint8Array {
  const suites = concat(...Array.from({ length: ciphers }, (_, i) => be(suite ?? 0x1000 + i, 2)));
  const exts = concat(...Array.from({ length: extensions }, (_, i) => be((0x0100 + i) * 0x10000, 4)));
  const body = concat(be(0x0303, 2), new Uint8Array(32), Uint8Array.of(0), be(suites.length, 2), suites);
  const hello = concat(body, Uint8Array.of(1, 0), be(exts.length, 2), exts);
  const handshake = concat(Uint8Array.of(1), be(hello.length, 3), hello);
  return concat(Uint8Array.of(0x16, 0x03, 0x01), be(handshake.length, 2), handshake);
}

function frame(
  type: number,
  flags: number,
  stream: number,
  payload: Uint8Array = new Uint8Array(),
): Uint8Array {
  return concat(be(payload.length, 3), Uint8Array.of(type, flags), be(stream, 4), payload);
}

/** The preface, a SETTINGS frame, `middle` and a HEADERS frame holding `block` (END_HEADERS unless chained). */
function bigStream(middle: Uint8Array[], block: Uint8Array, endHeaders = true): Uint8Array {
  const settings = frame(0x4, 0, 0, concat(be(3, 2), be(100, 4)));
  return concat(PREFACE, settings, ...middle, frame(0x1, endHeaders ? 0x4 : 0, 1, block));
}

/** An HPACK integer with a `bits`-bit prefix, the prefix's other bits taken from `first` (RFC 7541 5.1). */
function hpackInteger(first: number, bits: number, value: number): number[] {
  const max = 2 ** bits - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  for (value -= max; value >= 128; value = Math.floor(value / 128)) out.push(value % 128 + 128);
  return [...out, value];
}

const times = (n: number, make: (i: number) => Uint8Array) => Array.from({ length: n }, (_, i) => make(i));

/**
 * Inputs near the 64 KiB cap whose structure is valid all the way, so that every byte is parsed, and the
 * outcome each must give: a fingerprint, or `over_limit` where one of its strings would not fit the
 * u16-length output framing.
 */
function largestInputs(): [name: string, input: Uint8Array, expected: "ok" | ParseError][] {
  // A literal field with a new name: 60,000 zero octets are 96,000 Huffman-coded '0's; the value is empty.
  const huffmanName = concat(
    Uint8Array.of(0x00, ...hpackInteger(0x80, 7, 60000)),
    new Uint8Array(60000),
    Uint8Array.of(0),
  );
  const priorities = times(4600, (i) => frame(0x2, 0, 2 * i + 3, new Uint8Array(5)));
  const continuations = concat(
    bigStream([], Uint8Array.of(0x82), false),
    ...times(7000, () => frame(0x9, 0, 1)),
    frame(0x9, 0x4, 1, Uint8Array.of(0x84)),
  );
  const settings = concat(
    PREFACE,
    frame(0x4, 0, 0, new Uint8Array(65400).fill(1)),
    frame(0x1, 0x4, 1, Uint8Array.of(0x82)),
  );
  return [
    ["TLS: 1,000 suites", bigHello(1000, 10), "ok"],
    ["TLS: 32,000 suites", bigHello(32000, 10), "over_limit"],
    // Three raw JA4 strings and JA3 just under 64 KiB each: the output outgrows its 256 KiB buffer.
    ["TLS: 13,100 suites, output past 256 KiB", bigHello(13100, 0, 5000), "ok"],
    ["TLS: 16,000 extensions", bigHello(2, 16000), "over_limit"],
    ["TLS: 7,000-byte hello in 1-byte records", reframe(bigHello(100, 1700), () => 1), "ok"],
    ["HTTP/2: 4,600 PRIORITY frames", bigStream(priorities, Uint8Array.of(0x82)), "ok"],
    ["HTTP/2: 10,900 SETTINGS", settings, "over_limit"],
    [
      "HTTP/2: 7,000 unknown frames",
      bigStream(times(7000, () => frame(0xa, 0, 0)), Uint8Array.of(0x82)),
      "ok",
    ],
    ["HTTP/2: 65,000 indexed fields", bigStream([], new Uint8Array(65000).fill(0x82)), "over_limit"],
    ["HTTP/2: 7,000 CONTINUATION frames", continuations, "ok"],
    ["HTTP/2: 60,000-octet Huffman name", bigStream([], huffmanName), "ok"],
  ];
}

// ---- The runs --------------------------------------------------------------------------------------------

interface Run {
  inputs: number;
  fingerprinted: number;
  /** Distinct fingerprints: many means the mutations change what the parsers compute, not only whether. */
  distinct: Set<string>;
  /** The slowest input, re-timed (best of 20) so that a GC pause or a busy machine does not pick it. */
  slowest: { ms: number; input: Uint8Array };
}

/**
 * Checks `count` inputs from `next`. A trap fails at once with the input in hex. Deep checks (hashes
 * recomputed, appended bytes ignored) run on every 64th input. The eight slowest inputs are re-timed at
 * the end to find the one that really costs the most work.
 */
function fuzz(count: number, next: (i: number) => Uint8Array, check: Check): Run {
  const run: Run = {
    inputs: 0,
    fingerprinted: 0,
    distinct: new Set(),
    slowest: { ms: -1, input: new Uint8Array() },
  };
  let slow: { ms: number; input: Uint8Array }[] = [];
  for (let i = 0; i < count; i++) {
    const input = next(i);
    const start = performance.now();
    let fingerprint: string | undefined;
    try {
      fingerprint = check(input, i % 64 === 0);
    } catch (e) {
      throw new Error(`input ${i} (${input.length} bytes): ${hex(input.subarray(0, 4096))}`, { cause: e });
    }
    const ms = performance.now() - start;
    equal(parserTraps(), 0, `a parser trapped on input ${i}: ${hex(input.subarray(0, 4096))}`);
    if (slow.length < 8 || ms > slow[7].ms) {
      slow = [...slow, { ms, input }].sort((a, b) => b.ms - a.ms).slice(0, 8);
    }
    run.inputs++;
    if (fingerprint !== undefined) {
      run.fingerprinted++;
      run.distinct.add(fingerprint);
    }
  }
  for (const { input } of slow) {
    let best = Infinity;
    for (let n = 0; n < 20; n++) {
      const start = performance.now();
      check(input, false);
      best = Math.min(best, performance.now() - start);
    }
    if (best > run.slowest.ms) run.slowest = { ms: best, input };
  }
  return run;
}

function report(name: string, seed: number, run: Run) {
  const share = (100 * run.fingerprinted / Math.max(1, run.inputs)).toFixed(1);
  const { ms, input } = run.slowest;
  console.log(
    `${name}: seed 0x${seed.toString(16)}, ${run.inputs} inputs, ${share}% fingerprinted ` +
      `(${run.distinct.size} distinct), slowest ` +
      `${ms.toFixed(3)} ms (${input.length} bytes, starts ${hex(input.subarray(0, 16))})`,
  );
}

/** Seeds, printed with each run so that a failure can be replayed. */
const SEEDS = { tls: 0x7a11, h2: 0x4832, syn: 0x5e17, truncations: 0x7c0de, random: 0xbadc0de };
/** Mutants per protocol; with the truncations and random buffers the total passes 1,000,000 inputs. */
const MUTANTS = { tls: 300_000, h2: 300_000, syn: 350_000 };

Deno.test("parsers survive fuzzing", async (t) => {
  const rng = new Rng(SEEDS.tls);
  const single = hellos.filter((h) => h.length === 5 + u16(h, 3));
  const reframed = single.filter((_, i) => i % 4 === 0)
    .map((h) => reframe(h, () => 1 + rng.below(rng.below(2) ? 16 : 400)));
  const tls = corpus([...hellos, ...reframed], (b) => ({ fields: tlsFields(b), spans: [] }));
  const h2 = corpus(streams, h2Fields);
  const syn = corpus(syns, (b) => ({ fields: synFields(b), spans: [] }));
  let inputs = 0;
  let calls = 0;
  /** Counts `n` inputs, each given to `entryPoints` entry points. */
  const tally = (n: number, entryPoints: number) => {
    inputs += n;
    calls += n * entryPoints;
  };

  await t.step("TLS ClientHello mutants", () => {
    const run = fuzz(MUTANTS.tls, () => mutant(rng, tls), checkTls);
    report("tls", SEEDS.tls, run);
    tally(run.inputs, 2);
    ok(run.fingerprinted > 0.25 * run.inputs, "most mutants are rejected before the hello is parsed");
    ok(run.distinct.size > 5000, "the mutants barely change the fingerprints");
  });

  await t.step("HTTP/2 preamble mutants", () => {
    const rng = new Rng(SEEDS.h2);
    const run = fuzz(MUTANTS.h2, () => mutant(rng, h2), checkAkamai);
    report("akamai", SEEDS.h2, run);
    tally(run.inputs, 1);
    ok(run.fingerprinted > 0.2 * run.inputs, "most mutants are rejected before the header block");
    ok(run.distinct.size > 1000, "the mutants barely change the fingerprints");
  });

  await t.step("TCP SYN mutants", () => {
    const rng = new Rng(SEEDS.syn);
    const run = fuzz(MUTANTS.syn, () => mutant(rng, syn), checkP0f);
    report("p0f", SEEDS.syn, run);
    tally(run.inputs, 1);
    ok(run.fingerprinted > 0.35 * run.inputs, "most mutants are rejected before the options");
    ok(run.distinct.size > 5000, "the mutants barely change the fingerprints");
  });

  await t.step("every truncation of every vector and of some mutants", () => {
    for (const hello of hellos) {
      for (let n = 0; n < hello.length; n++) {
        const needed = clientHelloNeeded(hello.subarray(0, n));
        ok(typeof needed === "number" && needed > 0, `prefix ${n} of ${hex(hello)}: ${needed}`);
      }
      tally(hello.length, 1);
    }
    for (const stream of streams) {
      for (let n = 0; n < stream.length; n++) equal(akamai(stream.subarray(0, n)), "need_more");
      tally(stream.length, 1);
    }
    // The capture may stop after the TCP header: shorter is truncated, longer gives the whole signature.
    for (const packet of syns) {
      const whole = p0fSignature(packet);
      const ip = packet[0] >> 4 === 6 ? 40 : (packet[0] & 0x0f) * 4;
      const headers = ip + (packet[ip + 12] >> 4) * 4;
      for (let n = 0; n < packet.length; n++) {
        deepStrictEqual(
          p0fSignature(packet.subarray(0, n)),
          n < headers ? { ok: false, error: "truncated" } : whole,
        );
      }
      tally(packet.length, 1);
    }
    const rng = new Rng(SEEDS.truncations);
    for (const [seeds, check] of [[tls, checkTls], [h2, checkAkamai], [syn, checkP0f]] as const) {
      const prefixes = Array.from({ length: 100 }, () => mutant(rng, seeds))
        .flatMap((m) => Array.from({ length: m.length + 1 }, (_, n) => m.subarray(0, n)));
      const run = fuzz(prefixes.length, (i) => prefixes[i], check);
      tally(run.inputs, check === checkTls ? 2 : 1);
    }
  });

  await t.step("the largest well-formed inputs", () => {
    const before = [fingerprintClientHello(hellos[0]), akamai(streams[0])];
    for (const [name, input, expected] of largestInputs()) {
      ok(input.length <= MAX_INPUT, name);
      const tls = name.startsWith("TLS");
      const run = fuzz(1, () => input, tls ? checkTls : checkAkamai);
      const r = tls ? fingerprintClientHello(input) : akamai(input);
      equal(r === "need_more" ? r : r.ok ? "ok" : r.error, expected, name);
      console.log(`${name}: ${input.length} bytes, ${expected}, ${run.slowest.ms.toFixed(3)} ms`);
      tally(1, tls ? 2 : 1);
    }
    // The wasm memory grew under the wrapper's cached view: ordinary inputs still read back the same.
    deepStrictEqual([fingerprintClientHello(hellos[0]), akamai(streams[0])], before);
    tally(2, 1);
  });

  await t.step("random buffers up to and past the cap", () => {
    const rng = new Rng(SEEDS.random);
    const size = () => Math.floor(2 ** (rng.next() / 2 ** 32 * 16)); // log-uniform, 1 B to 64 KiB
    const prefixes = [
      new Uint8Array(),
      Uint8Array.of(0x16, 0x03, 0x01),
      PREFACE,
      Uint8Array.of(0x45, 0x00),
      Uint8Array.of(0x60, 0x00, 0x00, 0x00),
    ];
    const next = () => concat(rng.pick(prefixes), rng.bytes(size())).slice(0, MAX_INPUT);
    const all = (b: Uint8Array, deep: boolean) =>
      [checkTls(b, deep), checkAkamai(b, deep), checkP0f(b)].find((f) => f !== undefined);
    const run = fuzz(4000, next, all);
    report("random", SEEDS.random, run);
    tally(run.inputs, 4);
    const over = { ok: false, error: "over_limit" };
    for (const n of [MAX_INPUT + 1, MAX_INPUT + 4096, 1 << 20]) {
      const b = concat(Uint8Array.of(0x16, 0x03, 0x01, 0xff, 0xff), rng.bytes(n - 5));
      equal(clientHelloNeeded(b), "over_limit");
      deepStrictEqual([fingerprintClientHello(b), akamai(b), p0fSignature(b)], [over, over, over]);
      tally(1, 4);
    }
  });

  console.log(`${inputs} inputs, ${calls} parser calls, ${parserTraps()} traps`);
  ok(inputs >= 1_000_000, `only ${inputs} inputs`);
  equal(parserTraps(), 0);
});
