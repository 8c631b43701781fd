/**
 * Cost of fingerprinting one ClientHello (all JA4 forms + JA3, hashes included) through the wasm,
 * JS↔wasm crossing included, and of the alternative of hashing in JS with `node:crypto`.
 *
 * The wasm keeps a memo of recent hash results, so each cost is measured three ways: the same client
 * again (every hash a memo hit, as for most real connections); Chrome with its extension order shuffled
 * per connection, as Chrome does (JA4_o's part c and JA3 miss, the rest hit); and a hello whose every hash
 * input is new each time (a cipher and an extension type renumbered per call: every hash misses).
 *
 * Run: deno bench -A bench/tls_fingerprint.bench.ts
 */
import { createHash } from "node:crypto";
import { clientHelloNeeded, fingerprintClientHello } from "../shared/fingerprint.ts";

interface Vector {
  source: string;
  client?: string;
  client_hello_record_hex: string;
}

const vectors: Vector[] = JSON.parse(
  Deno.readTextFileSync(new URL("../../shared/fingerprint-vectors/ja4_vectors.json", import.meta.url)),
);

function record(pick: (v: Vector) => boolean): Uint8Array {
  const v = vectors.find(pick);
  if (!v) throw new Error("benchmark vector missing");
  return Uint8Array.from(v.client_hello_record_hex.match(/../g)!, (h) => parseInt(h, 16));
}

/** Where the parts of a single-record hello are: the first cipher, and each extension's header. */
function layout(hello: Uint8Array): { ciphers: number; cipherBytes: number; extensions: number[] } {
  const view = new DataView(hello.buffer, hello.byteOffset);
  let pos = 5 + 4 + 2 + 32; // record header, handshake header, legacy_version, random
  pos += 1 + hello[pos]; // session id
  const cipherBytes = view.getUint16(pos);
  const ciphers = pos + 2;
  pos = ciphers + cipherBytes;
  pos += 1 + hello[pos]; // compression methods
  const end = pos + 2 + view.getUint16(pos);
  const extensions: number[] = [];
  for (pos += 2; pos < end; pos += 4 + view.getUint16(pos + 2)) extensions.push(pos);
  return { ciphers, cipherBytes, extensions };
}

const isGrease = (v: number) => (v & 0x0f0f) === 0x0a0a && v >> 8 === (v & 0xff);

/**
 * Chrome since version 124 adds an X25519MLKEM768 key share (1216 bytes), which takes its hello to about
 * 1.8 KB. This inserts one into a captured Chrome hello's key_share extension and fixes up every length.
 */
function withPostQuantumKeyShare(hello: Uint8Array): Uint8Array {
  const at = layout(hello).extensions.find((p) => hello[p] === 0x00 && hello[p + 1] === 0x33)!;
  const share = new Uint8Array(4 + 1216).fill(0x5a);
  share.set([0x11, 0xec, 0x04, 0xc0]);
  const insert = at + 6; // after the extension header and the client_shares length
  const out = new Uint8Array(hello.length + share.length);
  out.set(hello.subarray(0, insert));
  out.set(share, insert);
  out.set(hello.subarray(insert), insert + share.length);
  const grown = new DataView(out.buffer);
  const grow16 = (p: number) => grown.setUint16(p, grown.getUint16(p) + share.length);
  grow16(3); // record length
  grown.setUint32(5, (grown.getUint32(5) & 0xffffff) + share.length + 0x01000000); // type 1 + 24-bit length
  grow16(layout(hello).extensions[0] - 2); // extensions length
  grow16(at + 2);
  grow16(at + 4);
  return out;
}

/** Deterministic PRNG (mulberry32), so that every run shuffles alike. */
function random(seed: number): (below: number) => number {
  return (below) => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % below;
  };
}

/**
 * `count` copies of `hello` with the non-GREASE extensions in random orders, as Chrome sends them. More
 * orders than the memo has slots, so that an order's hashes are evicted before it comes round again.
 */
function shuffledExtensions(hello: Uint8Array, count: number): Uint8Array[] {
  const starts = layout(hello).extensions;
  const ends = [...starts.slice(1), hello.length];
  const blocks = starts.map((s, i) => hello.subarray(s, ends[i]));
  const movable = blocks.flatMap((b, i) => isGrease((b[0] << 8) | b[1]) ? [] : [i]);
  const next = random(124);
  return Array.from({ length: count }, () => {
    const order = blocks.slice();
    for (let i = movable.length - 1; i > 0; i--) {
      const j = next(i + 1);
      [order[movable[i]], order[movable[j]]] = [order[movable[j]], order[movable[i]]];
    }
    const out = hello.slice();
    let pos = starts[0];
    for (const b of order) {
      out.set(b, pos);
      pos += b.length;
    }
    return out;
  });
}

/**
 * A copy of `hello` that renumbers its first non-GREASE cipher and an extension the parser does not read
 * on every call, so that every hash input (both lists of every JA4 form, and JA3) is new each time.
 */
function freshEachCall(hello: Uint8Array): () => Uint8Array {
  const out = hello.slice();
  const view = new DataView(out.buffer);
  const { ciphers, cipherBytes, extensions } = layout(out);
  let cipher = ciphers;
  while (cipher < ciphers + cipherBytes - 2 && isGrease(view.getUint16(cipher))) cipher += 2;
  const ignored = [0x0005, 0x0012, 0x0016, 0x0017, 0x001b, 0x0033, 0xff01];
  const extension = extensions.find((p) => ignored.includes(view.getUint16(p)))!;
  let n = 0;
  return () => {
    let v;
    do v = 0x4000 + (n++ % 0x3000); while (isGrease(v));
    view.setUint16(cipher, v);
    view.setUint16(extension, v);
    return out;
  };
}

const chrome = record((v) => v.source.includes("chrome-cloudflare"));
const chromePq = withPostQuantumKeyShare(chrome);
const curl = record((v) => v.client?.startsWith("curl 7.88.1/OpenSSL 3.0.19 --http2") ?? false);

const fp = fingerprintClientHello(chromePq);
if (!fp.ok || fp.value.ja4 !== "t13d1516h2_8daaf6152771_e5627efa2ab1") {
  throw new Error(`post-quantum Chrome hello does not fingerprint as Chrome: ${JSON.stringify(fp)}`);
}

const shuffled = shuffledExtensions(chrome, 4096);
let turn = 0;
const nextShuffled = () => shuffled[turn++ & 4095];
const freshChrome = freshEachCall(chrome);
const freshCurl = freshEachCall(curl);

const cases: [string, () => Uint8Array][] = [
  [`Chrome + ML-KEM key share (${chromePq.length} B), same client again`, () => chromePq],
  [`Chrome (${chrome.length} B), same client again`, () => chrome],
  [`curl 7.88.1 (${curl.length} B), same client again`, () => curl],
  ["Chrome, extension order shuffled per connection", nextShuffled],
  ["Chrome, every hash input new (all miss)", freshChrome],
  ["curl, every hash input new (all miss)", freshCurl],
];

for (const [i, [name, hello]] of cases.entries()) {
  Deno.bench({
    name: `fingerprintClientHello: ${name}`,
    group: "end to end",
    baseline: i === 0,
    fn: () => void fingerprintClientHello(hello()),
  });
}

/**
 * The wasm entry point alone, called the way `shared/fingerprint.ts` calls it (copy in, one call) but
 * without decoding the output fields into strings: how the end-to-end time splits between the two.
 */
const wasm = new WebAssembly.Instance(
  new WebAssembly.Module(Deno.readFileSync(new URL("../wasm/huginn_fp.wasm", import.meta.url))),
  {},
).exports as {
  memory: WebAssembly.Memory;
  hfp_input_ptr(): number;
  hfp_tls_fingerprint(len: number): number;
};

function wasmOnly(hello: Uint8Array): number {
  new Uint8Array(wasm.memory.buffer, wasm.hfp_input_ptr(), hello.length).set(hello);
  return wasm.hfp_tls_fingerprint(hello.length);
}

for (const [i, [name, hello]] of cases.entries()) {
  Deno.bench({
    name: `wasm entry point only: ${name}`,
    group: "wasm only",
    baseline: i === 0,
    fn: () => void wasmOnly(hello()),
  });
}

Deno.bench({
  name: `clientHelloNeeded: ${cases[0][0]}`,
  fn: () => void clientHelloNeeded(chromePq),
});

/**
 * The alternative to hashing in Rust: the wasm returns the unhashed strings and JS hashes them with
 * `node:crypto` — the five SHA-256 inputs of JA4, JA4_o and JA4_s1 (parts b and c of the raw forms)
 * and JA3's MD5. The wasm would still parse and format everything, so this must beat the Rust hashing
 * (the wasm call minus its parsing and formatting) when the memo misses to be worth it; it does not even
 * beat the whole call.
 */
const chromeFp = fingerprintClientHello(chrome);
if (!chromeFp.ok) throw new Error("Chrome hello does not fingerprint");
const { ja4_r, ja4_or, ja4_s1r, ja3 } = chromeFp.value;
const sha256Inputs = [...bAndC(ja4_r), ...bAndC(ja4_or), bAndC(ja4_s1r)[1]];

/** Parts b and c of a raw JA4 (`a_b_c`, where c may itself contain `_`). */
function bAndC(raw: string): [string, string] {
  const first = raw.indexOf("_");
  const second = raw.indexOf("_", first + 1);
  return [raw.slice(first + 1, second), raw.slice(second + 1)];
}

Deno.bench({
  name: `wasm entry point, Rust SHA-256/MD5 included: ${cases[4][0]}`,
  group: "hashing",
  baseline: true,
  fn: () => void wasmOnly(freshChrome()),
});

Deno.bench({
  name: "node:crypto alone: 5 × SHA-256 + 1 × MD5 of the same strings",
  group: "hashing",
  fn: () => {
    for (const s of sha256Inputs) createHash("sha256").update(s).digest("hex").slice(0, 12);
    createHash("md5").update(ja3).digest("hex");
  },
});
