/**
 * The proxy's incremental HTTP/2 capture: the same Akamai value however the client's bytes are split,
 * and a client that trickles frames without ever sending its first request is given up on after
 * MAX_FRAMES_BEFORE_DECISION frames instead of being re-parsed forever.
 */
import assert from "node:assert/strict";
import { AkamaiCapture, MAX_FRAMES_BEFORE_DECISION } from "../proxy/h2_capture.ts";

const vectors: Array<{ client: string; client_to_server_hex: string; akamai: string }> = JSON.parse(
  Deno.readTextFileSync(new URL("../../shared/fingerprint-vectors/h2_vectors.json", import.meta.url)),
);
const hex = (h: string) => Uint8Array.from(h.match(/../g)!, (b) => parseInt(b, 16));
const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function feed(capture: AkamaiCapture, bytes: Uint8Array, chunk: number) {
  for (let i = 0; i < bytes.length && !capture.outcome.done; i += chunk) {
    capture.push(bytes.subarray(i, i + chunk));
  }
  return capture.outcome;
}

for (const v of vectors) {
  Deno.test(`${v.client}: the same value in one chunk, byte by byte and in 7-byte chunks`, () => {
    for (const chunk of [1 << 20, 1, 7]) {
      assert.deepEqual(feed(new AkamaiCapture(65536), hex(v.client_to_server_hex), chunk), {
        done: true,
        value: v.akamai,
      });
    }
  });
}

Deno.test("a client sending only empty unknown frames is given up on, not parsed until the cap", () => {
  const settings = [0, 0, 0, 4, 0, 0, 0, 0, 0];
  const unknown = [0, 0, 0, 0x0a, 0, 0, 0, 0, 0];
  const frames = Array.from({ length: MAX_FRAMES_BEFORE_DECISION + 10 }, () => unknown).flat();
  const bytes = new Uint8Array([...PREFACE, ...settings, ...frames]);
  const outcome = feed(new AkamaiCapture(65536), bytes, 1);
  assert.deepEqual(outcome, { done: true, value: undefined, error: "over_limit" });
});

Deno.test("bytes that are not an HTTP/2 preface are rejected as soon as they differ", () => {
  const capture = new AkamaiCapture(65536);
  assert.deepEqual(capture.push(new TextEncoder().encode("GET / HTTP/1.1\r\n")), {
    done: true,
    value: undefined,
    error: "not_protocol",
  });
});
