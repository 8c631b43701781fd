/**
 * Hostile first bytes on the TLS listener: random bytes, random handshake bodies, truncated and
 * oversized (over 64 KiB) ClientHellos and TLS alerts are closed and counted by kind, while an honest
 * client on the same proxy sees no error and the proxy's memory stays bounded. A ClientHello that
 * arrives in 1-byte TCP segments, or fragmented over many tiny TLS records, is still fingerprinted
 * exactly as `fingerprintClientHello` fingerprints the bytes that were sent.
 */
import assert from "node:assert/strict";
import { clientHelloNeeded, fingerprintClientHello } from "../shared/fingerprint.ts";
import {
  concat,
  fragmentRecords,
  honestLoop,
  httpsOnce,
  rawConnect,
  rssKiB,
  splitter,
  tlsRecord,
} from "./support/attack.ts";
import { parseEchoes, type Proxy, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";

/** Long enough for a ClientHello trickled a byte at a time (~1 s), short enough to bound the test. */
const HANDSHAKE_SECS = 5;
/** How long a bad connection may stay open: the handshake timeout plus slack for a loaded machine. */
const CLOSE_DEADLINE_MS = (HANDSHAKE_SECS + 8) * 1000;
const MEMORY_BOUND_KIB = 64 * 1024;
const RANDOM_CLIENTS = 40;

const vectors = JSON.parse(
  await Deno.readTextFile(new URL("../../shared/fingerprint-vectors/ja4_vectors.json", import.meta.url)),
) as Array<{ client_hello_record_hex: string }>;
const HELLO = Uint8Array.from(vectors[0].client_hello_record_hex.match(/../g)!, (h) => parseInt(h, 16));

/** A small deterministic generator (xorshift32), so that a failure can be replayed. */
function random(seed: number): (n: number) => Uint8Array {
  let x = seed;
  return (n) =>
    Uint8Array.from({ length: n }, () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x & 0xff;
    });
}

/** Sends `payload` (then half-closes if asked) and tells whether the proxy closed before the deadline. */
async function closedAfter(port: number, payload: Uint8Array, halfClose = false): Promise<boolean> {
  using conn = await rawConnect(port);
  await conn.write(payload);
  if (halfClose) await conn.closeWrite();
  return (await conn.received(CLOSE_DEADLINE_MS)).closed;
}

function badInput(proxy: Proxy, kind: string): Promise<number> {
  return proxy.metric("huginn_bad_client_input_total", `kind="${kind}"`);
}

Deno.test("hostile ClientHellos are closed and counted by kind; an honest client sees no error", async (t) => {
  await using echo = await startEcho();
  await using proxy = await startProxy({
    ...routeAllTo(echo.address),
    timeout: { handshake_secs: HANDSHAKE_SECS },
  });
  const rssBefore = await rssKiB(proxy.child.pid);
  let attacksDone!: () => void;
  const honest = honestLoop(proxy.url("/honest"), new Promise<void>((r) => attacksDone = r));
  const bytes = random(0x5eed);
  try {
    await t.step("random bytes (not a TLS record) are garbage", async () => {
      const closed = await Promise.all(Array.from({ length: RANDOM_CLIENTS }, (_, i) => {
        const payload = bytes(1 + (i * 97) % 2048);
        // A first byte that is no TLS content type and no SSLv2 record header.
        payload[0] = 0x20 + (payload[0] & 0x3f);
        return closedAfter(proxy.port, payload);
      }));
      assert.deepEqual(closed, closed.map(() => true));
      assert.equal(
        await proxy.metricSettles(
          "huginn_bad_client_input_total",
          'kind="garbage_client_hello"',
          RANDOM_CLIENTS,
        ),
        RANDOM_CLIENTS,
      );
    });

    /** ClientHello records whose header and lengths are right and whose body is random. */
    const randomHellos = () =>
      Array.from({ length: RANDOM_CLIENTS }, (_, i) => {
        const body = bytes(40 + (i * 131) % 1000);
        const n = body.length;
        return tlsRecord(0x16, concat([1, 0, n >> 8, n & 0xff], body));
      });
    const closedAll = async (payloads: Uint8Array[]) => {
      const closed = await Promise.all(payloads.map((p) => closedAfter(proxy.port, p, true)));
      assert.deepEqual(closed, closed.map(() => true));
    };

    await t.step("random ClientHello bodies fail the TLS handshake", async () => {
      const before = await proxy.metric("huginn_tls_handshakes_total", 'result="error"');
      await closedAll(randomHellos());
      const labels = 'result="error"';
      const after = await proxy.metricSettles("huginn_tls_handshakes_total", labels, before + RANDOM_CLIENTS);
      assert.equal(after, before + RANDOM_CLIENTS);
    });

    await t.step({
      name: "random ClientHello bodies are counted as malformed client input",
      async fn() {
        const kinds = ["malformed_client_hello", "truncated_client_hello"];
        const count = async () =>
          (await Promise.all(kinds.map((k) => badInput(proxy, k)))).reduce((a, b) => a + b);
        const before = await count();
        await closedAll(randomHellos());
        let after = await count();
        for (let i = 0; i < 100 && after !== before + RANDOM_CLIENTS; i++) {
          await new Promise((r) => setTimeout(r, 50));
          after = await count();
        }
        assert.equal(after, before + RANDOM_CLIENTS);
      },
    });

    await t.step("a truncated ClientHello is counted when the client half-closes", async () => {
      const before = await badInput(proxy, "truncated_client_hello");
      assert.ok(await closedAfter(proxy.port, HELLO.subarray(0, HELLO.length - 1), true));
      const kind = 'kind="truncated_client_hello"';
      assert.equal(await proxy.metricSettles("huginn_bad_client_input_total", kind, before + 1), before + 1);
    });

    await t.step("a ClientHello of over 64 KiB is refused before it is read in full", async () => {
      // A ClientHello header announcing 70,000 bytes, then those bytes in 16 KiB records.
      const total = 70_000;
      const body = concat([1, total >> 16, (total >> 8) & 0xff, total & 0xff], new Uint8Array(total));
      const records = [];
      for (let at = 0; at < body.length; at += 16384) {
        records.push(tlsRecord(0x16, body.subarray(at, at + 16384)));
      }
      assert.ok(await closedAfter(proxy.port, concat(...records)));
      const kind = 'kind="oversized_client_hello"';
      assert.equal(await proxy.metricSettles("huginn_bad_client_input_total", kind, 1), 1);
    });

    await t.step("a TLS alert instead of a ClientHello is counted as one", async () => {
      assert.ok(await closedAfter(proxy.port, tlsRecord(0x15, new Uint8Array([2, 40]), 0x0303)));
      assert.equal(await proxy.metricSettles("huginn_bad_client_input_total", 'kind="tls_alert"', 1), 1);
    });

    const ALERT = tlsRecord(0x15, new Uint8Array([2, 40]), 0x0303); // fatal handshake_failure
    /** Sends the ClientHello, then (after the server's first answer, or in the same write) an alert. */
    const helloThenAlert = async (sameWrite: boolean) => {
      const timeouts = await badInput(proxy, "handshake_timeout");
      const errors = await proxy.metric("huginn_tls_handshakes_total", 'result="error"');
      using conn = await rawConnect(proxy.port);
      if (sameWrite) await conn.write(concat(HELLO, ALERT));
      else {
        await conn.write(HELLO);
        await conn.answered(CLOSE_DEADLINE_MS);
        await conn.write(ALERT);
      }
      assert.ok((await conn.received(CLOSE_DEADLINE_MS)).closed);
      const labels = 'result="error"';
      assert.equal(await proxy.metricSettles("huginn_tls_handshakes_total", labels, errors + 1), errors + 1);
      // Closed because of the alert, not by the handshake timeout.
      assert.equal(await badInput(proxy, "handshake_timeout"), timeouts);
    };

    await t.step(
      "a fatal alert answering the ServerHello fails the handshake at once",
      () => helloThenAlert(false),
    );

    await t.step(
      "a fatal alert in the same segment as the ClientHello fails the handshake at once",
      () => helloThenAlert(true),
    );

    for (
      const [what, segment, recordSize] of [
        ["1-byte TCP segments", 1, 0],
        ["1-byte TLS records in 7-byte segments", 7, 1],
        ["50-byte TLS records", 4096, 50],
      ] as const
    ) {
      await t.step(`a ClientHello in ${what} is fingerprinted as sent`, async () => {
        await using relay = splitter(
          proxy.port,
          segment,
          (hello) => recordSize === 0 ? hello : fragmentRecords(hello, recordSize),
          clientHelloNeeded,
        );
        const response = await httpsOnce(
          relay.port,
          "GET /split HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        const [echoed] = parseEchoes(response);
        assert.ok(echoed, `no answer: ${response}`);
        const fp = fingerprintClientHello(relay.sent[0]);
        assert.ok(fp.ok, JSON.stringify(fp));
        assert.equal(echoed.headers["x-tls-ja4"], fp.value.ja4);
        assert.equal(echoed.headers["x-tls-ja4-r"], fp.value.ja4_r);
        assert.equal(echoed.headers["x-tls-ja4-o"], fp.value.ja4_o);
        assert.equal(echoed.headers["x-tls-ja3"], fp.value.ja3);
        assert.equal(echoed.headers["x-tls-ja3-hash"], fp.value.ja3_hash);
      });
    }
  } finally {
    attacksDone();
  }
  const { ok, failed } = await honest;
  const rssAfter = await rssKiB(proxy.child.pid);
  console.log(`honest requests: ${ok}; proxy RSS ${rssBefore} KiB -> ${rssAfter} KiB`);
  assert.deepEqual(failed, [], "the honest client saw no error");
  assert.ok(ok > 0);
  assert.equal(await proxy.metricSettles("huginn_connections_active", "", 0), 0);
  assert.ok(rssAfter - rssBefore < MEMORY_BOUND_KIB, `the proxy grew by ${rssAfter - rssBefore} KiB`);
});
