/**
 * Copies a connection's first cleartext client bytes until the Akamai HTTP/2 fingerprint is decided,
 * then stops copying. The fingerprint must be known before the first request reaches the handler, so
 * `push` runs synchronously on each chunk before that chunk is relayed.
 *
 * @module
 */
import { akamai, type ParseError } from "../shared/fingerprint.ts";

/** What the capture decided. */
export type AkamaiOutcome =
  | { done: false }
  | { done: true; value: string }
  /** `not_protocol` means the client does not speak HTTP/2 (plain HTTP/1.1): not an error. */
  | { done: true; value: undefined; error: ParseError };

/** Incremental Akamai capture for one connection. */
export class AkamaiCapture {
  #max: number;
  #buf = new Uint8Array(0);
  #len = 0;
  #outcome: AkamaiOutcome = { done: false };

  constructor(maxCapture: number) {
    this.#max = maxCapture;
  }

  get outcome(): AkamaiOutcome {
    return this.#outcome;
  }

  /** Feeds the next client chunk; returns the outcome once it is decided. */
  push(chunk: Uint8Array): AkamaiOutcome {
    if (this.#outcome.done) return this.#outcome;
    const take = Math.min(chunk.length, this.#max - this.#len);
    if (this.#len + take > this.#buf.length) {
      const bigger = new Uint8Array(Math.min(this.#max, Math.max(4096, 2 * (this.#len + take))));
      bigger.set(this.#buf.subarray(0, this.#len));
      this.#buf = bigger;
    }
    this.#buf.set(chunk.subarray(0, take), this.#len);
    this.#len += take;
    const r = akamai(this.#buf.subarray(0, this.#len));
    if (r !== "need_more") {
      this.#outcome = r.ok
        ? { done: true, value: r.value }
        : { done: true, value: undefined, error: r.error };
    } else if (this.#len === this.#max) {
      this.#outcome = { done: true, value: undefined, error: "over_limit" };
    }
    if (this.#outcome.done) this.#buf = new Uint8Array(0);
    return this.#outcome;
  }
}
