/**
 * Reads a PROXY protocol header off a fresh connection, before anything else looks at its bytes. The
 * header's length is only known once part of it is read, and an optional header is only known to be
 * absent once the client's own first bytes are in hand, so what was read past the header is handed on
 * in a `ReplayConn` that returns those bytes first.
 *
 * @module
 */
import { parseProxyHeader, type ProxyHeader, type ProxyHeaderProblem, V2_MAX } from "./proxy_protocol.ts";

/** A TCP connection whose first reads return bytes that were already read from it. */
export class ReplayConn implements Deno.TcpConn {
  readonly #conn: Deno.TcpConn;
  #pending: Uint8Array;

  constructor(conn: Deno.TcpConn, pending: Uint8Array) {
    this.#conn = conn;
    this.#pending = pending;
  }

  get localAddr(): Deno.NetAddr {
    return this.#conn.localAddr;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.#conn.remoteAddr;
  }

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    const read = (p: Uint8Array) => this.read(p);
    return new ReadableStream({
      async pull(controller) {
        const buf = new Uint8Array(16 * 1024);
        const n = await read(buf);
        if (n === null) controller.close();
        else controller.enqueue(buf.slice(0, n));
      },
    });
  }

  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#conn.writable;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (this.#pending.length === 0) return this.#conn.read(p);
    const n = Math.min(p.length, this.#pending.length);
    p.set(this.#pending.subarray(0, n));
    this.#pending = this.#pending.subarray(n);
    return Promise.resolve(n);
  }

  write(p: Uint8Array): Promise<number> {
    return this.#conn.write(p);
  }

  closeWrite(): Promise<void> {
    return this.#conn.closeWrite();
  }

  close(): void {
    this.#conn.close();
  }

  ref(): void {
    this.#conn.ref();
  }

  unref(): void {
    this.#conn.unref();
  }

  setNoDelay(noDelay?: boolean): void {
    this.#conn.setNoDelay(noDelay);
  }

  setKeepAlive(keepAlive?: boolean): void {
    this.#conn.setKeepAlive(keepAlive);
  }

  [Symbol.dispose](): void {
    this.#conn.close();
  }
}

/** The outcome of `readProxyHeader`. */
export type ProxyIntake =
  /** `conn` yields the client's stream; `header` is absent when an optional header was not sent. */
  | { ok: true; conn: Deno.TcpConn; header?: ProxyHeader }
  | { ok: false; problem: ProxyHeaderProblem | "missing" | "truncated" }
  /** The client closed before sending anything: nothing to count. */
  | { ok: false; problem: undefined };

/**
 * Reads until a complete header, or (when not `required`) until the first bytes show there is none.
 * Never throws on client input; a read error (the caller closing the connection on a timeout) propagates.
 */
export async function readProxyHeader(conn: Deno.TcpConn, required: boolean): Promise<ProxyIntake> {
  let buf = new Uint8Array(512);
  let len = 0;
  while (true) {
    if (len === buf.length) {
      const bigger = new Uint8Array(Math.min(buf.length * 4, V2_MAX));
      bigger.set(buf);
      buf = bigger;
    }
    const n = await conn.read(buf.subarray(len));
    if (n === null) {
      if (len === 0) return { ok: false, problem: undefined };
      return required
        ? { ok: false, problem: "truncated" }
        : { ok: true, conn: new ReplayConn(conn, buf.slice(0, len)) };
    }
    len += n;
    const parsed = parseProxyHeader(buf.subarray(0, len));
    switch (parsed.kind) {
      case "incomplete":
        continue;
      case "none":
        if (required) return { ok: false, problem: "missing" };
        return { ok: true, conn: new ReplayConn(conn, buf.slice(0, len)) };
      case "invalid":
        return { ok: false, problem: parsed.problem };
      case "header":
        return {
          ok: true,
          conn: new ReplayConn(conn, buf.slice(parsed.header.length, len)),
          header: parsed.header,
        };
    }
  }
}
