/**
 * Cost of one Akamai fingerprint through `shared/fingerprint.ts`, JS↔WASM crossing included (copying the
 * bytes in, the call, reading the field back).
 */
import { akamai } from "../shared/fingerprint.ts";

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

const VECTORS_URL = new URL("../../shared/fingerprint-vectors/h2_vectors.json", import.meta.url);
const vectors: { client: string; client_to_server_hex: string }[] = JSON.parse(
  Deno.readTextFileSync(VECTORS_URL),
);
function vector(client: string): Uint8Array {
  const v = vectors.find((v) => v.client.startsWith(client));
  if (!v) throw new Error(`no H2 vector for ${client}`);
  return fromHex(v.client_to_server_hex);
}

/**
 * SYNTHETIC, hand-built: Chrome's known SETTINGS (1:65536;2:0;4:6291456;6:262144) and connection
 * WINDOW_UPDATE (15663105), then a HEADERS frame with the PRIORITY flag (exclusive, weight 256) whose block
 * is :method GET, :authority www.example.com (literal with incremental indexing, Huffman-coded), :scheme
 * https and :path / (static-table indices). Not a capture of a real Chrome.
 */
const CHROME_LIKE = fromHex(
  "505249202a20485454502f322e300d0a0d0a534d0d0a0d0a" + // preface
    "000018040000000000" + "000100010000" + "000200000000" + "000400600000" + "000600040000" + // SETTINGS
    "000004080000000000" + "00ef0001" + // WINDOW_UPDATE 15663105
    "000016012500000001" + "80000000ff" + // HEADERS END_STREAM|END_HEADERS|PRIORITY, stream 1
    "82" + "418cf1e3c2e5f23a6ba0ab90f4ff" + "87" + "84",
);

const CURL = vector("curl 7.88.1 --http2-prior-knowledge");
const NGHTTP = vector("nghttp 1.52.0 (h2c)");
const PREFACE_ONLY = CHROME_LIKE.subarray(0, 24);

// Timing an error path by mistake would flatter the numbers.
for (const input of [CHROME_LIKE, CURL, NGHTTP]) {
  const result = akamai(input);
  if (result === "need_more" || !result.ok) throw new Error(`bench input fails: ${JSON.stringify(result)}`);
}

Deno.bench("akamai: Chrome-like preamble (synthetic)", { baseline: true }, () => {
  akamai(CHROME_LIKE);
});

Deno.bench("akamai: curl 7.88.1 h2c vector (Huffman literals)", () => {
  akamai(CURL);
});

Deno.bench("akamai: nghttp 1.52 h2c vector (5 PRIORITY frames)", () => {
  akamai(NGHTTP);
});

Deno.bench("akamai: preface only (need_more: copy in and call, no output to read)", () => {
  akamai(PREFACE_ONLY);
});
