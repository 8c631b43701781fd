/**
 * Copies a connection's first cleartext client bytes until the Akamai HTTP/2 fingerprint is decided,
 * then stops copying. The fingerprint must be known before the first request reaches the handler, so
 * `push` runs synchronously on each chunk before that chunk is relayed.
 *
 * @module
 */
import { akamai, type Parsed, type ParseError } from "../shared/fingerprint.ts";

/** What the capture decided. */
export type AkamaiOutcome =
  | { done: false }
  | { done: true; value: string }
  /** `not_protocol` means the client does not speak HTTP/2 (plain HTTP/1.1): not an error. */
  | { done: true; value: undefined; error: ParseError };

const PREFACE_LENGTH = 24;
const FRAME_HEADER_LENGTH = 9;
/**
 * Real clients send a handful of frames before their first request (SETTINGS, WINDOW_UPDATE, a few
 * PRIORITY); a client still undecided after this many is not worth fingerprinting.
 */
export const MAX_FRAMES_BEFORE_DECISION = 256;

// Never written to: it only stands for "no buffer yet" or "buffer released", without allocating one.
const EMPTY = new Uint8Array(0);

/** Incremental Akamai capture for one connection. */
export class AkamaiCapture {
  #max: number;
  #buf = EMPTY;
  #len = 0;
  #outcome: AkamaiOutcome = { done: false };
  /**
   * The parser re-reads from the preface on every call, so it is only called when a frame has just
   * completed (a decision can only change then), and never for more than MAX_FRAMES_BEFORE_DECISION
   * frames: a client trickling tiny frames byte by byte cannot make the work quadratic.
   */
  #nextFrameEnd = PREFACE_LENGTH;
  #frames = 0;

  constructor(maxCapture: number) {
    this.#max = maxCapture;
  }

  get outcome(): AkamaiOutcome {
    return this.#outcome;
  }

  /** Feeds the next client chunk; returns the outcome once it is decided. */
  push(chunk: Uint8Array): AkamaiOutcome {
    if (this.#outcome.done) return this.#outcome;
    // Clients send the preface, SETTINGS and first HEADERS in one chunk: decided without copying it into
    // a buffer, whose allocation alone costs more than the parse.
    const parsed = this.#len === 0 && chunk.length <= this.#max ? akamai(chunk) : undefined;
    if (parsed !== undefined && parsed !== "need_more") return this.#decide(parsed);
    const take = Math.min(chunk.length, this.#max - this.#len);
    if (this.#len + take > this.#buf.length) {
      const bigger = new Uint8Array(Math.min(this.#max, Math.max(4096, 2 * (this.#len + take))));
      bigger.set(this.#buf.subarray(0, this.#len));
      this.#buf = bigger;
    }
    this.#buf.set(chunk.subarray(0, take), this.#len);
    const before = this.#len;
    this.#len += take;
    // Counts the frames even when this chunk was parsed above already.
    const worth = this.#worthParsing(before);
    const r = worth && parsed === undefined ? akamai(this.#buf.subarray(0, this.#len)) : "need_more";
    if (r !== "need_more") return this.#decide(r);
    if (this.#len === this.#max || this.#frames > MAX_FRAMES_BEFORE_DECISION) {
      return this.#decide({ ok: false, error: "over_limit" });
    }
    return this.#outcome;
  }

  #decide(r: Parsed<string>): AkamaiOutcome {
    this.#outcome = r.ok ? { done: true, value: r.value } : { done: true, value: undefined, error: r.error };
    this.#buf = EMPTY;
    return this.#outcome;
  }

  /**
   * Whether the parser could decide something new now: while the preface is incomplete its check is
   * O(1); after that, only when at least one more frame has completed. Also counts frames.
   */
  #worthParsing(before: number): boolean {
    let completed = before < PREFACE_LENGTH;
    while (this.#len >= this.#nextFrameEnd + FRAME_HEADER_LENGTH) {
      const at = this.#nextFrameEnd;
      const length = (this.#buf[at] << 16) | (this.#buf[at + 1] << 8) | this.#buf[at + 2];
      if (this.#len < at + FRAME_HEADER_LENGTH + length) break;
      this.#nextFrameEnd = at + FRAME_HEADER_LENGTH + length;
      this.#frames++;
      completed = true;
    }
    return completed;
  }
}
