/**
 * Forwards a request to a backend over HTTP/1.1 with streamed bodies in both directions, and maps
 * backend failures to gateway errors: 502 when the backend cannot be reached or breaks, 504 when it does
 * not answer within `upstream_secs`.
 *
 * @module
 */
import { responseHeadersFromBackend } from "./headers.ts";

/** How a forward ended, for metrics and logs. */
export type UpstreamOutcome = "ok" | "connect" | "protocol" | "timeout";

/** A backend answer (streamed) or the gateway error that replaces it. */
export interface Forwarded {
  response: Response;
  outcome: UpstreamOutcome;
  /** The failure, when `outcome` is not `ok`. */
  error?: string;
}

/** Builds the response for a gateway error. */
export function gatewayError(status: 502 | 504): Response {
  const text = status === 502 ? "Bad Gateway\n" : "Gateway Timeout\n";
  return new Response(text, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** The message of `e` and of its causes: fetch puts the useful part ("tcp connect error") in the cause. */
function describe(e: unknown): string {
  const parts: string[] = [];
  for (let c = e; c !== undefined && parts.length < 4; c = c instanceof Error ? c.cause : undefined) {
    parts.push(c instanceof Error ? c.message : String(c));
  }
  return parts.join(": ");
}

/** One worker's connection pool to the backends. */
export class Upstream {
  // allowHost: the forwarded headers carry the client's Host on purpose.
  #client = Deno.createHttpClient({ http1: true, http2: false, allowHost: true });
  #timeoutMs: number;

  /** `timeoutSecs` bounds the wait for the backend's response headers (the body may stream longer). */
  constructor(timeoutSecs: number) {
    this.#timeoutMs = timeoutSecs * 1000;
  }

  /**
   * Sends `req` (method and streamed body) to `http://backend{path}`, with the headers `writeHeaders`
   * puts on the outgoing request. `fetch` exposes no connect phase, so a refused or reset connection is
   * an immediate 502 and a connect that hangs ends as a 504 at the response timeout.
   */
  async forward(
    req: Request,
    backend: string,
    path: string,
    writeHeaders: (headers: Headers) => void,
  ): Promise<Forwarded> {
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(), this.#timeoutMs);
    try {
      // Headers are written in place and the request handed to fetch alone: headers passed in an init
      // object are converted and validated all over again, the costliest step of a request with long
      // fingerprint values.
      const request = new Request(`http://${backend}${path}`, {
        method: req.method,
        body: req.body,
        redirect: "manual",
        client: this.#client,
        signal: timer.signal,
        // Stream the request body instead of buffering it.
        duplex: "half",
      } as RequestInit);
      writeHeaders(request.headers);
      const upstream = await fetch(request);
      return {
        response: new Response(upstream.body, {
          status: upstream.status,
          statusText: upstream.statusText,
          headers: responseHeadersFromBackend(upstream.headers),
        }),
        outcome: "ok",
      };
    } catch (e) {
      const error = describe(e);
      if (timer.signal.aborted) return { response: gatewayError(504), outcome: "timeout", error };
      return { response: gatewayError(502), outcome: /connect/i.test(error) ? "connect" : "protocol", error };
    } finally {
      clearTimeout(timeout);
    }
  }

  close(): void {
    this.#client.close();
  }
}
