/**
 * Forwards a request to a backend over HTTP/1.1 with streamed bodies in both directions, and maps
 * backend failures to gateway errors: 502 when the backend cannot be reached or breaks, 504 when it does
 * not accept the connection within `upstream_connect_secs` or answer within `upstream_secs`.
 *
 * The backend side is `Http1Pool`, not `fetch`: fetch adds `accept`, `accept-language`,
 * `accept-encoding` and a Deno `user-agent` to requests that lack them, and a fingerprinting proxy must
 * not tell a backend that a client sent headers it never sent.
 *
 * @module
 */
import type { HeaderList } from "./header_list.ts";
import { responseHeadersFromBackend } from "./headers.ts";
import { Http1Pool, sweepPeriod, UpstreamError } from "./http1_client.ts";

/**
 * How a forward ended, for metrics and logs. `client_timeout`: `upstream_secs` ran out while the client
 * was still sending its request body, so the client, not the backend, was slow.
 */
export type UpstreamOutcome = "ok" | "connect" | "protocol" | "timeout" | "client_timeout";

/** A backend answer (streamed) or the gateway error that replaces it. */
export interface Forwarded {
  response: Response;
  outcome: UpstreamOutcome;
  /** The failure, when `outcome` is not `ok`. */
  error?: string;
}

const STATUS_TEXT = { 408: "Request Timeout\n", 502: "Bad Gateway\n", 504: "Gateway Timeout\n" };

/** Builds the response for a gateway error (or, for 408, a client too slow to send its body). */
export function gatewayError(status: 408 | 502 | 504): Response {
  const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
  // The rest of a body that never finished is not worth reading.
  if (status === 408) headers.connection = "close";
  return new Response(STATUS_TEXT[status], { status, headers });
}

/** A forward waiting for its response head, and when it times out. */
interface Pending {
  deadline: number;
  timer: AbortController;
}

/** One worker's connection pool to the backends. */
export class Upstream {
  #pool: Http1Pool;
  #timeoutMs: number;
  // Checked by one sweep: a timer per request cost more than the rest of its bookkeeping in the client.
  #pending = new Set<Pending>();
  #sweep: ReturnType<typeof setInterval> | undefined;

  /**
   * `timeoutSecs` bounds the wait for the backend's response headers (the body may stream longer; the
   * deadline is checked by a sweep, see `sweepPeriod`); `connectTimeoutSecs` bounds the TCP connect.
   */
  constructor(timeoutSecs: number, connectTimeoutSecs: number) {
    this.#timeoutMs = timeoutSecs * 1000;
    this.#pool = new Http1Pool({
      connectTimeoutMs: connectTimeoutSecs * 1000,
      idleTimeoutMs: 60_000,
      maxIdlePerBackend: 256,
    });
  }

  /**
   * Sends `req` (method and streamed body) to `backend` at `path` with `headers`, and returns the backend's response as soon as its head arrived.
   */
  async forward(
    req: Request,
    backend: string,
    path: string,
    headers: HeaderList,
  ): Promise<Forwarded> {
    // Whether the client finished sending its body decides who a timeout is charged to.
    let bodySent = req.body === null;
    const body = req.body?.pipeThrough(new TransformStream({ flush: () => void (bodySent = true) })) ?? null;
    const timer = new AbortController();
    const pending = { deadline: performance.now() + this.#timeoutMs, timer };
    this.#pending.add(pending);
    this.#sweep ??= setInterval(() => this.#expire(), sweepPeriod(this.#timeoutMs));
    try {
      const upstream = await this.#pool.request(backend, {
        method: req.method,
        path,
        headers,
        body,
        signal: timer.signal,
      });
      return {
        response: new Response(upstream.body, {
          status: upstream.status,
          statusText: upstream.statusText,
          headers: responseHeadersFromBackend(upstream.headers),
        }),
        outcome: "ok",
      };
    } catch (e) {
      const error = e instanceof Error ? e.message : String(e);
      if (timer.signal.aborted) {
        if (!bodySent) return { response: gatewayError(408), outcome: "client_timeout", error };
        return { response: gatewayError(504), outcome: "timeout", error };
      }
      if (e instanceof UpstreamError) {
        if (e.kind === "connect_timeout") return { response: gatewayError(504), outcome: "timeout", error };
        if (e.kind === "connect") return { response: gatewayError(502), outcome: "connect", error };
      }
      // A broken or invalid answer, or a status the Response constructor refuses.
      return { response: gatewayError(502), outcome: "protocol", error };
    } finally {
      this.#pending.delete(pending);
    }
  }

  /** Closes the idle backend connections; forwards in flight go on until they end or time out. */
  close(): void {
    if (this.#pending.size === 0) this.#stopSweep();
    this.#pool.close();
  }

  /** Aborts the forwards past their deadline; the sweep stops once none is waiting. */
  #expire(): void {
    if (this.#pending.size === 0) return this.#stopSweep();
    const now = performance.now();
    for (const pending of this.#pending) {
      if (now >= pending.deadline) {
        this.#pending.delete(pending);
        pending.timer.abort();
      }
    }
  }

  #stopSweep(): void {
    clearInterval(this.#sweep);
    this.#sweep = undefined;
  }
}
