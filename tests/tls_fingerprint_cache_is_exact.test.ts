/**
 * The wasm keeps memos of SHA-256 and MD5 results across calls (`wasm/src/memo.rs`), so that the hash
 * inputs a client repeats on every connection are not hashed again. An input is kept once it is seen
 * twice in a row, so every hello here is fingerprinted twice. The memos must never change a result: after
 * thousands of near-identical hellos have been kept (each memo has 1024 slots, so by pigeonhole many
 * different inputs of the same length take each one in turn), every vector still gives exactly what it
 * gave first, in another order, and every hash matches node:crypto's hash of the raw string it summarises.
 */
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import { fingerprintClientHello, type TlsFingerprint } from "../shared/fingerprint.ts";

interface Vector {
  client_hello_record_hex: string;
}

const VECTORS = new URL("../../shared/fingerprint-vectors/", import.meta.url);
const vectors: Vector[] = JSON.parse(Deno.readTextFileSync(new URL("ja4_vectors.json", VECTORS)));
const records = vectors.map((v) =>
  Uint8Array.from(v.client_hello_record_hex.match(/../g)!, (h) => parseInt(h, 16))
);

function fingerprint(record: Uint8Array): TlsFingerprint {
  const fp = fingerprintClientHello(record);
  if (!fp.ok) throw new Error(`no fingerprint: ${fp.error}`);
  return fp.value;
}

/** Fingerprints `record` twice in a row (the second call finds its inputs in the memos, or keeps them). */
function twice(record: Uint8Array): TlsFingerprint {
  const fp = fingerprint(record);
  deepStrictEqual(fingerprint(record), fp);
  return fp;
}

const sha256Part = (s: string) =>
  s === "" ? "000000000000" : createHash("sha256").update(s).digest("hex").slice(0, 12);

/** Every hash in `fp` is the hash of the raw string it summarises, computed outside the wasm. */
function checkHashes(fp: TlsFingerprint): void {
  for (const [hashed, raw] of [[fp.ja4, fp.ja4_r], [fp.ja4_o, fp.ja4_or], [fp.ja4_s1, fp.ja4_s1r]]) {
    const [a, b, ...c] = raw.split("_");
    equal(hashed, `${a}_${sha256Part(b)}_${sha256Part(c.join("_"))}`);
  }
  equal(fp.ja3_hash, createHash("md5").update(fp.ja3).digest("hex"));
}

const isGrease = (v: number) => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);

/**
 * Offsets of the first non-GREASE cipher and of an extension type the parser does not read, in a
 * hello whose first record holds the whole message; either may be undefined.
 */
function renumberable(record: Uint8Array): { cipher?: number; extension?: number } {
  const view = new DataView(record.buffer, record.byteOffset);
  if (view.getUint16(3) < 4 + (view.getUint32(5) & 0xffffff)) return {};
  let pos = 5 + 4 + 2 + 32;
  pos += 1 + record[pos];
  const ciphersEnd = pos + 2 + view.getUint16(pos);
  let cipher: number | undefined;
  for (let p = pos + 2; p < ciphersEnd && cipher === undefined; p += 2) {
    if (!isGrease(view.getUint16(p))) cipher = p;
  }
  pos = ciphersEnd;
  pos += 1 + record[pos];
  if (pos + 2 > record.length) return { cipher };
  const end = pos + 2 + view.getUint16(pos);
  const ignored = [0x0005, 0x0012, 0x0016, 0x0017, 0x001b, 0x0033, 0xff01];
  let extension: number | undefined;
  for (pos += 2; pos < end && extension === undefined; pos += 4 + view.getUint16(pos + 2)) {
    if (ignored.includes(view.getUint16(pos))) extension = pos;
  }
  return { cipher, extension };
}

/**
 * `count` copies of `record` with its first cipher and an unread extension renumbered: hash inputs of the
 * same length as the original's, differing in one value, so new to the memo.
 */
function mutants(record: Uint8Array, count: number, first: number): Uint8Array[] {
  const { cipher, extension } = renumberable(record);
  return Array.from({ length: cipher === undefined ? 0 : count }, (_, i) => {
    const out = record.slice();
    const view = new DataView(out.buffer);
    // No suite or extension of the vectors is numbered 0x4000-0x6fff; its GREASE values are nudged.
    const v = 0x4000 + ((first + i) % 0x3000);
    const value = isGrease(v) ? v + 1 : v;
    view.setUint16(cipher!, value);
    if (extension !== undefined) view.setUint16(extension, value);
    return out;
  });
}

Deno.test("every vector gives the same fingerprint again after the memos churned, in reverse order", () => {
  const first = records.map(twice);
  first.forEach(checkHashes);
  let churned = 0;
  for (let i = records.length - 1; i >= 0; i--) {
    for (const m of mutants(records[i], 32, 32 * i)) {
      checkHashes(twice(m));
      churned++;
    }
    deepStrictEqual(twice(records[i]), first[i], `vector ${i}`);
  }
  ok(churned >= 4 * 1024, `only ${churned} mutated hellos`);
});

Deno.test("a vector fingerprinted between its own mutants gets its own hashes, not theirs", () => {
  for (const [i, record] of records.entries()) {
    const own = twice(record);
    for (const m of mutants(record, 4, i)) {
      const fp = twice(m);
      checkHashes(fp);
      ok(fp.ja4 !== own.ja4 && fp.ja3_hash !== own.ja3_hash, `vector ${i}: mutant not new`);
      deepStrictEqual(twice(record), own, `vector ${i}`);
    }
  }
});

Deno.test("hash inputs longer than the memo keeps are hashed every time", () => {
  // 400 ciphers: parts b of JA4_r and JA4_or are 1999 characters, over the 1 KiB memo limit.
  const ciphers = Array.from({ length: 400 }, (_, i) => 0x4000 + i);
  const body = [
    0x03,
    0x03,
    ...new Array(32).fill(7),
    0,
    ...u16(ciphers.length * 2),
    ...ciphers.flatMap(u16),
    1,
    0,
  ];
  const handshake = [1, 0, ...u16(body.length), ...body];
  const record = Uint8Array.from([0x16, 0x03, 0x01, ...u16(handshake.length), ...handshake]);
  const fp = fingerprint(record);
  ok(fp.ja4_r.length > 2000);
  checkHashes(fp);
  deepStrictEqual(twice(record), fp);
});

function u16(v: number): number[] {
  return [v >> 8, v & 0xff];
}
