/**
 * Finds the GOAWAY frames in the bytes the internal HTTP/2 server sends a client, so that the proxy can
 * count the connections the server refuses (rapid reset, CONTINUATION flood, bad HPACK, ...) without
 * parsing HTTP/2 itself. The server is trusted to frame correctly; the scanner only follows frame
 * lengths, and gives up on anything that does not look like HTTP/2 rather than guess.
 *
 * @module
 */

/** RFC 9113 §7 error code names, indexed by code. */
export const H2_ERROR_CODES = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
] as const;

/** An RFC 9113 error code name, or `UNKNOWN` for a code the RFC does not define. */
export type H2ErrorName = typeof H2_ERROR_CODES[number] | "UNKNOWN";

/** The RFC 9113 §7 name of `code`. */
export function h2ErrorName(code: number): H2ErrorName {
  return H2_ERROR_CODES[code] ?? "UNKNOWN";
}

const FRAME_HEADER_LENGTH = 9;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const ACK = 0x1;
/** Last-Stream-ID and Error Code (RFC 9113 §6.8); the debug data after them is skipped. */
const GOAWAY_FIXED_LENGTH = 8;

/**
 * Incremental scanner of a server-to-client HTTP/2 byte stream. `push` takes chunks split anywhere (in
 * a frame header, in a GOAWAY's fields) and calls `onGoaway` with the error code of each GOAWAY. It
 * keeps at most 9 bytes and skips payloads by their length without reading them, so a chunk costs a few
 * operations per frame it holds, whatever its size. It never throws: a stream that does not open with
 * the server's SETTINGS (RFC 9113 §3.4), or a GOAWAY not on stream 0 or shorter than its fixed fields,
 * is not HTTP/2 as the scanner understands it, and it stops for good.
 */
export class GoawayScanner {
  readonly #onGoaway: (errorCode: number) => void;
  /** The frame header being read, then a GOAWAY's fixed fields. */
  readonly #bytes = new Uint8Array(FRAME_HEADER_LENGTH);
  #have = 0;
  /** Bytes still to fill `#bytes` with: a frame header's 9 or a GOAWAY's 8. */
  #need = FRAME_HEADER_LENGTH;
  /** Payload bytes still to skip. */
  #skip = 0;
  /** Debug data to skip once a GOAWAY's fixed fields are read; -1 while reading a frame header. */
  #goawayRest = -1;
  #first = true;
  #stopped = false;

  constructor(onGoaway: (errorCode: number) => void) {
    this.#onGoaway = onGoaway;
  }

  /** Scans the next chunk of the stream. */
  push(chunk: Uint8Array): void {
    let at = 0;
    while (at < chunk.length && !this.#stopped) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      if (this.#goawayRest < 0 && this.#have === 0 && at + FRAME_HEADER_LENGTH <= chunk.length) {
        // The common case, a whole frame header in the chunk, is read in place.
        this.#frameHeader(chunk, at);
        at += FRAME_HEADER_LENGTH;
        continue;
      }
      while (this.#have < this.#need && at < chunk.length) this.#bytes[this.#have++] = chunk[at++];
      if (this.#have < this.#need) return;
      this.#have = 0;
      if (this.#goawayRest < 0) this.#frameHeader(this.#bytes, 0);
      else this.#goaway();
    }
  }

  /** Stops scanning: later chunks are ignored. */
  stop(): void {
    this.#stopped = true;
  }

  /** Reads the frame header at `b[at]`. */
  #frameHeader(b: Uint8Array, at: number): void {
    const length = (b[at] << 16) | (b[at + 1] << 8) | b[at + 2];
    const type = b[at + 3];
    const stream = ((b[at + 5] & 0x7f) << 24) | (b[at + 6] << 16) | (b[at + 7] << 8) | b[at + 8];
    if (this.#first) {
      this.#first = false;
      // The server's connection preface is a SETTINGS frame, not an acknowledgement (RFC 9113 §3.4).
      if (type !== SETTINGS || stream !== 0 || b[at + 4] & ACK || length % 6 !== 0) return this.stop();
    }
    if (type !== GOAWAY) {
      this.#skip = length;
      return;
    }
    if (stream !== 0 || length < GOAWAY_FIXED_LENGTH) return this.stop();
    this.#need = GOAWAY_FIXED_LENGTH;
    this.#goawayRest = length - GOAWAY_FIXED_LENGTH;
  }

  #goaway(): void {
    const b = this.#bytes;
    const code = ((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]) >>> 0;
    this.#skip = this.#goawayRest;
    this.#goawayRest = -1;
    this.#need = FRAME_HEADER_LENGTH;
    this.#onGoaway(code);
  }
}
