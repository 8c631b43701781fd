/**
 * Writes the seed corpora of the cargo-fuzz targets from the shared fingerprint vectors: one file per
 * vector in `wasm/fuzz/corpus/{tls,akamai,p0f}/`. The corpora are generated, never committed.
 *
 *     deno run --allow-read --allow-write wasm/fuzz/seed_corpus.ts [vectors-dir]
 *
 * @module
 */

const vectors = Deno.args[0]
  ? new URL(`file://${Deno.realPathSync(Deno.args[0])}/`)
  : new URL("../../../shared/fingerprint-vectors/", import.meta.url);
const corpus = new URL("corpus/", import.meta.url);

const targets: [target: string, file: string, field: string][] = [
  ["tls", "ja4_vectors.json", "client_hello_record_hex"],
  ["akamai", "h2_vectors.json", "client_to_server_hex"],
  ["p0f", "syn_vectors.json", "ip_packet_hex"],
];

for (const [target, file, field] of targets) {
  const entries: Record<string, string>[] = JSON.parse(Deno.readTextFileSync(new URL(file, vectors)));
  const dir = new URL(`${target}/`, corpus);
  Deno.mkdirSync(dir, { recursive: true });
  const unique = new Set(entries.map((e) => e[field]));
  let i = 0;
  for (const hex of unique) {
    const bytes = Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
    Deno.writeFileSync(new URL(`vector-${String(i++).padStart(3, "0")}`, dir), bytes);
  }
  console.log(`${target}: ${unique.size} seeds in ${dir.pathname}`);
}
