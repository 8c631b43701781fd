/**
 * The proxy's Prometheus metrics, named as huginn-proxy names them so existing dashboards keep working.
 * Each worker owns a `ProxyMetrics`; the main process merges the workers' snapshots with
 * `aggregateMetrics` for `/metrics`.
 *
 * @module
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry } from "prom-client";
import { createRegistry, registerProcessMetrics } from "../shared/metrics.ts";
import { H2_ERROR_CODES } from "./h2_frames.ts";

/** Outcomes of looking up a connection's SYN; `stale` is a record older than `tcp_max_age_ms`. */
export const TCP_SYN_REASONS = ["hit", "miss", "malformed", "stale"] as const;
/** The fingerprint kinds whose extraction is timed. */
export const FINGERPRINT_KINDS = ["tls", "http2", "tcp"] as const;
/** How a request to a backend can fail: no connection (502), no answer in time (504), bad answer. */
export const BACKEND_ERROR_KINDS = ["connect", "timeout", "protocol"] as const;
/** TLS handshake outcomes. */
export const TLS_HANDSHAKE_RESULTS = ["ok", "error"] as const;
/**
 * Why a TLS handshake failed: `unknown_sni` (refused by `tls.strict_sni`), `incompatible` (no common
 * version, cipher suite or group), `client_alert` (the client gave up, e.g. on the certificate),
 * `closed` (the client closed), `timeout` (`timeout.handshake_secs`), `other`.
 */
export const TLS_HANDSHAKE_ERROR_KINDS = [
  "unknown_sni",
  "incompatible",
  "client_alert",
  "closed",
  "timeout",
  "other",
] as const;
export type TlsHandshakeErrorKind = typeof TLS_HANDSHAKE_ERROR_KINDS[number];
/** Outcomes of re-reading a changed certificate; `error` keeps the previous one. */
export const TLS_RELOAD_RESULTS = ["ok", "error"] as const;
/** The error codes of a server GOAWAY, by their RFC 9113 §7 names; `UNKNOWN` for any other code. */
export const GOAWAY_ERROR_CODES = [...H2_ERROR_CODES, "UNKNOWN"] as const;
/**
 * Why the proxy itself closed a client connection: `idle` (no request started for `timeout.idle_secs`)
 * or `shutdown` (still open when the drain's `timeout.shutdown_secs` ran out).
 */
export const CONNECTION_CLOSE_REASONS = ["idle", "shutdown"] as const;
export type ConnectionCloseReason = typeof CONNECTION_CLOSE_REASONS[number];

/** Request latency from a few milliseconds up to the default upstream timeout. */
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Fingerprint extraction takes microseconds; the default buckets would put everything in the first. */
const EXTRACTION_BUCKETS = [1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2];

/** One process's metric families, registered in their own registry. */
export class ProxyMetrics {
  /** Holds every family below, plus `huginn_build_info`. */
  readonly registry: Registry = createRegistry("huginn");

  /** Routed requests; `route` is `RouteMatch.route`, `protocol` the HTTP version (`HTTP/1.1`, `HTTP/2`). */
  readonly requests = new Counter({
    name: "huginn_requests_total",
    help: "Requests matched to a route and forwarded, by method, status code, protocol and route.",
    labelNames: ["method", "status_code", "protocol", "route"] as const,
    registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: "huginn_requests_duration_seconds",
    help: "Duration of routed requests, from the request head to the response head.",
    labelNames: ["method", "status_code", "protocol", "route"] as const,
    buckets: REQUEST_BUCKETS,
    registers: [this.registry],
  });
  readonly connectionsActive = new Gauge({
    name: "huginn_connections_active",
    help: "Client connections currently open.",
    registers: [this.registry],
  });
  /** `reason`: `limit_exceeded` when `security.max_connections` is reached, or `shutting_down`. */
  readonly connectionsRejected = new Counter({
    name: "huginn_connections_rejected_total",
    help: "Client connections closed on accept, by reason.",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  /**
   * Closes the internal HTTP server decides (after a response, a GOAWAY, the client's EOF) and failed
   * handshakes are not counted here.
   */
  readonly connectionsClosed = new Counter({
    name: "huginn_connections_closed_total",
    help: "Client connections the proxy closed itself, by reason (idle, shutdown).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly tlsHandshakes = new Counter({
    name: "huginn_tls_handshakes_total",
    help: "TLS handshakes, by result (ok or error).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  /** `cipher` is the IANA suite name; `resumed` is `true` for a resumed session. */
  readonly tlsNegotiated = new Counter({
    name: "huginn_tls_negotiated_total",
    help: "Successful TLS handshakes, by protocol version, cipher suite and whether the session resumed.",
    labelNames: ["version", "cipher", "resumed"] as const,
    registers: [this.registry],
  });
  readonly tlsHandshakeErrors = new Counter({
    name: "huginn_tls_handshake_errors_total",
    help: "Failed TLS handshakes, by kind (unknown_sni, incompatible, client_alert, closed, timeout, other).",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  /** Counted by every worker: each one watches the files itself. */
  readonly tlsCertificateReloads = new Counter({
    name: "huginn_tls_certificate_reloads_total",
    help: "Certificates re-read after their files changed, by result (ok, or error: previous one kept).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly tlsFingerprints = new Counter({
    name: "huginn_tls_fingerprints_extracted_total",
    help: "TLS ClientHellos fingerprinted (JA4 family and JA3).",
    registers: [this.registry],
  });
  readonly http2Fingerprints = new Counter({
    name: "huginn_http2_fingerprints_extracted_total",
    help: "HTTP/2 connections fingerprinted (Akamai).",
    registers: [this.registry],
  });
  readonly tcpSynFingerprints = new Counter({
    name: "huginn_tcp_syn_fingerprints_total",
    help: "TCP SYN fingerprint lookups, by reason (hit, miss, malformed, stale).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly fingerprintDuration = new Histogram({
    name: "huginn_fingerprint_extraction_duration_seconds",
    help: "Time to compute a fingerprint, by kind (tls, http2, tcp).",
    labelNames: ["kind"] as const,
    buckets: EXTRACTION_BUCKETS,
    registers: [this.registry],
  });
  /** `header` is the lower-case header name, one increment per header a client sent. */
  readonly spoofingAttempts = new Counter({
    name: "huginn_fingerprint_spoofing_attempts_total",
    help: "Requests that carried a fingerprint header of the client's own, by header.",
    labelNames: ["header"] as const,
    registers: [this.registry],
  });
  readonly backendRequests = new Counter({
    name: "huginn_backend_requests_total",
    help: "Requests sent to backends, by backend address.",
    labelNames: ["backend"] as const,
    registers: [this.registry],
  });
  readonly backendErrors = new Counter({
    name: "huginn_backend_errors_total",
    help: "Failed backend requests, by backend address and kind (connect, timeout, protocol).",
    labelNames: ["backend", "kind"] as const,
    registers: [this.registry],
  });
  /**
   * `kind` names what was wrong: e.g. `garbage_client_hello`, `truncated_client_hello`,
   * `oversized_client_hello`, `bad_h2_preface`, `handshake_timeout`.
   */
  readonly badClientInput = new Counter({
    name: "huginn_bad_client_input_total",
    help: "Connections closed because of malformed or slow client input, by kind.",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });
  /**
   * One per HTTP/2 connection the internal server ended with GOAWAY, by the error code of its first one:
   * `NO_ERROR` is a graceful shutdown, any other code a refused client (e.g. `ENHANCE_YOUR_CALM` for a
   * rapid reset or a CONTINUATION flood).
   */
  readonly http2Goaways = new Counter({
    name: "huginn_http2_goaway_sent_total",
    help: "HTTP/2 connections ended with a GOAWAY from the server, by its error code (RFC 9113 name).",
    labelNames: ["error_code"] as const,
    registers: [this.registry],
  });
  /** `scope`: `global` (`security.ip_filter`) or `route` (a route's `ip_filter`). */
  readonly ipFilterRejections = new Counter({
    name: "huginn_ip_filter_rejections_total",
    help: "Requests refused with 403 by an IP allow/deny list, by scope (global or route).",
    labelNames: ["scope"] as const,
    registers: [this.registry],
  });
  readonly noHealthyBackend = new Counter({
    name: "huginn_no_healthy_backend_total",
    help: "Requests answered 502 at once because every backend of their route was unhealthy, by route.",
    labelNames: ["route"] as const,
    registers: [this.registry],
  });
  /** 1 while the backend passes its health checks (always 1 without checks); the minimum over workers. */
  readonly backendHealthy = new Gauge({
    name: "huginn_backend_healthy",
    help: "Whether a backend is in the rotation (1) or failed its health checks (0), by backend address.",
    labelNames: ["backend"] as const,
    aggregator: "min",
    registers: [this.registry],
  });
  readonly rateLimit = new Counter({
    name: "huginn_rate_limit_total",
    help: "Rate-limited requests, by result (allowed, or rejected with 429).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  constructor() {
    // Series with a fixed set of label values start at zero, so that rate() sees their first increment.
    for (const reason of TCP_SYN_REASONS) this.tcpSynFingerprints.inc({ reason }, 0);
    for (const result of TLS_HANDSHAKE_RESULTS) this.tlsHandshakes.inc({ result }, 0);
    for (const kind of TLS_HANDSHAKE_ERROR_KINDS) this.tlsHandshakeErrors.inc({ kind }, 0);
    for (const result of TLS_RELOAD_RESULTS) this.tlsCertificateReloads.inc({ result }, 0);
    for (const error_code of GOAWAY_ERROR_CODES) this.http2Goaways.inc({ error_code }, 0);
    for (const reason of CONNECTION_CLOSE_REASONS) this.connectionsClosed.inc({ reason }, 0);
    for (const kind of FINGERPRINT_KINDS) this.fingerprintDuration.zero({ kind });
  }
}

/** How a configuration reload ended. */
export const CONFIG_RELOAD_RESULTS = ["applied", "unchanged", "invalid", "restart_required"] as const;

/** The main thread's own metrics: configuration reloads. Merged into `/metrics` with the workers'. */
/** The main thread's own families: configuration reloads, and the process-wide `process_*` families. */
export class ConfigMetrics {
  /** Without build info: the workers report it. */
  readonly registry: Registry = new Registry();
  readonly reloads = new Counter({
    name: "huginn_config_reloads_total",
    help: "Configuration reloads, by result (applied, unchanged, invalid, restart_required).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly lastReload = new Gauge({
    name: "huginn_config_last_reload_timestamp_seconds",
    help: "Unix time of the last configuration applied (at start or by a reload).",
    registers: [this.registry],
  });
  readonly hashInfo = new Gauge({
    name: "huginn_config_hash_info",
    help: "The hash of the configuration in force; the value is always 1.",
    labelNames: ["hash"] as const,
    registers: [this.registry],
  });

  constructor() {
    for (const result of CONFIG_RELOAD_RESULTS) this.reloads.inc({ result }, 0);
    registerProcessMetrics(this.registry);
  }

  /** Records that the configuration with `hash` is now in force. */
  applied(hash: string): void {
    this.hashInfo.reset();
    this.hashInfo.set({ hash }, 1);
    this.lastReload.set(Date.now() / 1000);
  }
}

/**
 * Merges the `registry.getMetricsAsJSON()` snapshots of several workers into one Prometheus text
 * exposition: counters, histograms and gauges are summed per label set.
 */
export async function aggregateMetrics(jsons: unknown[][]): Promise<string> {
  return await AggregatorRegistry.aggregate(jsons).metrics();
}
