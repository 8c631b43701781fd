/**
 * The proxy forwards real clients' requests to real backends with the fingerprints of their
 * connections: TLS fingerprints equal to what `tools/fingerprint.ts` computes from a tcpdump capture of
 * the same connection, the Akamai string of each HTTP/2 client, spoofed copies stripped and reported,
 * routing, gateway errors and streamed bodies.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  assertTlsHeadersMatch,
  captureLoopback,
  type Echo,
  freePort,
  parseEchoes,
  type Proxy,
  routeAllTo,
  run,
  startEcho,
  startProxy,
  tempDir,
  TLS_FIELDS,
} from "./support/proxy_harness.ts";

const isRoot = Deno.uid() === 0;
const CURL_AKAMAI = "3:100;4:33554432;2:0|33488897|0|m,p,s,a";
const NGHTTP_AKAMAI = "3:100;4:65535|00|3:0:0:201,5:0:0:101,7:0:0:1,9:0:7:1,11:0:3:1|m,p,s,a";

const TLS_HEADERS = Object.keys(TLS_FIELDS);

/** Runs `client` under a capture of the proxy's TLS port; returns its output and the reference fingerprints. */
async function captured(proxy: Proxy, client: () => Promise<string>) {
  await using capture = await captureLoopback(proxy.port);
  const output = await client();
  const connections = await capture.fingerprints();
  assert.equal(
    connections.length,
    1,
    `expected one connection in the capture: ${JSON.stringify(connections)}`,
  );
  return { echoes: parseEchoes(output), output, reference: connections[0] };
}

function fingerprintHeaders(echo: Echo): Record<string, string> {
  return Object.fromEntries(Object.entries(echo.headers).filter(([k]) => /^x-(tls|http2|tcp)-/.test(k)));
}

async function curl(args: string[]): Promise<string> {
  const r = await run(["curl", "-sS", "-k", ...args]);
  assert.equal(r.code, 0, `curl ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

Deno.test({
  name: "real clients reach the backend with the TLS and HTTP/2 fingerprints of their own connection",
  ignore: !isRoot,
  async fn(t) {
    await using echo = await startEcho();
    await using proxy = await startProxy(routeAllTo(echo.address));

    await t.step("curl --http1.1: TLS fingerprints equal the capture's, no Akamai", async () => {
      const { echoes, reference } = await captured(proxy, () => curl(["--http1.1", proxy.url("/h1")]));
      assert.equal(echoes.length, 1);
      assertTlsHeadersMatch(echoes[0], reference);
      assert.equal(echoes[0].headers["x-http2-akamai"], undefined);
    });

    await t.step("curl --http2: TLS fingerprints equal the capture's, Akamai is curl's", async () => {
      const { echoes, reference } = await captured(proxy, () => curl(["--http2", proxy.url("/h2")]));
      assertTlsHeadersMatch(echoes[0], reference);
      assert.equal(echoes[0].headers["x-http2-akamai"], CURL_AKAMAI);
    });

    for (const version of ["-tls1_2", "-tls1_3"]) {
      await t.step(`openssl s_client ${version} with a raw HTTP/1.1 request`, async () => {
        const { echoes, reference } = await captured(proxy, async () => {
          const r = await run(
            ["openssl", "s_client", "-quiet", "-ign_eof", version, "-connect", `127.0.0.1:${proxy.port}`],
            "GET /openssl HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
          );
          return r.stdout;
        });
        assert.equal(echoes.length, 1, "one response");
        assert.equal(echoes[0].path, "/openssl");
        assertTlsHeadersMatch(echoes[0], reference);
        assert.equal(echoes[0].headers["x-tls-ja4"].slice(1, 3), version === "-tls1_2" ? "12" : "13");
        assert.equal(echoes[0].headers["x-http2-akamai"], undefined);
      });
    }

    await t.step("nghttp: TLS fingerprints equal the capture's, Akamai is nghttp's", async () => {
      const { echoes, reference } = await captured(proxy, async () => {
        const r = await run(["nghttp", proxy.url("/nghttp")]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout;
      });
      assertTlsHeadersMatch(echoes[0], reference);
      assert.equal(echoes[0].headers["x-http2-akamai"], NGHTTP_AKAMAI);
    });

    await t.step("Deno fetch: TLS fingerprints equal the capture's, Akamai present on h2", async () => {
      using client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(proxy.certPath)] });
      const { echoes, reference } = await captured(proxy, async () => {
        const r = await fetch(proxy.url("/fetch"), { client });
        return await r.text();
      });
      assertTlsHeadersMatch(echoes[0], reference);
      assert.match(echoes[0].headers["x-http2-akamai"] ?? "", /^[\d:;]*\|\d+\|[\d:,]+\|[mpsa,]+$/);
    });

    await t.step("h2c prior knowledge on the plain listener: Akamai equals the capture's", async () => {
      await using capture = await captureLoopback(proxy.plainPort);
      const out = await curl(["--http2-prior-knowledge", `http://127.0.0.1:${proxy.plainPort}/h2c`]);
      const [reference] = await capture.fingerprints();
      const [echo] = parseEchoes(out);
      assert.equal(reference.akamai, CURL_AKAMAI);
      assert.equal(echo.headers["x-http2-akamai"], reference.akamai);
      assert.equal(echo.headers["x-tls-ja4"], undefined, "no TLS, no TLS fingerprint");
    });

    for (const version of ["--http1.1", "--http2"]) {
      await t.step(
        `${version} keep-alive: every request on a connection gets the same fingerprints`,
        async () => {
          const { echoes, reference } = await captured(
            proxy,
            () => curl([version, proxy.url("/1"), proxy.url("/2"), proxy.url("/3")]),
          );
          assert.equal(echoes.length, 3);
          assertTlsHeadersMatch(echoes[0], reference);
          assert.deepEqual(fingerprintHeaders(echoes[1]), fingerprintHeaders(echoes[0]));
          assert.deepEqual(fingerprintHeaders(echoes[2]), fingerprintHeaders(echoes[0]));
        },
      );
    }

    await t.step("x-forwarded-* describe the client's connection", async () => {
      // x-forwarded-port carries the client's source port (what a backend needs to correlate a
      // connection with the SYN it opened); curl reports the port it used after the body.
      const sourcePort = (out: string) => out.match(/source-port=(\d+)/)![1];
      const tlsOut = await curl(["--http1.1", "-w", "source-port=%{local_port}", proxy.url("/xf")]);
      const [tls] = parseEchoes(tlsOut);
      assert.equal(tls.headers["x-forwarded-for"], "127.0.0.1");
      assert.equal(tls.headers["x-forwarded-proto"], "https");
      assert.equal(tls.headers["x-forwarded-host"], `127.0.0.1:${proxy.port}`);
      assert.equal(tls.headers["x-forwarded-port"], sourcePort(tlsOut));
      const plainOut = await curl([
        "-w",
        "source-port=%{local_port}",
        `http://127.0.0.1:${proxy.plainPort}/xf`,
      ]);
      const [plain] = parseEchoes(plainOut);
      assert.equal(plain.headers["x-forwarded-proto"], "http");
      assert.equal(plain.headers["x-forwarded-port"], sourcePort(plainOut));
    });
  },
});

Deno.test({
  name: "spoofed fingerprint headers are stripped and reported, also where fingerprinting is off",
  ignore: !isRoot,
  async fn() {
    await using echo = await startEcho();
    const b = echo.address;
    await using proxy = await startProxy({
      backends: [{ address: b }],
      domains: [{
        host: "*",
        routes: [{ prefix: "/", backend: b }, { prefix: "/nofp", backend: b, fingerprinting: false }],
      }],
    });
    const forged = [
      "-H",
      "X-TLS-JA4: forged1",
      "-H",
      "x-Tls-Ja4: forged2",
      "-H",
      "X-Http2-Akamai: forged",
      "-H",
      "x-tcp-P0F: forged",
      "-H",
      "X-Fingerprint-Spoofing-Detected: nothing",
    ];
    const reported = "x-tls-ja4, x-http2-akamai, x-tcp-p0f, x-fingerprint-spoofing-detected";

    const [clean] = parseEchoes(await curl(["--http2", proxy.url("/")]));
    const [spoofed] = parseEchoes(await curl(["--http2", ...forged, proxy.url("/")]));
    assert.equal(spoofed.headers["x-fingerprint-spoofing-detected"], reported);
    assert.equal(spoofed.headers["x-tcp-p0f"], undefined, "TCP fingerprinting is off: no header at all");
    assert.equal(spoofed.headers["x-http2-akamai"], CURL_AKAMAI);
    for (const header of TLS_HEADERS) assert.equal(spoofed.headers[header], clean.headers[header], header);
    assert.equal(clean.headers["x-fingerprint-spoofing-detected"], undefined);

    const [off] = parseEchoes(await curl(["--http1.1", ...forged, proxy.url("/nofp/x")]));
    assert.equal(off.headers["x-fingerprint-spoofing-detected"], reported);
    assert.deepEqual(fingerprintHeaders(off), {}, "no fingerprint headers on a route without fingerprinting");

    assert.equal(await proxy.metric("huginn_fingerprint_spoofing_attempts_total", 'header="x-tls-ja4"'), 2);
    assert.equal(await proxy.metric("huginn_fingerprint_spoofing_attempts_total", 'header="x-tcp-p0f"'), 2);
  },
});

/** An in-process backend that answers with its name and what it was asked. */
function namedBackend(name: string) {
  const port = freePort();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    return Response.json({ name, path: url.pathname + url.search, host: req.headers.get("host") });
  });
  return { address: `127.0.0.1:${port}`, [Symbol.asyncDispose]: () => server.shutdown() };
}

Deno.test({
  name: "requests are routed by host and path prefix, with path replacement and round-robin",
  ignore: !isRoot,
  async fn() {
    await using a = namedBackend("a");
    await using b = namedBackend("b");
    await using c = namedBackend("c");
    await using proxy = await startProxy({
      backends: [{ address: a.address }, { address: b.address }, { address: c.address }],
      domains: [
        {
          host: "api.test",
          routes: [
            { prefix: "/v1", backend: a.address, replace_path: "/" },
            { prefix: "/", backend: b.address },
          ],
        },
        { host: "*.wild.test", routes: [{ prefix: "/", backend: [b.address, c.address] }] },
        { host: "*", routes: [{ prefix: "/static", backend: a.address, replace_path: "" }] },
      ],
    });
    const get = async (host: string, path: string, version = "--http2") => {
      const r = await run([
        "curl",
        "-sk",
        version,
        "-H",
        `Host: ${host}`,
        "-w",
        "\n%{http_code}",
        proxy.url(path),
      ]);
      const lines = r.stdout.trimEnd().split("\n");
      const status = Number(lines.pop());
      return { status, body: status === 200 ? JSON.parse(lines.join("\n")) : lines.join("\n") };
    };

    assert.deepEqual((await get("api.test", "/v1/users?id=7")).body, {
      name: "a",
      path: "/users?id=7",
      host: "api.test",
    });
    assert.equal((await get("API.test:443", "/v1", "--http1.1")).body.path, "/");
    assert.equal((await get("api.test", "/v2/users")).body.name, "b", "longest matching prefix wins");
    assert.deepEqual((await get("other.test", "/static/img.png")).body, {
      name: "a",
      path: "/img.png",
      host: "other.test",
    });
    const names = [];
    for (let i = 0; i < 4; i++) names.push((await get("x.wild.test", "/rr")).body.name);
    assert.deepEqual(names, ["b", "c", "b", "c"]);
    assert.equal((await get("other.test", "/nothing")).status, 404);
  },
});

Deno.test({
  name: "a dead backend is a 502 and a backend that does not answer in time is a 504",
  ignore: !isRoot,
  async fn() {
    const dead = `127.0.0.1:${freePort()}`;
    const stalled = Promise.withResolvers<void>();
    const stallPort = freePort();
    const stallServer = Deno.serve(
      { hostname: "127.0.0.1", port: stallPort, onListen: () => {} },
      async () => {
        await stalled.promise;
        return new Response("too late");
      },
    );
    const stall = `127.0.0.1:${stallPort}`;
    try {
      await using proxy = await startProxy({
        timeout: { upstream_secs: 1 },
        backends: [{ address: dead }, { address: stall }],
        domains: [{
          host: "*",
          routes: [{ prefix: "/dead", backend: dead }, { prefix: "/stall", backend: stall }],
        }],
      });
      for (const version of ["--http1.1", "--http2"]) {
        const r = await run([
          "curl",
          "-sk",
          version,
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          proxy.url("/dead"),
        ]);
        assert.equal(r.stdout, "502", version);
        const s = await run([
          "curl",
          "-sk",
          version,
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          proxy.url("/stall"),
        ]);
        assert.equal(s.stdout, "504", version);
      }
      const errors = (labels: string) => proxy.metricSettles("huginn_backend_errors_total", labels, 2);
      assert.equal(await errors(`backend="${dead}",kind="connect"`), 2);
      assert.equal(await errors(`backend="${stall}",kind="timeout"`), 2);
    } finally {
      stalled.resolve();
      await stallServer.shutdown();
    }
  },
});

/** `size` deterministic pseudo-random bytes, produced in chunks. */
function* pseudoRandom(size: number, chunk = 64 * 1024): Generator<Uint8Array> {
  let x = 0x9e3779b9;
  for (let done = 0; done < size; done += chunk) {
    const out = new Uint8Array(Math.min(chunk, size - done));
    for (let i = 0; i < out.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      out[i] = x & 0xff;
    }
    yield out;
  }
}

function sha256(chunks: Iterable<Uint8Array>): string {
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return h.digest("hex");
}

Deno.test({
  name: "request and response bodies stream through the proxy without being buffered whole",
  ignore: !isRoot,
  async fn(t) {
    const SIZE = 24 * 1024 * 1024;
    const expected = sha256(pseudoRandom(SIZE));
    let firstChunkSeen = Promise.withResolvers<void>();
    let seenBeforeLast: boolean | undefined;
    const port = freePort();
    const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
      const path = new URL(req.url).pathname;
      if (path === "/upload") {
        const h = createHash("sha256");
        let bytes = 0;
        for await (const chunk of req.body!) {
          h.update(chunk);
          bytes += chunk.length;
        }
        return Response.json({ bytes, sha256: h.digest("hex") });
      }
      if (path === "/download") {
        return new Response(ReadableStream.from(pseudoRandom(SIZE)));
      }
      // /slow: the last chunk waits until the client has the first one (or gives up after 10 s).
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode("first\n"));
          const timeout = new Promise<false>((r) => setTimeout(() => r(false), 10_000));
          seenBeforeLast = await Promise.race([firstChunkSeen.promise.then(() => true), timeout]);
          controller.enqueue(new TextEncoder().encode("last\n"));
          controller.close();
        },
      });
      return new Response(body, { headers: { "content-type": "text/plain" } });
    });
    try {
      const backend = `127.0.0.1:${port}`;
      await using proxy = await startProxy(routeAllTo(backend));
      await using dir = await tempDir();
      const file = `${dir.path}/body.bin`;

      // TLS, and the plain listener (HTTP/1.1 and h2c prior knowledge), whose relay reuses its buffers.
      const plainUrl = (path: string) => `http://127.0.0.1:${proxy.plainPort}${path}`;
      for (
        const [version, url] of [
          ["--http1.1", proxy.url],
          ["--http2", proxy.url],
          ["--http1.1 (plain)", plainUrl],
          ["--http2-prior-knowledge (plain)", plainUrl],
        ] as const
      ) {
        const flag = version.split(" ")[0];
        await t.step(`${version}: a large upload arrives whole`, async () => {
          await Deno.writeFile(file, ReadableStream.from(pseudoRandom(SIZE)));
          const out = await curl([flag, "--data-binary", `@${file}`, url("/upload")]);
          assert.deepEqual(JSON.parse(out), { bytes: SIZE, sha256: expected });
        });
        await t.step(`${version}: a large download arrives whole`, async () => {
          await Deno.remove(file).catch(() => {});
          await curl([flag, "-o", file, url("/download")]);
          const data = await Deno.readFile(file);
          assert.equal(data.length, SIZE);
          assert.equal(sha256([data]), expected);
        });
      }

      const cert = await Deno.readTextFile(proxy.certPath);
      for (
        const [label, options] of [["HTTP/1.1", { http2: false }], ["HTTP/2", { http1: false }]] as const
      ) {
        await t.step(
          `${label}: the first chunk of a slow response arrives before the last is sent`,
          async () => {
            firstChunkSeen = Promise.withResolvers<void>();
            seenBeforeLast = undefined;
            using client = Deno.createHttpClient({ caCerts: [cert], ...options });
            const response = await fetch(proxy.url("/slow"), { client });
            let text = "";
            const decoder = new TextDecoder();
            for await (const chunk of response.body!) {
              text += decoder.decode(chunk, { stream: true });
              if (text.includes("first\n")) firstChunkSeen.resolve();
            }
            assert.equal(text, "first\nlast\n");
            assert.equal(
              seenBeforeLast,
              true,
              "the proxy held the first chunk back until the response ended",
            );
          },
        );
      }
    } finally {
      await server.shutdown();
    }
  },
});
