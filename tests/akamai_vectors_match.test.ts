/**
 * The Akamai fingerprint of every shared H2 vector (real curl and nghttp captures) equals its expected
 * string, whether the bytes arrive all at once or one at a time, and whatever follows the first block.
 */
import { deepStrictEqual } from "node:assert/strict";
import { akamai } from "../shared/fingerprint.ts";

interface H2Vector {
  client: string;
  client_to_server_hex: string;
  akamai: string;
}

const VECTORS_URL = new URL("../../shared/fingerprint-vectors/h2_vectors.json", import.meta.url);
const vectors: H2Vector[] = JSON.parse(Deno.readTextFileSync(VECTORS_URL));

function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

Deno.test("the H2 vector file holds the five documented clients", () => {
  deepStrictEqual(vectors.length, 5);
});

for (const v of vectors) {
  const bytes = fromHex(v.client_to_server_hex);

  Deno.test(`${v.client}: matches the expected Akamai string`, () => {
    deepStrictEqual(akamai(bytes), { ok: true, value: v.akamai });
  });

  // Each vector ends where its first header block ends, so every shorter prefix is incomplete.
  Deno.test(`${v.client}: byte by byte, need_more until the header block is complete`, () => {
    for (let n = 0; n < bytes.length; n++) {
      deepStrictEqual(akamai(bytes.subarray(0, n)), "need_more", `prefix of ${n} bytes`);
    }
    deepStrictEqual(akamai(bytes), { ok: true, value: v.akamai });
  });

  Deno.test(`${v.client}: bytes after the first header block change nothing`, () => {
    const trailers = [
      // A second SETTINGS, a stream-0 WINDOW_UPDATE and a PRIORITY frame, which would all count before it.
      [0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 4, 8, 0, 0, 0, 0, 0, 0, 0, 0, 9],
      [0, 0, 5, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 7],
      // A bad SETTINGS length, a HEADERS frame with an invalid HPACK index, then an incomplete frame.
      [0, 0, 1, 4, 0, 0, 0, 0, 0, 0],
      [0, 0, 1, 1, 4, 0, 0, 0, 3, 0x80, 0xff, 0xff],
    ];
    for (const t of trailers) {
      const longer = new Uint8Array(bytes.length + t.length);
      longer.set(bytes);
      longer.set(t, bytes.length);
      deepStrictEqual(akamai(longer), { ok: true, value: v.akamai }, `trailer ${t}`);
    }
  });
}
