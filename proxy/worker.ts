/**
 * One proxy worker (a Web Worker, one per core): binds every listener with `SO_REUSEPORT` so the
 * kernel spreads connections over the workers, runs the internal HTTP server that the listeners relay
 * into (again on a new port if it stops accepting), and answers the main thread's status, metrics and
 * shutdown messages.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { createLogger, type Logger } from "../shared/log.ts";
import { type Config, parseAddress } from "./config.ts";
import { type CertificateStore, openCertificates } from "./certificates.ts";
import { ConnectionLimit, ConnectionTable } from "./connections.ts";
import { createHandler, type HandlerDeps } from "./handler.ts";
import { HealthChecker } from "./health_checks.ts";
import { InternalServer } from "./internal_server.ts";
import { Listener, type ListenerDeps } from "./listener.ts";
import { ProxyMetrics } from "./metrics.ts";
import { RequestPolicy } from "./request_policy.ts";
import { Router } from "./router.ts";
import { openSynSource, type SynSource } from "./tcp_syn.ts";
import { Upstream } from "./upstream.ts";

/** Messages from the main thread. */
export type ToWorker =
  | {
    type: "start";
    index: number;
    config: Config;
    /** The process-wide connection count and cap (see `ConnectionLimit`). */
    connections: SharedArrayBuffer;
    reusePort: boolean;
    /** Where the agent pins its maps; set when `fingerprint.tcp_enabled`. */
    pinPath?: string;
  }
  | { type: "metrics"; id: number }
  /** A new configuration whose static parts equal the running one's (see `reload.ts`). */
  | { type: "reload"; config: Config }
  | { type: "shutdown" };

/** Messages to the main thread. */
export type FromWorker =
  /** Sent when listening starts and whenever the SYN maps open or close. */
  | { type: "status"; listening: boolean; synReady: boolean }
  | { type: "failed"; error: string }
  | { type: "metrics"; id: number; json: unknown[] }
  | { type: "stopped" };

function send(msg: FromWorker) {
  self.postMessage(msg);
}

interface Running {
  config: Config;
  log: Logger;
  metrics: ProxyMetrics;
  listeners: Listener[];
  connections: ConnectionTable;
  server: InternalServer;
  upstream: Upstream;
  certs?: CertificateStore;
  syn?: SynSource;
  timers: ReturnType<typeof setInterval>[];
  handler: HandlerDeps;
  listenerDeps: ListenerDeps;
  health: HealthChecker;
}

let running: Running | undefined;
/** A reload that arrived while the worker was starting, applied once it has. */
let pendingReload: Config | undefined;

/**
 * What a configuration decides per request: routes, admission rules and backend health. `previous`
 * hands the health of known backends over to a reloaded configuration.
 */
function requestRules(config: Config, metrics: ProxyMetrics, log: Logger, previous?: HealthChecker) {
  const onChange = (backend: string, healthy: boolean) =>
    metrics.backendHealthy.set({ backend }, healthy ? 1 : 0);
  const health = new HealthChecker(config.backends, onChange, log, previous);
  return { router: new Router(config, (a) => health.healthy(a)), policy: new RequestPolicy(config), health };
}

async function start(msg: Extract<ToWorker, { type: "start" }>): Promise<Running> {
  const { config } = msg;
  const log = createLogger(`proxy.worker.${msg.index}`, config.logging.level);
  const metrics = new ProxyMetrics();
  const connections = new ConnectionTable();
  const upstream = new Upstream(config.timeout.upstream_secs, config.timeout.upstream_connect_secs);
  const onError = (error: unknown) => {
    log.error("request handler failed", { error: String(error) });
    return new Response("Internal Server Error\n", { status: 500 });
  };
  const { router, policy, health } = requestRules(config, metrics, log);
  const handler: HandlerDeps = {
    router,
    policy,
    connections,
    upstream,
    metrics,
    log,
  };
  const certs = config.listen.addrs.length > 0 ? await openCertificates(config.tls, log, metrics) : undefined;
  const syn = msg.pinPath === undefined ? undefined : await openSynSource(msg.pinPath, log);
  // Created after the awaits above: its restarts update `deps`, which must exist by then.
  const serveRequest = createHandler(handler);
  const server = new InternalServer(
    () => Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {}, onError }, serveRequest),
    (port, error) => {
      deps.internalPort = port;
      log.error("the internal server stopped accepting; serving again on a new port", {
        error: String(error),
        port,
      });
    },
  );
  const deps: ListenerDeps = {
    config,
    certs,
    connections,
    trustedProxies: handler.policy.trustedProxies,
    limit: new ConnectionLimit(msg.connections),
    internalPort: server.port,
    syn,
    metrics,
    log,
  };
  const listeners = [
    ...config.listen.addrs.map((a) => new Listener(parseAddress(a)!, "tls", msg.reusePort, deps)),
    ...config.listen.plain_addrs.map((a) => new Listener(parseAddress(a)!, "plain", msg.reusePort, deps)),
  ];
  for (const listener of listeners) listener.serve();

  const idleMs = config.timeout.idle_secs * 1000;
  const timers = [
    setInterval(() => {
      const slowHeads = connections.closeIdle(idleMs);
      if (slowHeads > 0) metrics.badClientInput.inc({ kind: "slow_request_head" }, slowHeads);
    }, Math.min(1000, idleMs / 4)),
    // The handler's policy, not this one: a reload replaces it.
    setInterval(() => handler.policy.sweep(), 10_000),
  ];
  let synReady = syn?.ready() ?? false;
  send({ type: "status", listening: true, synReady });
  if (syn !== undefined) {
    timers.push(setInterval(() => {
      if (syn.ready() === synReady) return;
      synReady = syn.ready();
      send({ type: "status", listening: true, synReady });
    }, 250));
  }
  return {
    config,
    log,
    metrics,
    listeners,
    connections,
    server,
    upstream,
    certs,
    syn,
    timers,
    handler,
    listenerDeps: deps,
    health,
  };
}

/**
 * Switches to the dynamic parts of `config`: requests that started keep the rules they started with,
 * the next ones get the new ones. Backends keep their known health.
 */
function reload(r: Running, config: Config) {
  const next = requestRules(config, r.metrics, r.log, r.health);
  r.health.stop();
  const kept = new Set(config.backends.map((b) => b.address));
  for (const { address } of r.config.backends) {
    if (!kept.has(address)) r.metrics.backendHealthy.remove({ backend: address });
  }
  Object.assign(r, { config, health: next.health });
  Object.assign(r.handler, { router: next.router, policy: next.policy });
  Object.assign(r.listenerDeps, { config, trustedProxies: next.policy.trustedProxies });
  r.log.info("configuration applied");
}

/**
 * Stops accepting, lets the internal server finish the requests in flight (it closes idle keep-alive
 * connections and sends HTTP/2 GOAWAY), waits for the relays to deliver the last bytes, and closes
 * whatever is left after `shutdown_secs`.
 */
async function shutdown(r: Running) {
  const until = performance.now() + r.config.timeout.shutdown_secs * 1000;
  for (const listener of r.listeners) listener.stopAccepting();
  for (const timer of r.timers) clearInterval(timer);
  r.health.stop();
  r.certs?.stop();
  // A connection accepted just before the signal may still be in its handshake, or its first request may
  // still be on its way through the relay: the server's shutdown would close it as idle and lose that
  // request. Give such connections until the handshake timeout to reach the handler.
  const grace = Math.min(until, performance.now() + r.config.timeout.handshake_secs * 1000);
  while (
    performance.now() < grace &&
    (r.listeners.some((l) => l.handshaking > 0) || r.connections.awaitingFirstRequest() > 0)
  ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  for (const listener of r.listeners) listener.close();
  let deadline: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    r.server.shutdown().then(() => r.connections.empty()),
    new Promise((resolve) => deadline = setTimeout(resolve, Math.max(0, until - performance.now()))),
  ]);
  clearTimeout(deadline);
  r.connections.closeAll();
  r.upstream.close();
  r.syn?.close();
  r.log.info("worker stopped");
  send({ type: "stopped" });
}

self.onmessage = async (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  switch (msg.type) {
    case "start":
      try {
        running = await start(msg);
        if (pendingReload !== undefined) reload(running, pendingReload);
      } catch (err) {
        send({ type: "failed", error: err instanceof Error ? err.message : String(err) });
      }
      break;
    case "metrics":
      send({
        type: "metrics",
        id: msg.id,
        json: running ? await running.metrics.registry.getMetricsAsJSON() : [],
      });
      break;
    case "reload":
      if (running) reload(running, msg.config);
      else pendingReload = msg.config;
      break;
    case "shutdown":
      if (running) await shutdown(running);
      else send({ type: "stopped" });
      break;
  }
};
