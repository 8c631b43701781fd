/**
 * Every ClientHello of `ja4_vectors.json` gives the stored JA4, JA4_r, JA4_o and JA4_or through the real
 * wasm, with the README's documented deviations applied; JA4_s1/JA4_s1r and JA3 follow the spec's
 * derivation rules and worked examples; and buffering (`clientHelloNeeded`) works however the bytes are
 * split into TCP segments or TLS records.
 */
import { equal, ok } from "node:assert/strict";
import { createHash } from "node:crypto";
import { clientHelloNeeded, fingerprintClientHello, type TlsFingerprint } from "../shared/fingerprint.ts";

interface Vector {
  source: string;
  client?: string;
  client_hello_record_hex: string;
  expected: { ja4: string; ja4_r: string; ja4_o: string; ja4_ro: string };
  ja4_spec_alpn_rule: string | null;
}

const VECTORS = new URL("../../shared/fingerprint-vectors/", import.meta.url);
const vectors: Vector[] = JSON.parse(Deno.readTextFileSync(new URL("ja4_vectors.json", VECTORS)));

function bytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function sha256Part(s: string): string {
  return s === "" ? "000000000000" : createHash("sha256").update(s).digest("hex").slice(0, 12);
}

function fingerprint(record: Uint8Array): TlsFingerprint {
  const fp = fingerprintClientHello(record);
  if (!fp.ok) throw new Error(`no fingerprint: ${fp.error}`);
  return fp.value;
}

/** `a_b_c` split in three; c may itself contain `_` (before the signature algorithms). */
function parts(ja4: string): [string, string, string] {
  const [a, b, ...c] = ja4.split("_");
  return [a, b, c.join("_")];
}

/** Deterministic PRNG (mulberry32), so that a failure can be replayed. */
function random(seed: number): (below: number) => number {
  return (below) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (((t ^ (t >>> 14)) >>> 0) % below);
  };
}

/** The same handshake bytes cut into records of the given body sizes (the last takes the rest). */
function reframe(record: Uint8Array, sizes: () => number): Uint8Array {
  const out: number[] = [];
  let handshake = record.subarray(5);
  while (handshake.length > 0) {
    const body = handshake.subarray(0, Math.max(1, sizes()));
    out.push(0x16, 0x03, 0x01, body.length >> 8, body.length & 0xff, ...body);
    handshake = handshake.subarray(body.length);
  }
  return Uint8Array.from(out);
}

/**
 * The stored values with the README's deviations applied: the spec's ALPN rule where
 * `ja4_spec_alpn_rule` is set (part a is shared by all four forms), and JA4_o of SNI-only hellos hashing
 * `0000` instead of printing zeros.
 */
function expected(v: Vector): Vector["expected"] {
  const e = { ...v.expected };
  if (v.ja4_spec_alpn_rule) {
    const a = v.ja4_spec_alpn_rule.slice(0, 10);
    for (const k of ["ja4", "ja4_r", "ja4_o", "ja4_ro"] as const) e[k] = a + e[k].slice(10);
    equal(e.ja4, v.ja4_spec_alpn_rule);
  }
  if (parts(e.ja4_ro)[2] === "0000") {
    const [a, b, c] = parts(e.ja4_o);
    equal(c, "000000000000");
    e.ja4_o = `${a}_${b}_9af15b336e6a`;
  }
  return e;
}

/** JA4_s1 and JA4_s1r derived from a verified JA4_r as spec 2.6 describes. */
function stable(ja4_r: string): { ja4_s1: string; ja4_s1r: string } {
  const [a, b, c] = parts(ja4_r);
  const [extensions, sigalgs] = c.split("_");
  const all = extensions === "" ? [] : extensions.split(",");
  const kept = all.filter((t) => !["0023", "0029", "0015"].includes(t));
  const count = Math.min(99, Number(a.slice(6, 8)) - (all.length - kept.length));
  const stableA = a.slice(0, 6) + String(count).padStart(2, "0") + a.slice(8);
  const stableC = kept.join(",") + (sigalgs === undefined ? "" : `_${sigalgs}`);
  return {
    ja4_s1: `${stableA}_${sha256Part(b)}_${sha256Part(stableC)}`,
    ja4_s1r: `${stableA}_${b}_${stableC}`,
  };
}

Deno.test("every vector gives the stored JA4, JA4_r, JA4_o and JA4_or, with the documented deviations", () => {
  equal(vectors.length, 154);
  let alpnDeviations = 0;
  let sniOnly = 0;
  for (const [i, v] of vectors.entries()) {
    const got = fingerprint(bytes(v.client_hello_record_hex));
    const want = expected(v);
    const where = `vector ${i} (${v.source})`;
    equal(got.ja4, want.ja4, where);
    equal(got.ja4_r, want.ja4_r, where);
    equal(got.ja4_o, want.ja4_o, where);
    equal(got.ja4_or, want.ja4_ro, where);
    equal(got.sni !== undefined, got.ja4[3] === "d", where);
    if (v.ja4_spec_alpn_rule) alpnDeviations++;
    if (parts(v.expected.ja4_ro)[2] === "0000") sniOnly++;
  }
  // The README lists exactly one ALPN deviation and four SNI-only JA4_o entries.
  equal(alpnDeviations, 1);
  equal(sniOnly, 4);
});

Deno.test("JA4_s1 and JA4_s1r drop ticket, PSK and padding before counting and hashing (spec 2.6)", () => {
  let unchanged = 0;
  for (const [i, v] of vectors.entries()) {
    const got = fingerprint(bytes(v.client_hello_record_hex));
    const want = stable(got.ja4_r);
    equal(got.ja4_s1, want.ja4_s1, `vector ${i}`);
    equal(got.ja4_s1r, want.ja4_s1r, `vector ${i}`);
    if (!/(^|,)(0023|0029|0015)(,|_|$)/.test(parts(got.ja4_r)[2])) {
      equal(got.ja4_s1, got.ja4, `vector ${i}`);
      equal(got.ja4_s1r, got.ja4_r, `vector ${i}`);
      unchanged++;
    }
  }
  ok(
    unchanged > 0 && unchanged < vectors.length,
    "the vectors cover hellos with and without the three types",
  );
});

Deno.test("curl 7.88.1 gives the spec's JA4_s1 (2.6) and JA3 (3) worked examples", () => {
  const curl = vectors.find((v) => v.client?.startsWith("curl 7.88.1/OpenSSL 3.0.19 --http2"));
  ok(curl);
  const got = fingerprint(bytes(curl.client_hello_record_hex));
  equal(got.ja4, "t13d3112h2_e8f1e7e78f70_b26ce05bbdd6");
  equal(got.ja4_s1, "t13d3111h2_e8f1e7e78f70_375ca2c5e164");
  equal(
    got.ja3,
    "771,4866-4867-4865-49196-49200-159-52393-52392-52394-49195-49199-158-49188-49192-107-49187-49191-103-" +
      "49162-49172-57-49161-49171-51-157-156-61-60-53-47-255,0-11-10-16-22-23-49-13-43-45-51-21," +
      "29-23-30-25-24-256-257-258-259-260,0-1-2",
  );
  equal(got.ja3_hash, "0149f47eabf9a20d0893e2a44e5a6323");
  equal(got.sni, "localhost");
  equal(got.alpn.join(","), "h2,http/1.1");
  equal(got.versions.map((v) => v.toString(16)).join(","), "304,303,302,301");
});

Deno.test("JA3 hash is the MD5 of the JA3 string for every vector", () => {
  for (const v of vectors) {
    const got = fingerprint(bytes(v.client_hello_record_hex));
    equal(got.ja3_hash, createHash("md5").update(got.ja3).digest("hex"));
  }
});

Deno.test("clientHelloNeeded asks for more on every proper prefix and never overshoots", () => {
  for (const [i, v] of vectors.entries()) {
    const record = bytes(v.client_hello_record_hex);
    for (let n = 0; n < record.length; n++) {
      const needed = clientHelloNeeded(record.subarray(0, n));
      ok(typeof needed === "number" && needed > 0, `vector ${i}, ${n} bytes: ${needed}`);
      ok(n + needed <= record.length, `vector ${i}, ${n} bytes: asks for ${needed}, past the hello`);
    }
    equal(clientHelloNeeded(record), 0, `vector ${i}`);
  }
});

Deno.test("a hello arriving in random-size segments completes exactly at its last byte", () => {
  const next = random(0x6a34);
  for (const [i, v] of vectors.entries()) {
    const record = bytes(v.client_hello_record_hex);
    let have = 0;
    while (have < record.length) {
      have = Math.min(record.length, have + 1 + next(200));
      const needed = clientHelloNeeded(record.subarray(0, have));
      equal(needed === 0, have === record.length, `vector ${i} at ${have} bytes: ${needed}`);
    }
  }
});

Deno.test("a hello spread over several records gives the same fingerprint", () => {
  const next = random(0x7e1d);
  for (const [i, v] of vectors.entries()) {
    const record = bytes(v.client_hello_record_hex);
    const want = fingerprint(record);
    for (const split of [reframe(record, () => 1), reframe(record, () => 1 + next(300))]) {
      for (let n = 0; n < split.length; n += 1 + next(40)) {
        const needed = clientHelloNeeded(split.subarray(0, n));
        ok(typeof needed === "number" && needed > 0 && n + needed <= split.length, `vector ${i} at ${n}`);
      }
      equal(clientHelloNeeded(split), 0, `vector ${i}`);
      equal(JSON.stringify(fingerprint(split)), JSON.stringify(want), `vector ${i}`);
    }
  }
});

Deno.test("bytes after the hello (the next records) change nothing", () => {
  const changeCipherSpec = [0x14, 0x03, 0x03, 0x00, 0x01, 0x01];
  const applicationData = [0x17, 0x03, 0x03, 0x00, 0x04, 1, 2, 3, 4];
  for (const [i, v] of vectors.entries()) {
    const record = bytes(v.client_hello_record_hex);
    const want = JSON.stringify(fingerprint(record));
    for (const tail of [changeCipherSpec, [...changeCipherSpec, ...applicationData], [0x16, 0x03]]) {
      const longer = Uint8Array.from([...record, ...tail]);
      equal(clientHelloNeeded(longer), 0, `vector ${i}`);
      equal(JSON.stringify(fingerprint(longer)), want, `vector ${i}`);
    }
  }
});
