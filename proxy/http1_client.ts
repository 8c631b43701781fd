/**
 * A minimal HTTP/1.1 client with a keep-alive pool, for the proxy's backend side. Unlike `fetch` it sends
 * the caller's headers exactly (no `accept`, `user-agent` or `accept-encoding` added), enforces a connect
 * timeout, and reports failures as typed `UpstreamError`s. Bodies stream in both directions with
 * backpressure.
 *
 * @module
 */
import {
  type BodyFraming,
  ChunkedDecoder,
  findHeadEnd,
  parseResponseHead,
  type ResponseHead,
} from "./http1_parse.ts";

/** What went wrong on the way to a backend, for mapping to 502/504 and metrics. */
export type UpstreamErrorKind =
  /** The TCP connect was refused or failed. */
  | "connect"
  /** The TCP connect did not complete within `connectTimeoutMs`. */
  | "connect_timeout"
  /** The backend answered something that is not valid HTTP/1.1 (or asked to upgrade). */
  | "protocol"
  /** The connection broke or closed before the response was complete. */
  | "reset"
  /** The request body did not match its declared framing, or its stream failed. */
  | "request_body";

/** A failed exchange with a backend. */
export class UpstreamError extends Error {
  override name = "UpstreamError";
  constructor(readonly kind: UpstreamErrorKind, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** Pool settings. */
export interface Http1PoolOptions {
  connectTimeoutMs: number;
  /** How long an unused connection stays open for reuse (checked by a sweep, see `sweepPeriod`). */
  idleTimeoutMs: number;
  maxIdlePerBackend: number;
}

/** A request to forward. */
export interface Http1Request {
  method: string;
  /** The request target, e.g. `/a?b=c`. */
  path: string;
  /** Sent exactly as given, in order; only `host` (when missing) and body framing are added. */
  headers: Iterable<readonly [string, string] | FieldBlock>;
  body: ReadableStream<Uint8Array> | null;
  /** Aborting closes the connection; the pending promise or body stream fails with the signal's reason. */
  signal?: AbortSignal;
}

/** A backend response, returned as soon as its head is parsed. */
export interface Http1Response {
  status: number;
  statusText: string;
  /** The header fields as the backend sent them (names in their case, in order). */
  headers: [string, string][];
  /**
   * The whole body when it came with the head (small responses, the common case: no stream to set up and
   * drain), else a stream that pulls from the socket as it is read; `null` when there is no body.
   */
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null;
}

// The read buffer, which also bounds the response head and chunk framing lines.
const BUFFER_SIZE = 64 * 1024;
// Bodies up to this size with a known length go out in the same write as the head.
const SMALL_BODY = 16 * 1024;
// The write buffer: a request head with a small body, or a small chunk with its framing.
const WRITE_BUFFER_SIZE = 2 * SMALL_BODY;
// More interim (1xx) responses than this before the final one is a misbehaving backend.
const MAX_INTERIM = 16;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const TARGET = /^[\x21-\x7e\x80-\xff]+$/;
const DIGITS = /^\d{1,15}$/;
const encoder = new TextEncoder();
const CRLF = new Uint8Array([13, 10]);
const LAST_CHUNK = encoder.encode("0\r\n\r\n");

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** One TCP connection to a backend and its buffers. */
class Connection {
  readonly buf = new Uint8Array(BUFFER_SIZE);
  start = 0;
  end = 0;
  /** Bytes read since the current exchange began: a reused connection failing at 0 was stale. */
  received = 0;
  closed = false;
  /** `performance.now()` when the connection went back to the pool. */
  idleSince = 0;
  #out: Uint8Array | undefined;

  constructor(readonly tcp: Deno.TcpConn, readonly backend: string) {}

  get buffered(): number {
    return this.end - this.start;
  }

  /** Reads more bytes after the buffered ones, compacting first; false at end of stream. */
  async fill(): Promise<boolean> {
    if (this.start === this.end) {
      this.start = this.end = 0;
    } else if (this.end === this.buf.length) {
      if (this.start === 0) {
        throw new UpstreamError("protocol", `response head or chunk framing exceeds ${BUFFER_SIZE} bytes`);
      }
      this.buf.copyWithin(0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    const n = await this.read(this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }

  async read(into: Uint8Array): Promise<number | null> {
    let n: number | null;
    try {
      n = await this.tcp.read(into);
    } catch (e) {
      throw new UpstreamError("reset", `reading from ${this.backend}: ${message(e)}`, { cause: e });
    }
    if (n !== null) this.received += n;
    return n;
  }

  async write(bytes: Uint8Array): Promise<void> {
    try {
      for (let off = 0; off < bytes.length;) off += await this.tcp.write(bytes.subarray(off));
    } catch (e) {
      throw new UpstreamError("reset", `writing to ${this.backend}: ${message(e)}`, { cause: e });
    }
  }

  /**
   * Where a request head and a small body, or a small chunk and its framing, are put together for one
   * write: allocating a buffer per request costs more than encoding the head. Only one write at a time.
   */
  get writeBuffer(): Uint8Array {
    return this.#out ??= new Uint8Array(WRITE_BUFFER_SIZE);
  }

  /** Writes one chunk in the chunked coding. */
  async writeChunk(data: Uint8Array): Promise<void> {
    const frame = this.writeBuffer;
    const hex = data.length.toString(16);
    for (let i = 0; i < hex.length; i++) frame[i] = hex.charCodeAt(i);
    const sizeLine = hex.length + 2;
    frame.set(CRLF, hex.length);
    if (data.length > SMALL_BODY) {
      // Copying a large chunk costs more than two extra writes.
      await this.write(frame.subarray(0, sizeLine));
      await this.write(data);
      await this.write(CRLF);
      return;
    }
    frame.set(data, sizeLine);
    frame.set(CRLF, sizeLine + data.length);
    await this.write(frame.subarray(0, sizeLine + data.length + 2));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.tcp.close();
    } catch {
      // Already closed by the runtime.
    }
  }
}

/**
 * Header fields checked and serialized once, for fields that many requests carry unchanged (the
 * fingerprints of a client connection): each request then copies the ready text instead of checking and
 * joining the fields again. `host` and the body framing fields belong to one request, not in a block.
 */
export class FieldBlock {
  readonly fields: ReadonlyArray<readonly [string, string]>;
  /** `name: value\r\n` for each field, in order. */
  readonly text: string;
  /** Why the fields cannot be sent; the request carrying them fails with it as a `TypeError`. */
  readonly problem: string | undefined;

  constructor(fields: Iterable<readonly [string, string]>) {
    // A copy: the caller's list may grow afterwards.
    this.fields = Array.from(fields);
    let text = "";
    let problem: string | undefined;
    for (const [name, value] of this.fields) {
      if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) problem ??= `invalid header ${name}`;
      else if (PER_REQUEST.has(name.toLowerCase())) problem ??= `${name} cannot be in a field block`;
      text += `${name}: ${value}\r\n`;
    }
    this.text = text;
    this.problem = problem;
  }
}

const PER_REQUEST = new Set(["host", "content-length", "transfer-encoding"]);

/** A serialized request head and how the body must be framed. */
export interface RequestHead {
  /** The head, one char per byte. */
  text: string;
  /** The declared body length, or null for chunked (or no body). */
  contentLength: number | null;
}

/**
 * The head `Http1Pool.request` sends for `req` to `backend`: the fields checked (blocks were already)
 * and joined, `host` added when missing and `transfer-encoding` when needed.
 */
export function requestHead(backend: string, req: Http1Request): RequestHead {
  if (!TOKEN.test(req.method)) throw new TypeError(`invalid method ${JSON.stringify(req.method)}`);
  if (!TARGET.test(req.path)) throw new TypeError(`invalid request target ${JSON.stringify(req.path)}`);
  let fields = "";
  let host = false;
  let contentLength: string | undefined;
  let chunked = false;
  for (const field of req.headers) {
    if (field instanceof FieldBlock) {
      if (field.problem !== undefined) throw new TypeError(field.problem);
      fields += field.text;
      continue;
    }
    const [name, value] = field;
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) throw new TypeError(`invalid header ${name}`);
    fields += `${name}: ${value}\r\n`;
    const lower = name.toLowerCase();
    if (lower === "host") host = true;
    else if (lower === "content-length") contentLength = value;
    else if (lower === "transfer-encoding") {
      if (!/(^|,)\s*chunked\s*$/i.test(value)) {
        throw new UpstreamError(
          "request_body",
          `transfer-encoding ${JSON.stringify(value)} does not end in chunked`,
        );
      }
      chunked = true;
    }
  }
  if (contentLength !== undefined && chunked) {
    // Both framings in one request is the classic smuggling vector; never forward it.
    throw new UpstreamError("request_body", "both content-length and transfer-encoding given");
  }
  let length: number | null = null;
  if (contentLength !== undefined) {
    if (!DIGITS.test(contentLength)) {
      throw new UpstreamError("request_body", `invalid content-length ${JSON.stringify(contentLength)}`);
    }
    length = Number(contentLength);
    if (req.body === null && length !== 0) {
      throw new UpstreamError("request_body", `content-length ${length} without a body`);
    }
  } else if (req.body !== null && !chunked) {
    fields += "transfer-encoding: chunked\r\n";
  }
  const text = `${req.method} ${req.path} HTTP/1.1\r\n${host ? "" : `host: ${backend}\r\n`}${fields}\r\n`;
  return { text, contentLength: length };
}

/**
 * `head` (one char per byte) as bytes at the start of `buffer`, or of a new buffer when it does not fit
 * with `room` more bytes after it; returns the head and the room.
 */
export function headBytes(head: string, buffer: Uint8Array, room = 0): Uint8Array {
  const size = head.length + room;
  const out = size <= buffer.length ? buffer : new Uint8Array(size);
  const { read, written } = encoder.encodeInto(head, out);
  // Anything beyond ASCII went out as UTF-8, but header values are bytes (obs-text): one per char.
  if (read !== head.length || written !== head.length) {
    for (let i = 0; i < head.length; i++) out[i] = head.charCodeAt(i);
  }
  return out.subarray(0, size);
}

/** Sends the head and the body in its framing; small known-length bodies share the head's write. */
async function writeRequest(
  conn: Connection,
  head: RequestHead,
  body: ReadableStream<Uint8Array>,
): Promise<void> {
  const reader = body.getReader();
  const read = async () => {
    try {
      return await reader.read();
    } catch (e) {
      throw new UpstreamError("request_body", `request body stream failed: ${message(e)}`, { cause: e });
    }
  };
  const expected = head.contentLength;
  try {
    if (expected === null) {
      await conn.write(headBytes(head.text, conn.writeBuffer));
      for (let r = await read(); !r.done; r = await read()) {
        if (r.value.length > 0) await conn.writeChunk(r.value);
      }
      await conn.write(LAST_CHUNK);
      return;
    }
    let sent = 0;
    const small = expected <= SMALL_BODY ? headBytes(head.text, conn.writeBuffer, expected) : null;
    if (small === null) await conn.write(headBytes(head.text, conn.writeBuffer));
    for (let r = await read(); !r.done; r = await read()) {
      if (sent + r.value.length > expected) {
        throw new UpstreamError("request_body", `request body longer than its content-length ${expected}`);
      }
      if (small !== null) small.set(r.value, head.text.length + sent);
      else await conn.write(r.value);
      sent += r.value.length;
    }
    if (sent !== expected) {
      throw new UpstreamError("request_body", `request body of ${sent} bytes, content-length ${expected}`);
    }
    if (small !== null) await conn.write(small);
  } catch (e) {
    reader.cancel(e).catch(() => {});
    throw e;
  } finally {
    reader.releaseLock();
  }
}

/** Reads and parses one response head from `conn`. */
async function readHead(conn: Connection, method: string): Promise<ResponseHead> {
  let scanned = 0;
  for (;;) {
    const end = findHeadEnd(conn.buf.subarray(conn.start, conn.end), scanned);
    if (end >= 0) {
      const parsed = parseResponseHead(conn.buf.subarray(conn.start, conn.start + end), method);
      if (parsed.kind === "invalid") {
        throw new UpstreamError("protocol", `from ${conn.backend}: ${parsed.problem}`);
      }
      conn.start += end;
      return parsed.head;
    }
    scanned = Math.max(0, conn.buffered - 3);
    if (!await conn.fill()) {
      throw new UpstreamError(
        "reset",
        `${conn.backend} closed the connection before the response was complete`,
      );
    }
  }
}

/**
 * The response body as a pull-driven stream; `finish(true)` once it was read to its end. When `signal`
 * aborts, the stream fails with its reason.
 */
function bodyStream(
  conn: Connection,
  framing: BodyFraming,
  finish: (complete: boolean) => void,
  signal: AbortSignal | undefined,
): ReadableStream<Uint8Array> {
  let remaining = framing.kind === "length" ? framing.length : Infinity;
  const decoder = framing.kind === "chunked" ? new ChunkedDecoder() : null;
  const truncated = () =>
    new UpstreamError("reset", `${conn.backend} closed the connection before the body was complete`);

  /** The next piece of body, or null at its end. */
  const next = async (): Promise<Uint8Array | null> => {
    if (decoder !== null) {
      for (;;) {
        const step = decoder.decode(conn.buf.subarray(conn.start, conn.end));
        if (step.kind === "invalid") {
          throw new UpstreamError("protocol", `from ${conn.backend}: ${step.problem}`);
        }
        if (step.kind === "more") {
          if (!await conn.fill()) throw truncated();
          continue;
        }
        conn.start += step.used;
        if (step.kind === "data") return step.data.slice();
        if (step.kind === "end") return null;
      }
    }
    if (remaining === 0) return null;
    if (conn.buffered > 0) {
      const n = Math.min(remaining, conn.buffered);
      const data = conn.buf.slice(conn.start, conn.start + n);
      conn.start += n;
      remaining -= n;
      return data;
    }
    const into = new Uint8Array(Math.min(remaining, BUFFER_SIZE));
    const n = await conn.read(into);
    if (n === null) {
      if (framing.kind === "close") return null;
      throw truncated();
    }
    remaining -= n;
    return n === into.length ? into : into.subarray(0, n);
  };

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const data = await next();
        if (data !== null) controller.enqueue(data);
        // Ending as soon as the last byte is out returns the connection to the pool one pull earlier.
        if (data === null || remaining === 0) {
          controller.close();
          finish(true);
        }
      } catch (e) {
        finish(false);
        controller.error(signal?.aborted ? signal.reason : e);
      }
    },
    cancel() {
      finish(false);
    },
  }, { highWaterMark: 0 });
}

/** Splits `host:port` (IPv6 in brackets) for `Deno.connect`. */
function splitBackend(backend: string): { hostname: string; port: number } {
  const colon = backend.lastIndexOf(":");
  const port = Number(backend.slice(colon + 1));
  let hostname = backend.slice(0, colon);
  if (hostname.startsWith("[") && hostname.endsWith("]")) hostname = hostname.slice(1, -1);
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new UpstreamError("connect", `invalid backend address ${JSON.stringify(backend)}`);
  }
  return { hostname, port };
}

/** HTTP/1.1 connections to backends, kept alive and reused per backend address. */
export class Http1Pool {
  #opts: Http1PoolOptions;
  #idle = new Map<string, Connection[]>();
  #sweep: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(opts: Http1PoolOptions) {
    this.#opts = opts;
  }

  /**
   * Sends `req` to `backend` (`host:port`) and resolves once the response head has arrived. A reused
   * connection that turns out to be closed by the backend is retried once on a new connection when the
   * request has no body, since nothing the backend acted on can have been sent.
   */
  async request(backend: string, req: Http1Request): Promise<Http1Response> {
    req.signal?.throwIfAborted();
    if (this.#closed) throw new UpstreamError("connect", "the pool is closed");
    const head = requestHead(backend, req);
    const idle = this.#takeIdle(backend);
    try {
      if (idle !== undefined) {
        try {
          return await this.#exchange(idle, head, req);
        } catch (e) {
          const stale = e instanceof UpstreamError && e.kind === "reset" && idle.received === 0;
          if (!stale || req.body !== null || req.signal?.aborted) throw e;
        }
      }
      return await this.#exchange(await this.#connect(backend, req.signal), head, req);
    } catch (e) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw e;
    }
  }

  /** Closes the idle connections; connections in use close when their response ends. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const conn of list) conn.close();
    this.#idle.clear();
    this.#stopSweep();
  }

  async #connect(backend: string, signal?: AbortSignal): Promise<Connection> {
    const { hostname, port } = splitBackend(backend);
    const attempt = new AbortController();
    const timer = setTimeout(() => attempt.abort(), this.#opts.connectTimeoutMs);
    const onAbort = () => attempt.abort();
    signal?.addEventListener("abort", onAbort);
    try {
      const tcp = await Deno.connect({ hostname, port, signal: attempt.signal });
      // Without it, Nagle plus the backend's delayed ACK stalls each small body write by ~40 ms.
      tcp.setNoDelay(true);
      return new Connection(tcp, backend);
    } catch (e) {
      if (attempt.signal.aborted && !signal?.aborted) {
        throw new UpstreamError(
          "connect_timeout",
          `connect to ${backend} timed out after ${this.#opts.connectTimeoutMs} ms`,
        );
      }
      throw new UpstreamError("connect", `connect to ${backend}: ${message(e)}`, { cause: e });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Sends the request on `conn` and reads up to the final response head. */
  async #exchange(conn: Connection, head: RequestHead, req: Http1Request): Promise<Http1Response> {
    conn.received = 0;
    const signal = req.signal;
    // Closing the socket is what interrupts a pending read or write.
    const onAbort = () => conn.close();
    signal?.addEventListener("abort", onAbort);
    let upload: "sending" | "sent" | "failed" = "sent";
    let uploadError: unknown;
    if (req.body === null) {
      await conn.write(headBytes(head.text, conn.writeBuffer)).catch((e) => {
        signal?.removeEventListener("abort", onAbort);
        conn.close();
        throw e;
      });
    } else {
      // Concurrent with reading: a backend may answer before it has read the whole body.
      upload = "sending";
      writeRequest(conn, head, req.body).then(() => {
        upload = "sent";
      }, (e) => {
        upload = "failed";
        uploadError = e;
        // A broken request body leaves the backend waiting for the rest; a failed write is the backend's
        // doing and its response may still be readable.
        if (e instanceof UpstreamError && e.kind === "request_body") conn.close();
      });
    }

    let finished = false;
    const finish = (complete: boolean) => {
      if (finished) return;
      finished = true;
      signal?.removeEventListener("abort", onAbort);
      if (complete && response.keepAlive && upload === "sent" && conn.buffered === 0) this.#release(conn);
      else conn.close();
    };

    let response: ResponseHead;
    try {
      for (let interim = 0;; interim++) {
        response = await readHead(conn, req.method);
        if (response.status === 101) {
          throw new UpstreamError(
            "protocol",
            `${conn.backend} switched protocols; upgrades are not supported`,
          );
        }
        if (response.status >= 200) break;
        if (interim === MAX_INTERIM) {
          throw new UpstreamError(
            "protocol",
            `${conn.backend} sent more than ${MAX_INTERIM} interim responses`,
          );
        }
      }
    } catch (e) {
      signal?.removeEventListener("abort", onAbort);
      conn.close();
      throw uploadError ?? e;
    }

    const framing = response.framing;
    const empty = framing.kind === "none" || (framing.kind === "length" && framing.length === 0);
    let body: Http1Response["body"] = null;
    if (framing.kind === "length" && framing.length > 0 && framing.length <= conn.buffered) {
      body = conn.buf.slice(conn.start, conn.start + framing.length);
      conn.start += framing.length;
      finish(true);
    } else if (empty) finish(true);
    else body = bodyStream(conn, framing, finish, signal);
    return { status: response.status, statusText: response.statusText, headers: response.headers, body };
  }

  #takeIdle(backend: string): Connection | undefined {
    return this.#idle.get(backend)?.pop();
  }

  #release(conn: Connection): void {
    const list = this.#idle.get(conn.backend) ?? [];
    if (this.#closed || conn.closed || list.length >= this.#opts.maxIdlePerBackend) {
      conn.close();
      return;
    }
    conn.start = conn.end = 0;
    conn.idleSince = performance.now();
    list.push(conn);
    this.#idle.set(conn.backend, list);
    // One sweep for all idle connections: a timer per release cost more than the rest of the pool's
    // bookkeeping for a request.
    this.#sweep ??= setInterval(() => this.#closeIdle(), sweepPeriod(this.#opts.idleTimeoutMs));
  }

  /** Closes the connections idle for `idleTimeoutMs`; the sweep stops once none is left. */
  #closeIdle(): void {
    const now = performance.now();
    for (const [backend, list] of this.#idle) {
      // Taken from the end and put back there, so the longest idle are first.
      let stale = 0;
      while (stale < list.length && now - list[stale].idleSince >= this.#opts.idleTimeoutMs) {
        list[stale++].close();
      }
      list.splice(0, stale);
      if (list.length === 0) this.#idle.delete(backend);
    }
    if (this.#idle.size === 0) this.#stopSweep();
  }

  #stopSweep(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}

/**
 * How often a sweep checks `timeoutMs` deadlines: they then fire late by at most a quarter of the
 * timeout, and by at most a second.
 */
export function sweepPeriod(timeoutMs: number): number {
  return Math.min(timeoutMs / 4, 1000);
}
