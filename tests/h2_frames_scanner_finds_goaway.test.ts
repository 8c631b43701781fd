/**
 * The scanner of the server-to-client HTTP/2 stream reports every GOAWAY's error code however the bytes
 * are split, skips payloads by their length (a DATA frame full of GOAWAY look-alikes reports none), and
 * stops for good on a stream that is not HTTP/2.
 */
import assert from "node:assert/strict";
import { GoawayScanner, h2ErrorName } from "../proxy/h2_frames.ts";
import { concat, FLAG, FRAME, h2Frame, h2Settings } from "./support/attack.ts";

/** A GOAWAY frame: last stream id, error code, then debug data. */
function goaway(lastStream: number, code: number, debug = ""): Uint8Array {
  const fields = new Uint8Array(8);
  new DataView(fields.buffer).setUint32(0, lastStream);
  new DataView(fields.buffer).setUint32(4, code);
  return h2Frame(FRAME.GOAWAY, 0, 0, concat(fields, debug));
}

/** The error codes the scanner reports for `chunks`, in order. */
function scan(chunks: Uint8Array[]): number[] {
  const codes: number[] = [];
  const scanner = new GoawayScanner((code) => codes.push(code));
  for (const chunk of chunks) scanner.push(chunk);
  return codes;
}

/** What hyper sends a client it refuses: its preface, answers, then GOAWAYs. */
const SERVER_STREAM = concat(
  h2Settings([[0x3, 100], [0x4, 1 << 20]]),
  h2Frame(FRAME.SETTINGS, FLAG.ACK, 0),
  h2Frame(FRAME.WINDOW_UPDATE, 0, 0, [0, 0xf, 0, 1]),
  h2Frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, [0x88]),
  h2Frame(FRAME.DATA, FLAG.END_STREAM, 1, new Uint8Array(300).fill(7)),
  h2Frame(FRAME.PING, FLAG.ACK, 0, [1, 2, 3, 4, 5, 6, 7, 8]),
  goaway(1, 0xb, "too_many_resets"),
  goaway(1, 0x0),
);

Deno.test("several frames in one chunk: each GOAWAY is reported in order", () => {
  assert.deepEqual(scan([SERVER_STREAM]), [0xb, 0x0]);
});

Deno.test("split at every byte offset, and byte by byte: the same GOAWAYs", () => {
  for (let at = 0; at <= SERVER_STREAM.length; at++) {
    const chunks = [SERVER_STREAM.subarray(0, at), SERVER_STREAM.subarray(at)];
    assert.deepEqual(scan(chunks), [0xb, 0x0], `split at ${at}`);
  }
  const bytes = Array.from(SERVER_STREAM, (_, i) => SERVER_STREAM.subarray(i, i + 1));
  assert.deepEqual(scan(bytes), [0xb, 0x0]);
});

Deno.test("a maximum-size DATA frame full of GOAWAY look-alikes is skipped by its length", () => {
  const lookalike = goaway(0, 0x1);
  const payload = new Uint8Array((1 << 24) - 1);
  for (let at = 0; at + lookalike.length <= payload.length; at += lookalike.length) {
    payload.set(lookalike, at);
  }
  const stream = concat(h2Settings(), h2Frame(FRAME.DATA, 0, 1, payload), goaway(1, 0x9));
  const chunks = [];
  for (let at = 0; at < stream.length; at += 16 * 1024) chunks.push(stream.subarray(at, at + 16 * 1024));
  assert.deepEqual(scan(chunks), [0x9]);
  assert.deepEqual(scan([stream]), [0x9]);
});

Deno.test("error codes are read unsigned and named as RFC 9113 §7 names them", () => {
  assert.deepEqual(scan([h2Settings(), goaway(0, 0xffffffff), goaway(0, 0xd), goaway(0, 0xe)]), [
    0xffffffff,
    0xd,
    0xe,
  ]);
  assert.equal(h2ErrorName(0x0), "NO_ERROR");
  assert.equal(h2ErrorName(0x1), "PROTOCOL_ERROR");
  assert.equal(h2ErrorName(0x9), "COMPRESSION_ERROR");
  assert.equal(h2ErrorName(0xb), "ENHANCE_YOUR_CALM");
  assert.equal(h2ErrorName(0xd), "HTTP_1_1_REQUIRED");
  assert.equal(h2ErrorName(0xe), "UNKNOWN");
  assert.equal(h2ErrorName(0xffffffff), "UNKNOWN");
});

Deno.test("a stream that is not HTTP/2 stops the scanner for good, without throwing", () => {
  const later = goaway(0, 0x1);
  const notHttp2: Record<string, Uint8Array> = {
    "an HTTP/1.1 response": new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"),
    "a GOAWAY before SETTINGS": goaway(0, 0xb),
    "a SETTINGS acknowledgement first": h2Frame(FRAME.SETTINGS, FLAG.ACK, 0),
    "SETTINGS on a stream": h2Frame(FRAME.SETTINGS, 0, 1),
    "SETTINGS of 5 bytes": h2Frame(FRAME.SETTINGS, 0, 0, [0, 3, 0, 0, 1]),
    "a GOAWAY on stream 1": concat(h2Settings(), h2Frame(FRAME.GOAWAY, 0, 1, new Uint8Array(8))),
    "a GOAWAY of 4 bytes": concat(h2Settings(), h2Frame(FRAME.GOAWAY, 0, 0, [0, 0, 0, 1])),
    "random bytes": Uint8Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24),
  };
  for (const [what, bytes] of Object.entries(notHttp2)) {
    assert.deepEqual(scan([bytes, later, h2Settings(), later]), [], what);
  }
  assert.deepEqual(scan([]), []);
  assert.deepEqual(scan([new Uint8Array(0), h2Settings().subarray(0, 4)]), []);
});

Deno.test("stop() from the callback: a second GOAWAY in the same chunk is not reported", () => {
  const codes: number[] = [];
  const scanner = new GoawayScanner((code) => {
    codes.push(code);
    scanner.stop();
  });
  scanner.push(SERVER_STREAM);
  scanner.push(goaway(0, 0x2));
  assert.deepEqual(codes, [0xb]);
});
