/**
 * The proxy process from start to exit: `--validate`, readiness, graceful shutdown with a request in
 * flight, certificate reload, and a plain-mode proxy that never loads the eBPF library.
 */
import assert from "node:assert/strict";
import {
  freePort,
  makeCertificate,
  parseEchoes,
  routeAllTo,
  run,
  startEcho,
  startProxy,
  tempDir,
} from "./support/proxy_harness.ts";

const MAIN = new URL("../proxy/main.ts", import.meta.url).pathname;

async function validate(args: string[], env: Record<string, string> = {}) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: r.code, out: decoder.decode(r.stdout) + decoder.decode(r.stderr) };
}

Deno.test("--validate accepts a good configuration and explains a bad one", async () => {
  await using dir = await tempDir();
  const { cert, key } = await makeCertificate(dir.path);
  const good = `${dir.path}/good.toml`;
  await Deno.writeTextFile(
    good,
    `[tls]\ncert_path = "${cert}"\nkey_path = "${key}"\n[[backends]]\naddress = "127.0.0.1:9000"\n` +
      `[[domains]]\nhost = "*"\nroutes = [{ prefix = "/", backend = "127.0.0.1:9000" }]\n`,
  );
  const bad = `${dir.path}/bad.toml`;
  await Deno.writeTextFile(
    bad,
    `workers = 0\n[fingerprint]\nmax_capture = 10\n[[backends]]\naddress = "127.0.0.1:9000"\n` +
      `[[domains]]\nhost = "*"\nroutes = [{ prefix = "/", backend = "127.0.0.1:9000" }]\n`,
  );

  const ok = await validate([good, "--validate"]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /configuration OK/);

  const fromEnv = await validate(["--validate"], { HUGINN_CONFIG_PATH: good });
  assert.equal(fromEnv.code, 0, fromEnv.out);

  const invalid = await validate([bad, "--validate"]);
  assert.equal(invalid.code, 1);
  assert.match(invalid.out, /invalid configuration in .*bad\.toml \(2 problems\)/);
  assert.match(invalid.out, /workers: 0 is not/);
  assert.match(invalid.out, /fingerprint\.max_capture: 10 is not/);

  const missing = await validate([`${dir.path}/nope.toml`, "--validate"]);
  assert.equal(missing.code, 1);
  assert.match(missing.out, /nope\.toml: cannot read the file/);

  const usage = await validate(["--validate"], { HUGINN_CONFIG_PATH: "" });
  assert.equal(usage.code, 2);
  assert.match(usage.out, /usage: /);
});

Deno.test("SIGTERM: /ready turns 503, the request in flight completes, the process exits 0", async () => {
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const port = freePort();
  const backend = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async () => {
    arrived.resolve();
    await release.promise;
    return new Response("finished after SIGTERM\n");
  });
  try {
    await using proxy = await startProxy(routeAllTo(`127.0.0.1:${port}`));
    assert.equal((await proxy.ops("/ready")).status, 200);
    const inFlight = run(["curl", "-sk", "--http2", "-w", "%{http_code}", proxy.url("/slow")]);
    await arrived.promise;

    proxy.child.kill("SIGTERM");
    let ready = 200;
    for (let i = 0; i < 200 && ready === 200; i++) {
      ready = (await proxy.ops("/ready")).status;
      if (ready === 200) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(ready, 503, "/ready reports the shutdown");
    assert.equal((await proxy.ops("/live")).status, 200, "still alive while draining");

    release.resolve();
    const r = await inFlight;
    assert.equal(r.stdout, "finished after SIGTERM\n200");
    const status = await proxy.stop();
    assert.equal(status.code, 0, proxy.stderr());
    assert.match(proxy.stderr(), /"msg":"stopped"/);
  } finally {
    release.resolve();
    await backend.shutdown();
  }
});

Deno.test("plain mode serves traffic without ever loading libbpf", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy(routeAllTo(echo.address));
  const r = await run(["curl", "-sk", proxy.url("/plain")]);
  assert.equal(parseEchoes(r.stdout)[0]?.path, "/plain");
  const health = JSON.parse((await proxy.ops("/health")).body);
  assert.equal(health.status, "ok");
  assert.equal(health.ready, true);
  const maps = await Deno.readTextFile(`/proc/${proxy.child.pid}/maps`);
  assert.doesNotMatch(maps, /libbpf/);
});

/** The SHA-256 fingerprint of the certificate the proxy serves, as openssl prints it. */
async function servedCertificate(port: number): Promise<string> {
  const s = await run(["openssl", "s_client", "-connect", `127.0.0.1:${port}`], "");
  const f = await run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], s.stdout);
  assert.equal(f.code, 0, `no certificate in: ${s.stdout}${s.stderr}`);
  return f.stdout.trim();
}

Deno.test("a renewed certificate is served without a restart; a broken one is ignored", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy({ ...routeAllTo(echo.address), tls: { watch_delay_secs: 1 } });
  await using dir = await tempDir();
  const before = await servedCertificate(proxy.port);
  const renewed = await makeCertificate(dir.path, "renewed");
  const fingerprint = async (path: string) =>
    (await run(["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", path])).stdout.trim();
  const expected = await fingerprint(renewed.cert);
  assert.notEqual(expected, before);

  await Deno.writeFile(proxy.keyPath, await Deno.readFile(renewed.key));
  await Deno.writeFile(proxy.certPath, await Deno.readFile(renewed.cert));
  let served = before;
  for (let i = 0; i < 100 && served !== expected; i++) {
    await new Promise((r) => setTimeout(r, 100));
    served = await servedCertificate(proxy.port);
  }
  assert.equal(served, expected, "the renewed certificate is served");

  await Deno.writeTextFile(
    proxy.certPath,
    "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
  );
  for (let i = 0; i < 100 && !proxy.stderr().includes("certificate reload failed"); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(proxy.stderr(), /certificate reload failed; keeping the previous one/);
  assert.equal(await servedCertificate(proxy.port), expected);
});

Deno.test("two workers share the listening port and /metrics merges what both counted", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy({ ...routeAllTo(echo.address), workers: 2 });
  assert.match(proxy.stderr(), /"workers":2/);
  const requests = 20;
  for (let i = 0; i < requests; i++) {
    const r = await run(["curl", "-sk", "--http1.1", proxy.url(`/w${i}`)]);
    assert.equal(parseEchoes(r.stdout)[0]?.path, `/w${i}`);
  }
  const labels = 'method="GET",status_code="200",protocol="HTTP/1.1",route="*/"';
  assert.equal(await proxy.metric("huginn_requests_total", labels), requests);
  assert.equal(await proxy.metric("huginn_tls_handshakes_total", 'result="ok"'), requests);
});
