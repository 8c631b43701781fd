/**
 * The proxy's Prometheus metrics, named as huginn-proxy names them so existing dashboards keep working.
 * Each worker owns a `ProxyMetrics`; the main process merges the workers' snapshots with
 * `aggregateMetrics` for `/metrics`.
 *
 * @module
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, type Registry } from "prom-client";
import { createRegistry } from "../shared/metrics.ts";

/** Outcomes of looking up a connection's SYN; `stale` is a record older than `tcp_max_age_ms`. */
export const TCP_SYN_REASONS = ["hit", "miss", "malformed", "stale"] as const;
/** The fingerprint kinds whose extraction is timed. */
export const FINGERPRINT_KINDS = ["tls", "http2", "tcp"] as const;
/** How a request to a backend can fail: no connection (502), no answer in time (504), bad answer. */
export const BACKEND_ERROR_KINDS = ["connect", "timeout", "protocol"] as const;
/** TLS handshake outcomes. */
export const TLS_HANDSHAKE_RESULTS = ["ok", "error"] as const;

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
  readonly tlsHandshakes = new Counter({
    name: "huginn_tls_handshakes_total",
    help: "TLS handshakes, by result (ok or error).",
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

  constructor() {
    // Series with a fixed set of label values start at zero, so that rate() sees their first increment.
    for (const reason of TCP_SYN_REASONS) this.tcpSynFingerprints.inc({ reason }, 0);
    for (const result of TLS_HANDSHAKE_RESULTS) this.tlsHandshakes.inc({ result }, 0);
    for (const kind of FINGERPRINT_KINDS) this.fingerprintDuration.zero({ kind });
  }
}

/**
 * Merges the `registry.getMetricsAsJSON()` snapshots of several workers into one Prometheus text
 * exposition: counters, histograms and gauges are summed per label set.
 */
export async function aggregateMetrics(jsons: unknown[][]): Promise<string> {
  return await AggregatorRegistry.aggregate(jsons).metrics();
}
