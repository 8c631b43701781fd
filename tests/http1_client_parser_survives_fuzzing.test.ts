/**
 * The pure response parsers under `Http1Pool` never throw on hostile bytes (they answer `invalid`), and
 * the chunked decoder gives the same body however the input is split across reads.
 */
import assert from "node:assert/strict";
import { ChunkedDecoder, findHeadEnd, parseResponseHead } from "../proxy/http1_parse.ts";
import { editBytes, Rng } from "./support/mutate.ts";

const enc = new TextEncoder();

/** HTTP/1.1 metacharacters and bytes at the edges of the value grammar. */
const SPECIAL = [13, 10, 32, 9, 0, 58, 44, 59, 0x80, 0xff, 48, 70];

/** Decodes a whole chunked body fed in pieces of `split()` bytes; a string result is the problem found. */
function decodeChunked(bytes: Uint8Array, split: () => number): Uint8Array | string {
  const decoder = new ChunkedDecoder();
  const body: number[] = [];
  let pending = new Uint8Array(0);
  let fed = 0;
  for (;;) {
    const step = decoder.decode(pending);
    if (step.kind === "invalid") return step.problem;
    if (step.kind === "end") return new Uint8Array(body);
    if (step.kind === "more") {
      if (fed === bytes.length) return "truncated";
      const n = Math.min(bytes.length - fed, split());
      pending = new Uint8Array([...pending, ...bytes.subarray(fed, fed + n)]);
      fed += n;
      continue;
    }
    if (step.kind === "data") body.push(...step.data);
    pending = pending.subarray(step.used);
  }
}

const HEADS = [
  "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-a: b\r\n\r\n",
  "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 5\r\n\r\n",
  "HTTP/1.0 304 Not Modified\r\nconnection: keep-alive\r\n\r\n",
  "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n",
];
const CHUNKED = "5;a=b\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\n";

Deno.test("mutated response heads are parsed or refused, never thrown", () => {
  const rng = new Rng(0x9e3779b9);
  const kinds = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const head = editBytes(rng, enc.encode(HEADS[i % HEADS.length]), SPECIAL);
    const end = findHeadEnd(head);
    if (end < 0) continue;
    const parsed = parseResponseHead(head.subarray(0, end), i % 3 === 0 ? "HEAD" : "GET");
    kinds.add(parsed.kind);
    if (parsed.kind === "head") {
      assert.ok(parsed.head.status >= 100 && parsed.head.status <= 999);
      for (const [name, value] of parsed.head.headers) new Headers([[name, value]]);
    }
  }
  assert.deepEqual([...kinds].sort(), ["head", "invalid"]);
});

Deno.test("mutated chunked bodies decode or are refused, never thrown", () => {
  const rng = new Rng(0x1234567);
  const outcomes = new Set<string>();
  for (let i = 0; i < 20_000; i++) {
    const result = decodeChunked(editBytes(rng, enc.encode(CHUNKED), SPECIAL), () => 1 + rng.below(16));
    outcomes.add(typeof result === "string" ? (result === "truncated" ? "truncated" : "invalid") : "body");
  }
  assert.deepEqual([...outcomes].sort(), ["body", "invalid", "truncated"]);
});

Deno.test("a chunked body decodes the same whether fed at once or byte by byte", () => {
  const whole = decodeChunked(enc.encode(CHUNKED), () => CHUNKED.length);
  const bytewise = decodeChunked(enc.encode(CHUNKED), () => 1);
  assert.equal(new TextDecoder().decode(whole as Uint8Array), "helloabcdefghijklmnopqrstuvwxyz");
  assert.deepEqual(bytewise, whole);
});
