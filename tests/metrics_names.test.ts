import assert from "node:assert/strict";
import { aggregateMetrics, ProxyMetrics } from "../proxy/metrics.ts";

/** `name{labels} value` lines of a Prometheus text exposition, as a map from series to value. */
function series(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/** The `# TYPE` of every family in an exposition. */
function types(text: string): Map<string, string> {
  return new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
}

/** Records one of everything, as the data path would for a request on a fresh connection. */
function recordRequest(m: ProxyMetrics): void {
  const labels = { method: "GET", status_code: 200, protocol: "HTTP/2", route: "example.com/api" };
  m.connectionsActive.inc();
  m.tlsHandshakes.inc({ result: "ok" });
  m.tlsFingerprints.inc();
  m.http2Fingerprints.inc();
  m.tcpSynFingerprints.inc({ reason: "hit" });
  m.fingerprintDuration.observe({ kind: "tls" }, 4e-6);
  m.spoofingAttempts.inc({ header: "x-tls-ja4" });
  m.backendRequests.inc({ backend: "10.0.0.1:80" });
  m.backendErrors.inc({ backend: "10.0.0.1:80", kind: "timeout" });
  m.connectionsRejected.inc({ reason: "limit_exceeded" });
  m.badClientInput.inc({ kind: "truncated_client_hello" });
  m.http2Goaways.inc({ error_code: "ENHANCE_YOUR_CALM" });
  m.connectionsClosed.inc({ reason: "idle" });
  m.requests.inc(labels);
  m.requestDuration.observe(labels, 0.02);
}

Deno.test("every family huginn-proxy dashboards chart is exposed, with its labels", async () => {
  const metrics = new ProxyMetrics();
  recordRequest(metrics);
  const text = await metrics.registry.metrics();
  assert.deepEqual(
    Object.fromEntries(types(text)),
    {
      huginn_build_info: "gauge",
      huginn_requests_total: "counter",
      huginn_requests_duration_seconds: "histogram",
      huginn_connections_active: "gauge",
      huginn_connections_rejected_total: "counter",
      huginn_connections_closed_total: "counter",
      huginn_tls_handshakes_total: "counter",
      huginn_tls_negotiated_total: "counter",
      huginn_tls_handshake_errors_total: "counter",
      huginn_tls_certificate_reloads_total: "counter",
      huginn_tls_fingerprints_extracted_total: "counter",
      huginn_http2_fingerprints_extracted_total: "counter",
      huginn_tcp_syn_fingerprints_total: "counter",
      huginn_fingerprint_extraction_duration_seconds: "histogram",
      huginn_fingerprint_spoofing_attempts_total: "counter",
      huginn_backend_requests_total: "counter",
      huginn_backend_errors_total: "counter",
      huginn_bad_client_input_total: "counter",
      huginn_http2_goaway_sent_total: "counter",
      huginn_ip_filter_rejections_total: "counter",
      huginn_no_healthy_backend_total: "counter",
      huginn_backend_healthy: "gauge",
      huginn_rate_limit_total: "counter",
    },
  );
  const values = series(text);
  const route = 'method="GET",status_code="200",protocol="HTTP/2",route="example.com/api"';
  for (
    const name of [
      `huginn_requests_total{${route}}`,
      `huginn_requests_duration_seconds_count{${route}}`,
      "huginn_connections_active",
      'huginn_connections_rejected_total{reason="limit_exceeded"}',
      'huginn_tls_handshakes_total{result="ok"}',
      "huginn_tls_fingerprints_extracted_total",
      "huginn_http2_fingerprints_extracted_total",
      'huginn_tcp_syn_fingerprints_total{reason="hit"}',
      'huginn_fingerprint_extraction_duration_seconds_count{kind="tls"}',
      'huginn_fingerprint_spoofing_attempts_total{header="x-tls-ja4"}',
      'huginn_backend_requests_total{backend="10.0.0.1:80"}',
      'huginn_backend_errors_total{backend="10.0.0.1:80",kind="timeout"}',
      'huginn_bad_client_input_total{kind="truncated_client_hello"}',
      'huginn_http2_goaway_sent_total{error_code="ENHANCE_YOUR_CALM"}',
      'huginn_connections_closed_total{reason="idle"}',
    ]
  ) {
    assert.equal(values.get(name), 1, name);
  }
  // Fixed label sets are exported at zero before anything happens.
  for (const reason of ["miss", "malformed", "stale"]) {
    assert.equal(values.get(`huginn_tcp_syn_fingerprints_total{reason="${reason}"}`), 0, reason);
  }
  assert.equal(values.get('huginn_tls_handshakes_total{result="error"}'), 0);
  assert.equal(values.get('huginn_fingerprint_extraction_duration_seconds_count{kind="tcp"}'), 0);
  for (const code of ["NO_ERROR", "PROTOCOL_ERROR", "COMPRESSION_ERROR", "HTTP_1_1_REQUIRED", "UNKNOWN"]) {
    assert.equal(values.get(`huginn_http2_goaway_sent_total{error_code="${code}"}`), 0, code);
  }
  assert.equal(values.get('huginn_connections_closed_total{reason="shutdown"}'), 0);
});

Deno.test("extraction durations are bucketed at microsecond scale", async () => {
  const metrics = new ProxyMetrics();
  metrics.fingerprintDuration.observe({ kind: "http2" }, 3e-6);
  metrics.fingerprintDuration.observe({ kind: "http2" }, 40e-6);
  const values = series(await metrics.registry.metrics());
  const bucket = (le: string) =>
    values.get(`huginn_fingerprint_extraction_duration_seconds_bucket{le="${le}",kind="http2"}`);
  assert.equal(bucket("0.0000025"), 0);
  assert.equal(bucket("0.000005"), 1);
  assert.equal(bucket("0.000025"), 1);
  assert.equal(bucket("0.00005"), 2);
});

Deno.test("aggregating two workers sums counters, gauges and histograms per label set", async () => {
  const [a, b] = [new ProxyMetrics(), new ProxyMetrics()];
  recordRequest(a);
  recordRequest(b);
  recordRequest(b);
  b.backendRequests.inc({ backend: "10.0.0.2:80" });
  const text = await aggregateMetrics([
    await a.registry.getMetricsAsJSON(),
    await b.registry.getMetricsAsJSON(),
  ]);
  const values = series(text);
  const route = 'method="GET",status_code="200",protocol="HTTP/2",route="example.com/api"';
  assert.equal(values.get(`huginn_requests_total{${route}}`), 3);
  assert.equal(values.get(`huginn_requests_duration_seconds_count{${route}}`), 3);
  assert.equal(values.get(`huginn_requests_duration_seconds_bucket{le="0.025",${route}}`), 3);
  assert.equal(values.get("huginn_connections_active"), 3);
  assert.equal(values.get('huginn_backend_requests_total{backend="10.0.0.1:80"}'), 3);
  assert.equal(values.get('huginn_backend_requests_total{backend="10.0.0.2:80"}'), 1);
  assert.equal(values.get('huginn_tcp_syn_fingerprints_total{reason="hit"}'), 3);
  assert.equal(values.get('huginn_tcp_syn_fingerprints_total{reason="miss"}'), 0);
  assert.equal(types(text).get("huginn_requests_total"), "counter");
});
