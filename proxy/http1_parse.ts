/**
 * Pure parsing of HTTP/1.1 responses (RFC 9112): the response head and the chunked body framing. No I/O:
 * `http1_client.ts` feeds them the bytes it reads. Bad input gives an `invalid` result naming the
 * problem, never an exception.
 *
 * @module
 */

/** How the body of a response is delimited (RFC 9112 §6.3). */
export type BodyFraming =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

/** A parsed status line and header section. */
export interface ResponseHead {
  status: number;
  statusText: string;
  /** Field names as sent (case kept), values without the SP and HTAB around them. */
  headers: [string, string][];
  /** Whether the connection may carry another request once this response is complete. */
  keepAlive: boolean;
  framing: BodyFraming;
}

const CR = 13;
const LF = 10;

/**
 * Where the head starting at `from` ends: the index just past its blank line, or -1 when `bytes` does not
 * hold it yet. `from` lets a caller resume after a partial read without rescanning.
 */
export function findHeadEnd(bytes: Uint8Array, from = 0): number {
  for (let i = Math.max(from, 3); i < bytes.length; i++) {
    if (bytes[i] === LF && bytes[i - 1] === CR && bytes[i - 2] === LF && bytes[i - 3] === CR) return i + 1;
  }
  return -1;
}

const asciiDecoder = new TextDecoder();

/** Bytes to a string, one char per byte: header values may carry obs-text (0x80-0xFF), never UTF-8. */
function latin1(bytes: Uint8Array): string {
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f) ascii = false;
  if (ascii) return asciiDecoder.decode(bytes);
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** A table of the bytes in `ranges` (inclusive pairs), for one lookup per byte. */
function byteClass(...ranges: [number, number][]): Uint8Array {
  const table = new Uint8Array(256);
  for (const [from, to] of ranges) table.fill(1, from, to + 1);
  return table;
}
const ch = (c: string) => c.charCodeAt(0);
// tchar (RFC 9110 §5.6.2).
const TCHAR = byteClass(
  ...[..."!#$%&'*+-.^_`|~"].map((c): [number, number] => [ch(c), ch(c)]),
  [ch("0"), ch("9")],
  [ch("A"), ch("Z")],
  [ch("a"), ch("z")],
);
// field-value bytes: VCHAR, obs-text, SP, HTAB; anything else (CR, LF, NUL, other controls) is refused.
const FIELD_BYTE = byteClass([0x09, 0x09], [0x20, 0x7e], [0x80, 0xff]);
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([\t\x20-\x7e\x80-\xff]*))?$/;
const DIGITS = /^\d{1,15}$/;

/** A parsed head, or why it was refused (the connection that carried it is then unusable). */
export type HeadParse = { kind: "head"; head: ResponseHead } | { kind: "invalid"; problem: string };

/**
 * Parses a complete response head (status line through the blank line, as located by `findHeadEnd`) of
 * a response to `method`. Refuses what RFC 9112 says to reject: obs-fold, bare CR/LF, invalid name or
 * value characters, a malformed status line, or conflicting Content-Length. The header lines are read in
 * one pass over the bytes with a table lookup per byte: a regex per name and per value was the largest
 * JavaScript cost of a proxied request.
 */
export function parseResponseHead(head: Uint8Array, method: string): HeadParse {
  const invalid = (problem: string): HeadParse => ({ kind: "invalid", problem });
  const n = head.length;
  if (n < 4 || head[n - 4] !== CR || head[n - 3] !== LF || head[n - 2] !== CR || head[n - 1] !== LF) {
    return invalid("response head is not terminated by an empty line");
  }
  // One char per byte, so byte offsets are string offsets.
  const text = latin1(head);
  const statusEnd = text.indexOf("\r\n");
  const statusLine = STATUS_LINE.exec(text.slice(0, statusEnd));
  if (statusLine === null) {
    return invalid(`malformed status line ${JSON.stringify(text.slice(0, statusEnd))}`);
  }
  const http11 = statusLine[1] === "1";
  const status = Number(statusLine[2]);
  if (status < 100) return invalid(`invalid status code ${status}`);

  const headers: [string, string][] = [];
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let connection = "";
  // The final CRLF is the blank line; every line before it is a header line ending in CRLF.
  for (let pos = statusEnd + 2; pos < n - 2;) {
    if (head[pos] === SP || head[pos] === HTAB) return invalid("obsolete line folding in header");
    let i = pos;
    while (TCHAR[head[i]] === 1) i++;
    if (i === pos || head[i] !== COLON) {
      const end = text.indexOf("\r\n", pos);
      return invalid(`invalid header line ${JSON.stringify(text.slice(pos, end))}`);
    }
    const name = text.slice(pos, i);
    let end = i + 1;
    while (FIELD_BYTE[head[end]] === 1) end++;
    if (head[end] !== CR || head[end + 1] !== LF) return invalid(`invalid characters in header ${name}`);
    let start = i + 1;
    while (start < end && (head[start] === SP || head[start] === HTAB)) start++;
    let stop = end;
    while (stop > start && (head[stop - 1] === SP || head[stop - 1] === HTAB)) stop--;
    const value = text.slice(start, stop);
    headers.push([name, value]);
    pos = end + 2;
    // Only three names matter to the framing; most names are told apart by length alone.
    const lower = name.length === 14 || name.length === 17 || name.length === 10 ? name.toLowerCase() : "";
    if (lower === "content-length") {
      // Repeated or list values are tolerated only when they all agree (RFC 9112 §6.3 item 5).
      for (const part of value.split(",")) {
        const v = part.trim();
        if (!DIGITS.test(v)) return invalid(`invalid content-length ${JSON.stringify(value)}`);
        if (contentLength !== undefined && Number(contentLength) !== Number(v)) {
          return invalid("conflicting content-length values");
        }
        contentLength = v;
      }
    } else if (lower === "transfer-encoding") {
      transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    } else if (lower === "connection") {
      connection += `,${value.toLowerCase()}`;
    }
  }

  const tokens = connection.split(",").map((t) => t.trim());
  let keepAlive = http11 ? !tokens.includes("close") : tokens.includes("keep-alive");
  let framing: BodyFraming;
  if (method === "HEAD" || status < 200 || status === 204 || status === 304) {
    framing = { kind: "none" };
  } else if (transferEncoding !== undefined) {
    // Transfer-Encoding overrides Content-Length; without chunked last the body runs to close (§6.3).
    const codings = transferEncoding.split(",").map((t) => t.trim().toLowerCase());
    if (codings[codings.length - 1] === "chunked") {
      framing = { kind: "chunked" };
    } else {
      framing = { kind: "close" };
    }
    // Both framings at once smell of smuggling: finish this response but never reuse the connection.
    if (contentLength !== undefined || framing.kind === "close") keepAlive = false;
  } else if (contentLength !== undefined) {
    framing = { kind: "length", length: Number(contentLength) };
  } else {
    framing = { kind: "close" };
    keepAlive = false;
  }
  return { kind: "head", head: { status, statusText: statusLine[3] ?? "", headers, keepAlive, framing } };
}

/** What one `ChunkedDecoder.decode` step found; `used` bytes of the input were consumed. */
export type ChunkedStep =
  /** Nothing can be decoded until more input arrives (nothing consumed). */
  | { kind: "more" }
  /** Framing (a size line or a chunk's CRLF) consumed. */
  | { kind: "framing"; used: number }
  /** Body bytes, a view into the input: copy them before the input is reused. */
  | { kind: "data"; used: number; data: Uint8Array }
  /** The last chunk and the trailer section consumed: the body is complete. */
  | { kind: "end"; used: number }
  | { kind: "invalid"; problem: string };

// A chunk-size line (size plus extensions) or trailer section beyond these is an attack, not a response.
const MAX_SIZE_LINE = 4096;
const MAX_TRAILERS = 64 * 1024;

/**
 * Incremental decoder of the chunked transfer coding (RFC 9112 §7.1). Trailer fields are checked for
 * termination and discarded: the proxy does not forward them.
 */
export class ChunkedDecoder {
  #state: "size" | "data" | "data_end" | "trailers" | "done" = "size";
  #remaining = 0;

  /** Consumes a prefix of `input`. */
  decode(input: Uint8Array): ChunkedStep {
    switch (this.#state) {
      case "size": {
        const lf = input.indexOf(LF);
        if (lf < 0) {
          return input.length > MAX_SIZE_LINE
            ? { kind: "invalid", problem: "chunk size line too long" }
            : MORE;
        }
        if (lf === 0 || input[lf - 1] !== CR) {
          return { kind: "invalid", problem: "chunk size line not ended by CRLF" };
        }
        const size = parseChunkSize(input.subarray(0, lf - 1));
        if (size === undefined) return { kind: "invalid", problem: "invalid chunk size" };
        this.#remaining = size;
        this.#state = size === 0 ? "trailers" : "data";
        return { kind: "framing", used: lf + 1 };
      }
      case "data": {
        const n = Math.min(this.#remaining, input.length);
        if (n === 0) return MORE;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = "data_end";
        return { kind: "data", used: n, data: input.subarray(0, n) };
      }
      case "data_end": {
        if (input.length < 2) return MORE;
        if (input[0] !== CR || input[1] !== LF) {
          return { kind: "invalid", problem: "chunk data not followed by CRLF" };
        }
        this.#state = "size";
        return { kind: "framing", used: 2 };
      }
      case "trailers": {
        // Either an immediate CRLF (no trailers) or trailer lines ending with an empty line.
        const end = input.length >= 2 && input[0] === CR && input[1] === LF ? 2 : findHeadEnd(input);
        if (end < 0) {
          return input.length > MAX_TRAILERS
            ? { kind: "invalid", problem: "trailer section too large" }
            : MORE;
        }
        this.#state = "done";
        return { kind: "end", used: end };
      }
      case "done":
        return { kind: "end", used: 0 };
    }
  }
}

const MORE: ChunkedStep = { kind: "more" };
const HEX = /^[0-9a-fA-F]{1,12}$/;

/** The size from a chunk-size line, ignoring chunk extensions (`;name=value`); undefined if malformed. */
function parseChunkSize(line: Uint8Array): number | undefined {
  const text = latin1(line);
  const semi = text.indexOf(";");
  const size = (semi < 0 ? text : text.slice(0, semi)).trimEnd();
  return HEX.test(size) ? parseInt(size, 16) : undefined;
}
