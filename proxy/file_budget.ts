/**
 * How many client connections fit in the process's limit of open files. An established client
 * connection holds 3 descriptors: its socket, the listener's loopback connection to the worker's internal
 * HTTP server, and that server's accepted end. Everything else the proxy opens comes out of a reserve.
 *
 * @module
 */

/** Descriptors one established client connection holds. */
export const FILES_PER_CONNECTION = 3;

/**
 * Descriptors kept out of `security.max_connections`' share of a `limit`, with `workers` workers.
 *
 * - 64 + 16 per worker for the process itself: the runtime's event loops, pipes and caches, the
 *   listeners, the internal servers and the operational endpoint (measured: 26 + 9 per worker at start),
 *   and short-lived ones (certificate and configuration reads, health-check probes, metrics scrapes).
 * - An eighth of the limit for backend connections: one per request in flight, and the idle keep-alive
 *   pool. Unlike client connections they are not capped, so this room is a bet: at the cap, about two
 *   clients in five may have a request in flight at once. Past that an accept or a relay fails with
 *   EMFILE, which costs that one connection only (see `worker.ts`).
 */
export function reservedFiles(limit: number, workers: number): number {
  return 64 + 16 * workers + Math.ceil(limit / 8);
}

/**
 * The most client connections that fit in `limit` open files next to `reservedFiles`; at least 1, so a
 * tiny limit degrades service instead of refusing every client. `Infinity` when the limit is.
 */
export function connectionsThatFit(limit: number, workers: number): number {
  if (limit === Infinity) return Infinity;
  return Math.max(1, Math.floor((limit - reservedFiles(limit, workers)) / FILES_PER_CONNECTION));
}

/** Whether `error` is the process (EMFILE) or the system (ENFILE) running out of file descriptors. */
export function isFileLimitError(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (code === "EMFILE" || code === "ENFILE" || /\(os error 2[34]\)/.test(e.message)) return true;
  }
  return false;
}
