/**
 * Slow clients cannot hold the proxy: a stalled TLS handshake is closed after `timeout.handshake_secs`
 * and counted, an idle keep-alive connection after `timeout.idle_secs`, a request whose body stops
 * arriving is answered after `timeout.upstream_secs`; the connection cap (`security.max_connections`, or
 * what fits in the open-files limit) holds with up to 10,000 idle connections open (30% relayed from the
 * plain listener, the rest in their TLS handshake), at bounded memory, and the proxy serves again once
 * they are gone. Slowloris (a header byte at a time) is closed by the idle timeout and counted.
 */
import assert from "node:assert/strict";
import { connectionsThatFit } from "../proxy/file_budget.ts";
import { type AttackConn, rawConnect, rssKiB, tlsConnect } from "./support/attack.ts";
import { parseEchoes, type Proxy, routeAllTo, run, startEcho, startProxy } from "./support/proxy_harness.ts";

const HANDSHAKE_SECS = 1;
const IDLE_SECS = 2;
const UPSTREAM_SECS = 2;
/** The longest of the timeouts above plus slack for a loaded machine. */
const CLOSE_DEADLINE_MS = 10_000;
const IDLE_CONNECTIONS = 10_000;
/** 10,000 connections cost buffers and state in the kernel and the proxy; this bounds the proxy's part. */
const IDLE_MEMORY_BOUND_KIB = 256 * 1024;
const enc = new TextEncoder();

const TIMEOUTS = { handshake_secs: HANDSHAKE_SECS, idle_secs: IDLE_SECS, upstream_secs: UPSTREAM_SECS };

/** Writes `head`, then one byte of `drip` every 200 ms until the proxy closes or `ms` have passed. */
async function dripUntilClosed(conn: AttackConn, head: string, drip: string, ms: number) {
  let closed = false;
  const received = conn.received(ms).then((r) => (closed = r.closed, r));
  await conn.write(enc.encode(head));
  const end = Date.now() + ms;
  for (let i = 0; !closed && Date.now() < end; i++) {
    await conn.write(enc.encode(drip[i % drip.length]));
    await new Promise((r) => setTimeout(r, 200));
  }
  const r = await received;
  return { closed: r.closed, text: new TextDecoder().decode(r.bytes) };
}

function connect(proxy: Proxy, transport: "tls" | "plain"): Promise<AttackConn> {
  return transport === "tls" ? tlsConnect(proxy.port, ["http/1.1"]) : rawConnect(proxy.plainPort);
}

Deno.test("a stalled TLS handshake is closed after handshake_secs and counted", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy({ ...routeAllTo(echo.address), timeout: TIMEOUTS });
  using silent = await rawConnect(proxy.port);
  using stalled = await rawConnect(proxy.port);
  await stalled.write(new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // a hello that never ends
  assert.ok((await silent.received(CLOSE_DEADLINE_MS)).closed);
  assert.ok((await stalled.received(CLOSE_DEADLINE_MS)).closed);
  assert.equal(await proxy.metricSettles("huginn_bad_client_input_total", 'kind="handshake_timeout"', 2), 2);
});

Deno.test("an idle keep-alive connection is closed after idle_secs", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy({ ...routeAllTo(echo.address), timeout: TIMEOUTS });
  for (const transport of ["tls", "plain"] as const) {
    using conn = await connect(proxy, transport);
    await conn.write(enc.encode("GET /once HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    const r = await conn.received(CLOSE_DEADLINE_MS);
    assert.ok(r.closed, transport);
    assert.equal(parseEchoes(new TextDecoder().decode(r.bytes))[0]?.path, "/once");
  }
  assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
});

Deno.test("a request body that stops arriving is answered 408 after upstream_secs", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy({ ...routeAllTo(echo.address), timeout: TIMEOUTS });
  for (const transport of ["tls", "plain"] as const) {
    using conn = await connect(proxy, transport);
    await conn.write(enc.encode("POST /slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nabc"));
    await conn.answered(CLOSE_DEADLINE_MS);
    const { bytes } = await conn.received(100);
    // The client, not the backend, is late: 408 Request Timeout, as nginx answers a stalled body.
    assert.match(new TextDecoder().decode(bytes), /^HTTP\/1\.1 408 /, transport);
  }
});

for (const transport of ["tls", "plain"] as const) {
  Deno.test({
    name: `slowloris over ${transport} (a header byte every 200 ms) is closed and counted`,
    async fn() {
      await using echo = await startEcho();
      await using proxy = await startProxy({ ...routeAllTo(echo.address), timeout: TIMEOUTS });
      using conn = await connect(proxy, transport);
      const r = await dripUntilClosed(conn, "GET / HTTP/1.1\r\nHost: localhost\r\n", "X-a: b\r\n", 20_000);
      assert.ok(r.closed, "still open after 20 s");
      assert.ok((await proxy.metric("huginn_bad_client_input_total", 'kind="slow_request_head"')) > 0);
    },
  });

  Deno.test({
    name: `a slow request body over ${transport} gets 408, is closed, and is not charged to the backend`,
    async fn() {
      await using echo = await startEcho();
      await using proxy = await startProxy({ ...routeAllTo(echo.address), timeout: TIMEOUTS });
      using conn = await connect(proxy, transport);
      const head = "POST /slow HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n";
      const r = await dripUntilClosed(conn, head, "a", 20_000);
      assert.match(r.text, /^HTTP\/1\.1 408 /);
      assert.ok(r.closed, "still open after 20 s");
      assert.ok((await proxy.metric("huginn_bad_client_input_total", 'kind="slow_request_body"')) > 0);
      assert.equal(
        await proxy.metric("huginn_backend_errors_total", `backend="${echo.address}",kind="timeout"`),
        0,
      );
    },
  });
}

/** This process's hard limit of open files (the proxy inherits it). */
const FILE_LIMIT = Number(
  new TextDecoder().decode(
    new Deno.Command("prlimit", { args: [`--pid=${Deno.pid}`, "--nofile", "-o", "HARD", "--noheadings"] })
      .outputSync().stdout,
  ).trim(),
);
/**
 * The connections the proxy admits under that limit: it counts 3 descriptors for each (client, relay,
 * internal server side) next to a reserve, and lowers `security.max_connections` to what fits.
 */
const ADMITTED = Math.min(IDLE_CONNECTIONS, connectionsThatFit(FILE_LIMIT, 1));
const PLAIN_SHARE = 0.3;

Deno.test({
  name: `${ADMITTED} idle connections: the connection cap holds, memory stays bounded, service resumes`,
  ignore: ADMITTED < 5_000,
  async fn() {
    // The soft limit up to the hard one, for this process and (inherited) the proxy.
    await run(["prlimit", `--pid=${Deno.pid}`, `--nofile=${FILE_LIMIT}:${FILE_LIMIT}`]);
    await using echo = await startEcho();
    await using proxy = await startProxy({
      ...routeAllTo(echo.address),
      // Long timeouts: the connections must stay open while they are counted.
      timeout: { handshake_secs: 300, idle_secs: 300 },
      security: { max_connections: IDLE_CONNECTIONS },
    });
    const rssBefore = await rssKiB(proxy.child.pid);
    const held: Deno.TcpConn[] = [];
    try {
      // In batches, so that the listen backlog never overflows.
      for (let i = 0; i < ADMITTED; i += 250) {
        held.push(
          ...await Promise.all(
            Array.from(
              { length: Math.min(250, ADMITTED - i) },
              (_, j) =>
                Deno.connect({
                  hostname: "127.0.0.1",
                  port: (i + j) % 10 < 10 * PLAIN_SHARE ? proxy.plainPort : proxy.port,
                }),
            ),
          ),
        );
      }
      const active = await proxy.metricSettles("huginn_connections_active", "", ADMITTED);
      assert.equal(active, ADMITTED);
      const rssHeld = await rssKiB(proxy.child.pid);
      console.log(`${ADMITTED} idle connections: proxy RSS ${rssBefore} KiB -> ${rssHeld} KiB`);
      assert.ok(rssHeld - rssBefore < IDLE_MEMORY_BOUND_KIB, `grew by ${rssHeld - rssBefore} KiB`);

      // One over the limit: closed at once, counted.
      using extra = await rawConnect(proxy.port);
      assert.ok((await extra.received(CLOSE_DEADLINE_MS)).closed);
      const rejected = await proxy.metricSettles(
        "huginn_connections_rejected_total",
        'reason="limit_exceeded"',
        1,
      );
      assert.equal(rejected, 1);
    } finally {
      for (const conn of held) conn.close();
    }
    assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
    const r = await run(["curl", "-sk", "--http2", proxy.url("/after")]);
    assert.equal(parseEchoes(r.stdout)[0]?.path, "/after", "served again once the idle connections closed");
  },
});
