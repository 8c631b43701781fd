/**
 * `tls.min_version` and `tls.max_version` refuse clients outside the bounds (and count them), sessions
 * resume (`openssl s_client -sess_out`, then `-sess_in` reports `Reused`), and a resumed or TLS 1.2
 * connection still gets fingerprints equal to what `tools/fingerprint.ts` computes from a capture.
 */
import assert from "node:assert/strict";
import { stringify } from "smol-toml";
import { ConfigError, parseConfig } from "../proxy/config.ts";
import {
  assertTlsHeadersMatch,
  captureLoopback,
  parseEchoes,
  type Proxy,
  routeAllTo,
  run,
  startEcho,
  startProxy,
  tempDir,
} from "./support/proxy_harness.ts";

const isRoot = Deno.uid() === 0;

/** Runs `openssl s_client` with an HTTP/1.1 request; returns its exit code and output. */
async function sClient(proxy: Proxy, args: string[]) {
  return await run(
    ["openssl", "s_client", "-ign_eof", "-connect", `127.0.0.1:${proxy.port}`, ...args],
    "GET /resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
  );
}

Deno.test("min_version newer than max_version is a configuration error", () => {
  const text = stringify({
    tls: { cert_path: "/c.pem", key_path: "/k.pem", min_version: "TLSv1.3", max_version: "TLSv1.2" },
    backends: [{ address: "127.0.0.1:9000" }],
    domains: [{ host: "*", routes: [{ prefix: "/", backend: "127.0.0.1:9000" }] }],
  });
  assert.throws(() => parseConfig(text, "toml"), (e) => {
    assert(e instanceof ConfigError);
    assert.deepEqual(e.issues, ['tls.min_version: "TLSv1.3" is newer than max_version "TLSv1.2"']);
    return true;
  });
});

Deno.test({
  name: "min_version and max_version refuse the versions outside them",
  ignore: !isRoot,
  async fn() {
    await using echo = await startEcho();
    const bounds: Array<[Record<string, string>, string, string]> = [
      [{ min_version: "TLSv1.3" }, "-tls1_3", "-tls1_2"],
      [{ max_version: "TLSv1.2" }, "-tls1_2", "-tls1_3"],
    ];
    for (const [tls, allowed, refused] of bounds) {
      await using proxy = await startProxy({ ...routeAllTo(echo.address), tls });
      const ok = await sClient(proxy, [allowed]);
      assert.equal(parseEchoes(ok.stdout).length, 1, `${allowed} with ${JSON.stringify(tls)}: ${ok.stderr}`);
      const no = await sClient(proxy, [refused]);
      assert.notEqual(no.code, 0, `${refused} was accepted with ${JSON.stringify(tls)}`);
      assert.equal(parseEchoes(no.stdout).length, 0);
      const counted = await proxy.metricSettles(
        "huginn_tls_handshake_errors_total",
        'kind="incompatible"',
        1,
      );
      assert.equal(counted, 1, JSON.stringify(tls));
    }
  },
});

Deno.test({
  name: "a hello the TLS engine refuses at once is counted and the proxy keeps serving",
  ignore: !isRoot,
  async fn() {
    await using echo = await startEcho();
    await using proxy = await startProxy(routeAllTo(echo.address));
    // RSA key exchange with CBC: nothing the engine accepts, so it fails on the first bytes.
    const no = await sClient(proxy, ["-tls1_2", "-cipher", "AES128-SHA"]);
    assert.notEqual(no.code, 0, no.stdout);
    assert.equal(await proxy.metricSettles("huginn_tls_handshake_errors_total", 'kind="incompatible"', 1), 1);
    const ok = await sClient(proxy, ["-tls1_2"]);
    assert.equal(parseEchoes(ok.stdout).length, 1, ok.stderr);
  },
});

Deno.test({
  name: "sessions resume, and resumed and TLS 1.2 connections keep exact fingerprints",
  ignore: !isRoot,
  async fn(t) {
    await using echo = await startEcho();
    await using proxy = await startProxy(routeAllTo(echo.address));
    await using dir = await tempDir();
    for (const version of ["-tls1_2", "-tls1_3"]) {
      await t.step(`${version}: -sess_in resumes the session -sess_out saved`, async () => {
        const session = `${dir.path}/session${version}.pem`;
        const first = await sClient(proxy, [version, "-sess_out", session]);
        assert.match(first.stdout, /^New, TLSv1\.[23]/m, first.stderr);
        await using capture = await captureLoopback(proxy.port);
        const resumed = await sClient(proxy, [version, "-sess_in", session]);
        assert.match(resumed.stdout, /^Reused, TLSv1\.[23]/m, resumed.stdout);
        const [reference] = await capture.fingerprints();
        const [echoed] = parseEchoes(resumed.stdout);
        assert.equal(echoed.headers["x-tls-ja4"].slice(1, 3), version === "-tls1_2" ? "12" : "13");
        assertTlsHeadersMatch(echoed, reference);
      });
    }
    const resumed = [...(await proxy.ops("/metrics")).body.matchAll(
      /^huginn_tls_negotiated_total\{version="(TLSv1\.[23])",.*resumed="true"\} 1$/gm,
    )].map((m) => m[1]);
    assert.deepEqual(resumed.sort(), ["TLSv1.2", "TLSv1.3"], "the proxy counted both resumptions");
  },
});
