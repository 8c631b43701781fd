/**
 * One proxy worker (a Web Worker, one per core): binds every listener with `SO_REUSEPORT` so the
 * kernel spreads connections over the workers, runs the internal HTTP server that the listeners relay
 * into, and answers the main thread's status, metrics and shutdown messages.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { createLogger, type Logger } from "../shared/log.ts";
import { type Config, parseAddress } from "./config.ts";
import { ConnectionLimit, ConnectionTable } from "./connections.ts";
import { createHandler } from "./handler.ts";
import { Listener, type ListenerDeps } from "./listener.ts";
import { ProxyMetrics } from "./metrics.ts";
import { Router } from "./router.ts";
import { openSynSource, type SynSource } from "./tcp_syn.ts";
import { type CertificateStore, watchCertificate } from "./tls_front.ts";
import { Upstream } from "./upstream.ts";

/** Messages from the main thread. */
export type ToWorker =
  | {
    type: "start";
    index: number;
    config: Config;
    /** The process-wide connection count (see `ConnectionLimit`). */
    connections: SharedArrayBuffer;
    reusePort: boolean;
    /** Where the agent pins its maps; set when `fingerprint.tcp_enabled`. */
    pinPath?: string;
  }
  | { type: "metrics"; id: number }
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
  server: Deno.HttpServer;
  upstream: Upstream;
  certs?: CertificateStore;
  syn?: SynSource;
  timers: ReturnType<typeof setInterval>[];
}

let running: Running | undefined;

async function start(msg: Extract<ToWorker, { type: "start" }>): Promise<Running> {
  const { config } = msg;
  const log = createLogger(`proxy.worker.${msg.index}`, config.logging.level);
  const metrics = new ProxyMetrics();
  const connections = new ConnectionTable();
  const upstream = new Upstream(config.timeout.upstream_secs);
  const onError = (error: unknown) => {
    log.error("request handler failed", { error: String(error) });
    return new Response("Internal Server Error\n", { status: 500 });
  };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {}, onError },
    createHandler({ router: new Router(config), connections, upstream, metrics, log }),
  );
  const certs = config.listen.addrs.length > 0
    ? await watchCertificate(config.tls.cert_path!, config.tls.key_path!, config.tls.watch_delay_secs, log)
    : undefined;
  const syn = msg.pinPath === undefined ? undefined : await openSynSource(msg.pinPath, log);
  const deps: ListenerDeps = {
    config,
    certs,
    connections,
    limit: new ConnectionLimit(msg.connections, config.security.max_connections),
    internalPort: server.addr.port,
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
  const timers = [setInterval(() => connections.closeIdle(idleMs), Math.min(1000, idleMs / 4))];
  let synReady = syn?.ready() ?? false;
  send({ type: "status", listening: true, synReady });
  if (syn !== undefined) {
    timers.push(setInterval(() => {
      if (syn.ready() === synReady) return;
      synReady = syn.ready();
      send({ type: "status", listening: true, synReady });
    }, 250));
  }
  return { config, log, metrics, listeners, connections, server, upstream, certs, syn, timers };
}

/**
 * Stops accepting, lets the internal server finish the requests in flight (it closes idle keep-alive
 * connections and sends HTTP/2 GOAWAY), waits for the relays to deliver the last bytes, and closes
 * whatever is left after `shutdown_secs`.
 */
async function shutdown(r: Running) {
  for (const listener of r.listeners) listener.close();
  for (const timer of r.timers) clearInterval(timer);
  r.certs?.stop();
  let deadline: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    r.server.shutdown().then(() => r.connections.empty()),
    new Promise((resolve) => deadline = setTimeout(resolve, r.config.timeout.shutdown_secs * 1000)),
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
    case "shutdown":
      if (running) await shutdown(running);
      else send({ type: "stopped" });
      break;
  }
};
