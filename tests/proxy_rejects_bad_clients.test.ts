/**
 * Hostile or broken clients are closed within the handshake timeout and counted by kind, while an
 * honest client on the same proxy keeps being served; the connection limit turns extra connections away.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import tls from "node:tls";
import { parseEchoes, type Proxy, routeAllTo, run, startEcho, startProxy } from "./support/proxy_harness.ts";

const HANDSHAKE_SECS = 1;
/** How long a bad connection may stay open: the handshake timeout plus slack for a loaded machine. */
const CLOSE_DEADLINE_MS = (HANDSHAKE_SECS + 4) * 1000;

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../../shared/fingerprint-vectors/ja4_vectors.json", import.meta.url)),
) as Array<{ client_hello_record_hex: string }>;
const CLIENT_HELLO = Buffer.from(vectors[0].client_hello_record_hex, "hex");
const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function bytes(...parts: Array<Uint8Array | number[] | string>): Uint8Array {
  return Buffer.concat(parts.map((p) => typeof p === "string" ? Buffer.from(p) : Buffer.from(p)));
}

function deadline<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: still open after ${CLOSE_DEADLINE_MS} ms`)),
      CLOSE_DEADLINE_MS,
    );
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

/** Sends `payload` on a raw TCP connection (then half-closes if asked) and waits for the proxy to close it. */
async function rawClient(port: number, payload: Uint8Array, what: string, halfClose = false): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    if (payload.length > 0) await conn.write(payload);
    if (halfClose) await conn.closeWrite();
    await deadline(
      what,
      (async () => {
        const buf = new Uint8Array(4096);
        try {
          while (await conn.read(buf) !== null);
        } catch {
          // reset by the proxy: closed too
        }
      })(),
    );
  } finally {
    conn.close();
  }
}

/** Completes a TLS handshake offering only h2, sends `payload`, and waits for the proxy to close. */
function tlsClient(port: number, payload: Uint8Array, what: string): Promise<void> {
  const socket = tls.connect({ host: "127.0.0.1", port, ALPNProtocols: ["h2"], rejectUnauthorized: false });
  socket.on("secureConnect", () => socket.write(payload));
  socket.on("data", () => {});
  socket.on("error", () => {});
  return deadline(what, new Promise<void>((r) => socket.on("close", () => r()))).finally(() =>
    socket.destroy()
  );
}

/** Honest HTTP/2 requests, one after another, until `stop` settles; returns how many failed. */
async function honestTraffic(
  proxy: Proxy,
  stop: Promise<unknown>,
): Promise<{ ok: number; failed: string[] }> {
  let done = false;
  stop.finally(() => done = true);
  const result = { ok: 0, failed: [] as string[] };
  for (let i = 0; i < 500 && !done; i++) {
    const r = await run(["curl", "-sk", "--http2", proxy.url("/honest")]);
    const [echo] = parseEchoes(r.stdout);
    if (r.code === 0 && echo?.path === "/honest" && echo.headers["x-tls-ja4"]) result.ok++;
    else result.failed.push(`exit ${r.code}: ${r.stderr}`);
  }
  return result;
}

Deno.test("bad client input is closed within the handshake timeout, counted, and harms no one else", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy({
    ...routeAllTo(echo.address),
    timeout: { handshake_secs: HANDSHAKE_SECS },
  });

  const oversizedHeader = [0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x00, 0x00, 0x03, 0x03];
  const bad = Promise.all([
    rawClient(proxy.port, bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "plain HTTP on the TLS port"),
    rawClient(
      proxy.port,
      bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
      "a TLS alert instead of a hello",
    ),
    rawClient(proxy.port, CLIENT_HELLO.subarray(0, 100), "a truncated ClientHello", true),
    rawClient(proxy.port, bytes(oversizedHeader), "a ClientHello over 64 KiB"),
    rawClient(proxy.port, CLIENT_HELLO.subarray(0, 100), "a client stalling mid-ClientHello"),
    rawClient(proxy.port, new Uint8Array(0), "a client that sends nothing"),
    rawClient(proxy.plainPort, bytes(PREFACE, "garbage garbage garbage"), "h2c preface then garbage"),
    tlsClient(
      proxy.port,
      bytes(PREFACE, [0, 0, 5, 4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]),
      "h2 preface then a bad frame",
    ),
  ]);
  const honest = await honestTraffic(proxy, bad);
  await bad;

  assert.deepEqual(honest.failed, [], "the honest client was never refused");
  assert.ok(honest.ok > 0, "the honest client ran alongside");
  const counted = (kind: string, n: number) =>
    proxy.metricSettles("huginn_bad_client_input_total", `kind="${kind}"`, n);
  assert.equal(await counted("garbage_client_hello", 1), 1);
  assert.equal(await counted("tls_alert", 1), 1);
  assert.equal(await counted("truncated_client_hello", 1), 1);
  assert.equal(await counted("oversized_client_hello", 1), 1);
  assert.equal(await counted("handshake_timeout", 2), 2);
  assert.equal(await counted("bad_h2_preface", 2), 2);
  assert.equal(await proxy.metric("huginn_tls_handshakes_total", 'result="ok"'), honest.ok + 1);
  assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
});

Deno.test("a client that refuses the certificate fails its handshake and is counted", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy(routeAllTo(echo.address));
  const r = await run(["curl", "-sS", "--http2", proxy.url("/")]);
  assert.notEqual(r.code, 0, "curl must reject the self-signed certificate");
  assert.equal(await proxy.metricSettles("huginn_tls_handshakes_total", 'result="error"', 1), 1);
});

Deno.test("connections over security.max_connections are closed at once and counted", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy({
    ...routeAllTo(echo.address),
    security: { max_connections: 2 },
    timeout: { handshake_secs: 30 },
  });
  const held = [
    await Deno.connect({ hostname: "127.0.0.1", port: proxy.port }),
    await Deno.connect({ hostname: "127.0.0.1", port: proxy.plainPort }),
  ];
  try {
    assert.equal(await proxy.metricSettles("huginn_connections_active", "", 2), 2);
    // The third one is closed before the handshake timeout could have done it.
    await rawClient(proxy.port, bytes(CLIENT_HELLO), "a connection over the limit");
    assert.equal(
      await proxy.metricSettles("huginn_connections_rejected_total", 'reason="limit_exceeded"', 1),
      1,
    );
  } finally {
    for (const conn of held) conn.close();
  }
  assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
  const r = await run(["curl", "-sk", proxy.url("/after")]);
  assert.equal(parseEchoes(r.stdout)[0]?.path, "/after", "served again once the held connections closed");
});
