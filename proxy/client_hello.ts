/**
 * Reads a TLS connection's first bytes until the whole ClientHello is in hand, so that it can be
 * fingerprinted before the TLS engine consumes it. A ClientHello may span several records and TCP
 * segments (post-quantum key shares make browser hellos ~1.8 KB), hence the loop.
 *
 * @module
 */
import { clientHelloNeeded, MAX_INPUT } from "../shared/fingerprint.ts";

/** Why a connection's first bytes are refused; the label of `huginn_bad_client_input_total{kind}`. */
export type BadHello =
  | "garbage_client_hello"
  | "tls_alert"
  | "malformed_client_hello"
  | "truncated_client_hello"
  | "oversized_client_hello";

/** The outcome of reading the first ClientHello. */
export type HelloRead =
  /**
   * The bytes read so far, to be fed to the TLS engine first. `complete` is false for valid input that
   * the fingerprint does not cover (e.g. an SSLv2 hello): TLS decides what to do with it.
   */
  | { ok: true; bytes: Uint8Array; complete: boolean }
  | { ok: false; bad: BadHello }
  /** The client closed before sending anything: nothing to count. */
  | { ok: false; bad: undefined };

const TLS_ALERT = 0x15;

/**
 * Reads from `conn` until `clientHelloNeeded` says the first ClientHello is complete, at most
 * `MAX_INPUT` bytes. Never throws on client input; a read error (the caller closing the connection on a
 * timeout) propagates.
 */
export async function readClientHello(conn: Deno.Conn): Promise<HelloRead> {
  let buf = new Uint8Array(4096);
  let len = 0;
  // Each check re-parses from byte 0, so checking on every read would let a client that trickles tiny
  // records make the work quadratic; the parser's lower bound says when a check can next succeed.
  let due = 0;
  while (true) {
    if (len === buf.length) {
      const bigger = new Uint8Array(Math.min(buf.length * 2, MAX_INPUT));
      bigger.set(buf);
      buf = bigger;
    }
    const n = await conn.read(buf.subarray(len));
    if (n === null) return { ok: false, bad: len === 0 ? undefined : "truncated_client_hello" };
    len += n;
    if (len < due) continue;
    const bytes = buf.subarray(0, len);
    const needed = clientHelloNeeded(bytes);
    if (needed === 0) return { ok: true, bytes, complete: true };
    if (typeof needed === "number") {
      if (len + needed > MAX_INPUT) return { ok: false, bad: "oversized_client_hello" };
      due = len + needed;
      continue;
    }
    switch (needed) {
      case "unsupported":
        return { ok: true, bytes, complete: false };
      case "not_protocol":
        return { ok: false, bad: bytes[0] === TLS_ALERT ? "tls_alert" : "garbage_client_hello" };
      case "over_limit":
        return { ok: false, bad: "oversized_client_hello" };
      case "truncated":
        return { ok: false, bad: "truncated_client_hello" };
      case "malformed":
        return { ok: false, bad: "malformed_client_hello" };
    }
  }
}

/**
 * Where the records carrying the first ClientHello end in `bytes` (a complete hello, as `readClientHello`
 * returns it), or `bytes.length` when that cannot be told. Whatever follows came in the same reads and
 * must reach the TLS engine as a chunk of its own: the engine acts on the hello in a chunk and leaves the
 * rest until the next one arrives, so a fatal alert right behind the hello would wait for the timeout.
 */
export function clientHelloEnd(bytes: Uint8Array): number {
  if (bytes.length < 9) return bytes.length;
  const wanted = 4 + ((bytes[6] << 16) | (bytes[7] << 8) | bytes[8]);
  let payload = 0;
  for (let at = 0; at + 5 <= bytes.length && bytes[at] === 0x16;) {
    const length = (bytes[at + 3] << 8) | bytes[at + 4];
    at += 5 + length;
    payload += length;
    if (payload >= wanted) return Math.min(at, bytes.length);
  }
  return bytes.length;
}
