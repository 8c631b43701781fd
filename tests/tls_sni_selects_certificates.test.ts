/**
 * Per-host certificates are validated, and the proxy serves the certificate the client's SNI names (exact name, then a one-label wildcard, then
 * the default), refuses unknown or missing SNI with an `unrecognized_name` alert under
 * `tls.strict_sni`, answers 421 to a request for a host another certificate serves, and counts
 * successful handshakes by version and cipher. Driven with `openssl s_client` and `curl`.
 */
import assert from "node:assert/strict";
import { stringify } from "smol-toml";
import { ConfigError, parseConfig } from "../proxy/config.ts";
import {
  makeCertificate,
  parseEchoes,
  type Proxy,
  routeAllTo,
  run,
  startEcho,
  startProxy,
  tempDir,
} from "./support/proxy_harness.ts";

const isRoot = Deno.uid() === 0;

Deno.test("a host listed for two certificates, or not a name, is a configuration error", () => {
  const text = stringify({
    tls: {
      cert_path: "/c.pem",
      key_path: "/k.pem",
      certificates: [
        { hosts: ["a.example", "*.b.example"], cert_path: "/a.pem", key_path: "/a.key" },
        { hosts: ["A.example", "*.*.example"], cert_path: "/b.pem", key_path: "/b.key" },
      ],
    },
    backends: [{ address: "127.0.0.1:9000" }],
    domains: [{ host: "*", routes: [{ prefix: "/", backend: "127.0.0.1:9000" }] }],
  });
  assert.throws(() => parseConfig(text, "toml"), (e) => {
    assert(e instanceof ConfigError);
    assert.deepEqual(e.issues, [
      'tls.certificates[1].hosts[1]: "*.*.example" is not a host name or "*.name"',
      'tls.certificates[1].hosts[0]: "a.example" is listed already at tls.certificates[0].hosts[0]',
    ]);
    return true;
  });
});

/** `["-servername", name]`, or `["-noservername"]` for a hello without SNI. */
function sniArgs(servername: string | undefined): string[] {
  return servername === undefined ? ["-noservername"] : ["-servername", servername];
}

/** The subject CN of the certificate served for `servername`, or the s_client output if none. */
async function servedName(proxy: Proxy, servername: string | undefined): Promise<string> {
  const r = await run(
    ["openssl", "s_client", "-connect", `127.0.0.1:${proxy.port}`, ...sniArgs(servername)],
    "",
  );
  return /^subject=.*CN\s*=\s*([^,\n]+)$/m.exec(r.stdout)?.[1] ?? `no certificate: ${r.stdout}${r.stderr}`;
}

/** The certificates of the tests: the default one and two per-host ones. */
async function certificates(dir: string) {
  const a = await makeCertificate(dir, "a");
  const b = await makeCertificate(dir, "b");
  return {
    certificates: [
      { hosts: ["a.example", "A2.example"], cert_path: a.cert, key_path: a.key },
      { hosts: ["*.b.example"], cert_path: b.cert, key_path: b.key },
    ],
  };
}

Deno.test({
  name: "SNI selects the exact, then the wildcard, then the default certificate",
  ignore: !isRoot,
  async fn() {
    await using dir = await tempDir();
    await using echo = await startEcho();
    await using proxy = await startProxy({ ...routeAllTo(echo.address), tls: await certificates(dir.path) });
    const cases: Array<[string | undefined, string]> = [
      ["a.example", "a.localhost"],
      ["A2.EXAMPLE", "a.localhost"],
      ["x.b.example", "b.localhost"],
      ["y.x.b.example", "cert.localhost"], // a wildcard covers one label
      ["b.example", "cert.localhost"],
      ["unknown.example", "cert.localhost"],
      [undefined, "cert.localhost"],
    ];
    for (const [servername, expected] of cases) {
      assert.equal(await servedName(proxy, servername), expected, `SNI ${servername}`);
    }
    assert.equal(await proxy.metric("huginn_tls_handshake_errors_total", 'kind="unknown_sni"'), 0);
  },
});

Deno.test({
  name: "strict_sni refuses unknown and missing SNI with an unrecognized_name alert",
  ignore: !isRoot,
  async fn() {
    await using dir = await tempDir();
    await using echo = await startEcho();
    await using proxy = await startProxy({
      ...routeAllTo(echo.address),
      tls: { ...await certificates(dir.path), strict_sni: true },
    });
    assert.equal(await servedName(proxy, "x.b.example"), "b.localhost");
    for (const servername of ["unknown.example", undefined]) {
      const r = await run(
        ["openssl", "s_client", "-connect", `127.0.0.1:${proxy.port}`, ...sniArgs(servername)],
        "",
      );
      assert.notEqual(r.code, 0, `SNI ${servername} was accepted: ${r.stdout}`);
      assert.match(r.stderr, /unrecognized name/, `SNI ${servername}`);
    }
    const refused = await proxy.metricSettles("huginn_tls_handshake_errors_total", 'kind="unknown_sni"', 2);
    assert.equal(refused, 2);
    assert.equal(await proxy.metric("huginn_tls_handshakes_total", 'result="error"'), 2);
  },
});

Deno.test({
  name: "a request for a host another certificate serves is answered 421 on HTTP/2 and HTTP/1.1",
  ignore: !isRoot,
  async fn() {
    await using dir = await tempDir();
    await using echo = await startEcho();
    await using proxy = await startProxy({ ...routeAllTo(echo.address), tls: await certificates(dir.path) });
    /** Status of a request for `host` on a connection made with SNI `servername`. */
    const status = async (version: string, servername: string, host: string) => {
      const r = await run([
        "curl",
        "-sk",
        version,
        "--resolve",
        `${servername}:${proxy.port}:127.0.0.1`,
        "-H",
        `Host: ${host}`,
        "-o",
        "/dev/null",
        "-w",
        "%{http_version} %{http_code}",
        `https://${servername}:${proxy.port}/`,
      ]);
      return r.stdout;
    };
    for (const [version, shown] of [["--http2", "2"], ["--http1.1", "1.1"]]) {
      assert.equal(await status(version, "a.example", "a.example"), `${shown} 200`);
      assert.equal(
        await status(version, "a.example", `a2.example:${proxy.port}`),
        `${shown} 200`,
        "same cert",
      );
      assert.equal(await status(version, "a.example", "x.b.example"), `${shown} 421`);
      assert.equal(await status(version, "a.example", "other.example"), `${shown} 421`, "default cert");
      assert.equal(await status(version, "x.b.example", "y.b.example"), `${shown} 200`, "same wildcard");
      assert.equal(await status(version, "other.example", "unknown.example"), `${shown} 200`, "both default");
    }
    // Routing is by Host as before: the request that is served reaches the backend with its host.
    const r = await run([
      "curl",
      "-sk",
      "--http2",
      "--resolve",
      `x.b.example:${proxy.port}:127.0.0.1`,
      `https://x.b.example:${proxy.port}/routed`,
    ]);
    const [echoed] = parseEchoes(r.stdout);
    assert.equal(echoed.headers["x-forwarded-host"], `x.b.example:${proxy.port}`);
  },
});

Deno.test({
  name: "handshakes are counted by protocol version and cipher suite",
  ignore: !isRoot,
  async fn() {
    await using echo = await startEcho();
    await using proxy = await startProxy(routeAllTo(echo.address));
    for (const version of ["-tls1_2", "-tls1_3"]) {
      const r = await run(["openssl", "s_client", version, "-connect", `127.0.0.1:${proxy.port}`], "");
      assert.match(r.stdout, /Cipher is/, r.stderr);
    }
    const tls12 = 'version="TLSv1.2",cipher="TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",resumed="false"';
    const tls13 = 'version="TLSv1.3",cipher="TLS_AES_256_GCM_SHA384",resumed="false"';
    assert.equal(await proxy.metricSettles("huginn_tls_negotiated_total", tls12, 1), 1);
    assert.equal(await proxy.metricSettles("huginn_tls_negotiated_total", tls13, 1), 1);
  },
});

/** Replaces a certificate's files with `from`'s, each by a rename so that no half-written file is read. */
async function replaceFiles(to: { cert: string; key: string }, from: { cert: string; key: string }) {
  for (const kind of ["key", "cert"] as const) {
    await Deno.copyFile(from[kind], `${to[kind]}.new`);
    await Deno.rename(`${to[kind]}.new`, to[kind]);
  }
}

Deno.test({
  name: "a domain's certificate rotates under load without a failed request; a broken file keeps the old",
  ignore: !isRoot,
  async fn() {
    await using dir = await tempDir();
    await using echo = await startEcho();
    const a = await makeCertificate(dir.path, "a");
    const b = await makeCertificate(dir.path, "b");
    await using proxy = await startProxy({
      ...routeAllTo(echo.address),
      tls: {
        watch_delay_secs: 1,
        certificates: [
          { hosts: ["a.example"], cert_path: a.cert, key_path: a.key },
          { hosts: ["b.example"], cert_path: b.cert, key_path: b.key },
        ],
      },
    });
    const resolve = ["--resolve", `a.example:${proxy.port}:127.0.0.1`];
    const url = `https://a.example:${proxy.port}`;
    // One HTTP/2 connection carrying 80 requests over 4 s, across the rotation.
    const kept = run([
      "curl",
      "-sk",
      "--http2",
      ...resolve,
      "--rate",
      "20/s",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code} %{num_connects}\n",
      `${url}/kept/[1-80]`,
    ]);
    // New connections, one after another, until the new certificate is served.
    const fresh: string[] = [];
    const rotated = await makeCertificate(dir.path, "a-rotated");
    await replaceFiles(a, rotated);
    for (let i = 0; i < 100; i++) {
      const r = await run([
        "curl",
        "-sk",
        ...resolve,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        `${url}/fresh`,
      ]);
      fresh.push(r.stdout);
      if (await servedName(proxy, "a.example") === "a-rotated.localhost") break;
    }
    assert.equal(await servedName(proxy, "a.example"), "a-rotated.localhost");
    assert.equal(await servedName(proxy, "b.example"), "b.localhost", "the other domain's is untouched");
    assert(fresh.every((status) => status === "200"), `failed requests: ${fresh}`);
    assert(await proxy.metric("huginn_tls_certificate_reloads_total", 'result="ok"') >= 1);

    const errorsBefore = await proxy.metric("huginn_tls_certificate_reloads_total", 'result="error"');
    await Deno.writeTextFile(a.cert, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n");
    let errors = errorsBefore;
    for (let i = 0; i < 50 && errors === errorsBefore; i++) {
      await new Promise((r) => setTimeout(r, 100));
      errors = await proxy.metric("huginn_tls_certificate_reloads_total", 'result="error"');
    }
    assert(errors > errorsBefore, "the broken file was not counted");
    assert.equal(await servedName(proxy, "a.example"), "a-rotated.localhost", "the previous one is kept");
    assert.match(proxy.stderr(), /certificate reload failed; keeping the previous one/);

    const lines = (await kept).stdout.trim().split("\n");
    assert.equal(lines.length, 80);
    assert(lines.every((l) => l.startsWith("200 ")), `failed requests on the kept connection: ${lines}`);
    assert.equal(lines.filter((l) => l !== "200 0").length, 1, `one connection for all: ${lines}`);
  },
});
