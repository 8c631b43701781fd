/**
 * The worker's internal HTTP server (`Deno.serve` on a loopback port), which the listeners relay client
 * connections into, kept serving across a failed accept.
 *
 * @module
 */

/** Restarts of the internal server are at least this far apart, so that one failing at once cannot spin. */
const RESTART_INTERVAL_MS = 1000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/**
 * The internal HTTP server the listeners relay into. Deno.serve ends its accept loop on the first failed
 * accept and rejects `finished`, and the worker would die of that rejection. At the limit of open files
 * that happens even with nobody waiting (Linux reserves the new descriptor before it looks for a
 * connection), so this serves again on a new port, which the listeners read from
 * `ListenerDeps.internalPort` for their next relays. The connections the old server accepted go on; a
 * relay still waiting in its backlog is reset.
 */
export class InternalServer {
  #server: Deno.HttpServer<Deno.NetAddr>;
  #stopping = false;
  #lastRestart = -Infinity;
  readonly #serve: () => Deno.HttpServer<Deno.NetAddr>;
  readonly #onRestart: (port: number, error: unknown) => void;

  /** `onRestart` runs once per restart, with the new port and why the previous server ended. */
  constructor(serve: () => Deno.HttpServer<Deno.NetAddr>, onRestart: (port: number, error: unknown) => void) {
    this.#serve = serve;
    this.#onRestart = onRestart;
    this.#server = this.#watch(serve());
  }

  get port(): number {
    return this.#server.addr.port;
  }

  /** Stops accepting and settles once the requests in flight are answered. */
  shutdown(): Promise<void> {
    this.#stopping = true;
    return this.#server.shutdown();
  }

  #watch(server: Deno.HttpServer<Deno.NetAddr>): Deno.HttpServer<Deno.NetAddr> {
    server.finished.then(() => undefined, (e: unknown) => e).then((error) => this.#restart(error));
    return server;
  }

  async #restart(error: unknown) {
    await sleep(this.#lastRestart + RESTART_INTERVAL_MS - performance.now());
    while (!this.#stopping) {
      try {
        this.#server = this.#watch(this.#serve());
        this.#lastRestart = performance.now();
        return this.#onRestart(this.port, error);
      } catch {
        // Binding needs a descriptor too: wait for one.
        await sleep(100);
      }
    }
  }
}
