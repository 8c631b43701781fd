/**
 * Cost of fingerprinting one ClientHello (all JA4 forms + JA3, hashes included) through the wasm,
 * JS↔wasm crossing included, and of the alternative of hashing in JS with `node:crypto`.
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

/**
 * Chrome since version 124 adds an X25519MLKEM768 key share (1216 bytes), which takes its hello to about
 * 1.8 KB. This inserts one into a captured Chrome hello's key_share extension and fixes up every length.
 */
function withPostQuantumKeyShare(hello: Uint8Array): Uint8Array {
  const view = new DataView(hello.buffer);
  let pos = 5 + 4 + 2 + 32; // record header, handshake header, legacy_version, random
  pos += 1 + hello[pos]; // session id
  pos += 2 + view.getUint16(pos); // cipher suites
  pos += 1 + hello[pos]; // compression methods
  const extensions = pos;
  pos += 2;
  while (view.getUint16(pos) !== 0x0033) pos += 4 + view.getUint16(pos + 2);
  const share = new Uint8Array(4 + 1216).fill(0x5a);
  share.set([0x11, 0xec, 0x04, 0xc0]);
  const at = pos + 6; // after the extension header and the client_shares length
  const out = new Uint8Array(hello.length + share.length);
  out.set(hello.subarray(0, at));
  out.set(share, at);
  out.set(hello.subarray(at), at + share.length);
  const grown = new DataView(out.buffer);
  const grow16 = (p: number) => grown.setUint16(p, grown.getUint16(p) + share.length);
  grow16(3); // record length
  grown.setUint32(5, (grown.getUint32(5) & 0xffffff) + share.length + 0x01000000); // type 1 + 24-bit length
  grow16(extensions);
  grow16(pos + 2);
  grow16(pos + 4);
  return out;
}

const chrome = record((v) => v.source.includes("chrome-cloudflare"));
const chromePq = withPostQuantumKeyShare(chrome);
const curl = record((v) => v.client?.startsWith("curl 7.88.1/OpenSSL 3.0.19 --http2") ?? false);

const fp = fingerprintClientHello(chromePq);
if (!fp.ok || fp.value.ja4 !== "t13d1516h2_8daaf6152771_e5627efa2ab1") {
  throw new Error(`post-quantum Chrome hello does not fingerprint as Chrome: ${JSON.stringify(fp)}`);
}

const hellos: [string, Uint8Array][] = [
  [`Chrome + ML-KEM key share (${chromePq.length} B)`, chromePq],
  [`Chrome (${chrome.length} B)`, chrome],
  [`curl 7.88.1 (${curl.length} B)`, curl],
];

for (const [i, [name, hello]] of hellos.entries()) {
  Deno.bench({
    name: `fingerprintClientHello: ${name}`,
    group: "end to end",
    baseline: i === 0,
    fn: () => void fingerprintClientHello(hello),
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

for (const [i, [name, hello]] of hellos.entries()) {
  Deno.bench({
    name: `wasm entry point only: ${name}`,
    group: "wasm only",
    baseline: i === 0,
    fn: () => void wasmOnly(hello),
  });
}

Deno.bench({
  name: `clientHelloNeeded: ${hellos[0][0]}`,
  fn: () => void clientHelloNeeded(chromePq),
});

/**
 * The alternative to hashing in Rust: the wasm returns the unhashed strings and JS hashes them with
 * `node:crypto` — the five SHA-256 inputs of JA4, JA4_o and JA4_s1 (parts b and c of the raw forms)
 * and JA3's MD5. The wasm would still parse and format everything, so this must beat the Rust hashing
 * (the wasm call minus its parsing and formatting) to be worth it; it does not even beat the whole call.
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
  name: `wasm entry point, Rust SHA-256/MD5 included: ${hellos[1][0]}`,
  group: "hashing",
  baseline: true,
  fn: () => void wasmOnly(chrome),
});

Deno.bench({
  name: "node:crypto alone: 5 × SHA-256 + 1 × MD5 of the same strings",
  group: "hashing",
  fn: () => {
    for (const s of sha256Inputs) createHash("sha256").update(s).digest("hex").slice(0, 12);
    createHash("md5").update(ja3).digest("hex");
  },
});
