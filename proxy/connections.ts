/**
 * What the internal HTTP server needs to know about each client connection. The front relays every
 * client over its own loopback connection, so the relay's source port identifies the client connection
 * in the server's handler (`info.remoteAddr.port`).
 *
 * @module
 */
import type { Peer } from "../shared/syn_record.ts";
import type { TlsIdentity } from "./certificates.ts";
import { FieldBlock } from "./http1_client.ts";
import type { ConnectionCloseReason } from "./metrics.ts";

/** One client connection, as the handler sees it. */
export interface ConnectionContext {
  /** The client: as accepted, or as the PROXY header of a trusted balancer names it. */
  peer: Peer;
  /** The port the client connected to. */
  listenerPort: number;
  proto: "https" | "http";
  /** The certificate of a TLS connection, for `isMisdirected`; undefined on plain listeners. */
  tls?: TlsIdentity;
  /** `HTTP/2` when the client sent the HTTP/2 preface, `HTTP/1.1` otherwise. */
  protocol: "HTTP/1.1" | "HTTP/2";
  /** Fingerprint headers, computed once per connection and reused by every request on it. */
  fingerprints: Array<[string, string]>;
  /** `fingerprints` checked and serialized, for `fingerprintFields`. */
  fingerprintFields?: FieldBlock;
  /** Requests whose response is not fully sent yet; an idle connection has none. */
  inflight: number;
  /** Requests that reached the handler so far. */
  requests: number;
  /** The client sent bytes since the last request reached the handler: a request head in progress. */
  partial: boolean;
  /**
   * `performance.now()` when the connection opened or its last request completed. Bytes do not count:
   * a client trickling a request head byte by byte (slowloris) must still be closed after `idle_secs`.
   */
  lastActive: number;
  /** Closes the client connection and its relay, for `reason` (counted once per connection). */
  close(reason: ConnectionCloseReason): void;
}

/**
 * The connection's fingerprint headers, checked and serialized once for all its requests. Built again
 * when the list grew: the Akamai fingerprint joins it once the first HTTP/2 HEADERS frame is seen.
 */
export function fingerprintFields(
  ctx: Pick<ConnectionContext, "fingerprints" | "fingerprintFields">,
): FieldBlock {
  if (ctx.fingerprintFields?.fields.length !== ctx.fingerprints.length) {
    ctx.fingerprintFields = new FieldBlock(ctx.fingerprints);
  }
  return ctx.fingerprintFields;
}

/** The open connections of one worker, by relay source port. */
export class ConnectionTable {
  readonly #byPort = new Map<number, ConnectionContext>();
  #onEmpty: Array<() => void> = [];

  get size(): number {
    return this.#byPort.size;
  }

  get(relayPort: number): ConnectionContext | undefined {
    return this.#byPort.get(relayPort);
  }

  add(relayPort: number, ctx: ConnectionContext): void {
    this.#byPort.set(relayPort, ctx);
  }

  /** Removes the entry, unless the port was already reused by a newer connection. */
  delete(relayPort: number, ctx: ConnectionContext): void {
    if (this.#byPort.get(relayPort) === ctx) this.#byPort.delete(relayPort);
    if (this.#byPort.size === 0) { for (const resolve of this.#onEmpty.splice(0)) resolve(); }
  }

  /** Settles when no connection is left. */
  empty(): Promise<void> {
    return this.#byPort.size === 0 ? Promise.resolve() : new Promise((r) => this.#onEmpty.push(r));
  }

  /**
   * Closes connections with no request in flight since `idleMs` (0: idle now). Returns how many of them
   * were HTTP/1.1 clients in the middle of sending a request head, i.e. slow or slowloris clients.
   */
  closeIdle(idleMs: number, now = performance.now()): number {
    let slowHeads = 0;
    for (const ctx of this.#byPort.values()) {
      if (ctx.inflight === 0 && now - ctx.lastActive >= idleMs) {
        if (ctx.partial && ctx.protocol === "HTTP/1.1") slowHeads++;
        ctx.close("idle");
      }
    }
    return slowHeads;
  }

  /** Connections whose first request has not reached the handler yet. */
  awaitingFirstRequest(): number {
    let n = 0;
    for (const ctx of this.#byPort.values()) if (ctx.requests === 0) n++;
    return n;
  }

  /** Closes every connection left when a drain ends. */
  closeAll(): void {
    for (const ctx of this.#byPort.values()) ctx.close("shutdown");
  }
}

/**
 * The number of open client connections of the whole process, shared by its workers through a
 * `SharedArrayBuffer` so that the cap (`security.max_connections`, or less when the limit of open files
 * holds fewer) holds across them.
 */
export class ConnectionLimit {
  readonly #count: Int32Array;
  readonly #max: number;

  /** Counts in `shared`, a buffer from `ConnectionLimit.buffer`, against the cap it carries. */
  constructor(shared: SharedArrayBuffer) {
    this.#count = new Int32Array(shared, 0, 2);
    this.#max = this.#count[1];
  }

  /** A buffer to share between the workers: the count, and the cap `max` (at most 2^31 - 1). */
  static buffer(max: number): SharedArrayBuffer {
    const shared = new SharedArrayBuffer(8);
    new Int32Array(shared)[1] = Math.min(max, 0x7fff_ffff);
    return shared;
  }

  /** Counts a new connection, or returns false (counting nothing) when the limit is reached. */
  tryAcquire(): boolean {
    if (Atomics.add(this.#count, 0, 1) < this.#max) return true;
    Atomics.sub(this.#count, 0, 1);
    return false;
  }

  release(): void {
    Atomics.sub(this.#count, 0, 1);
  }
}
