/**
 * Through the running proxy: header rules edit what the backend receives and what the client gets
 * back, route over domain over global; HSTS goes out on HTTPS only; `preserve_host = false` sends the
 * backend its own address as Host; client-forged fingerprint headers stay stripped whatever the rules.
 */
import assert from "node:assert/strict";
import { parseEchoes, run, startEcho, startProxy } from "./support/proxy_harness.ts";

/** curl's response headers (lower-case names) and the echo of what the backend received. */
async function exchange(url: string, args: string[] = []) {
  const r = await run(["curl", "-sk", "-D", "-", ...args, url]);
  assert.equal(r.code, 0, r.stderr);
  const [head] = r.stdout.split("\r\n\r\n");
  const headers = new Map(
    head.split("\r\n").slice(1).map((
      l,
    ) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]),
  );
  const [echo] = parseEchoes(r.stdout);
  assert.ok(echo, r.stdout);
  return { headers, echo };
}

Deno.test("header rules at three levels, HSTS on HTTPS only, preserve_host", async () => {
  await using echo = await startEcho();
  const b = echo.address;
  await using proxy = await startProxy({
    headers: {
      request: { add: { "x-env": "prod", "x-team": "core" }, remove: ["cookie"] },
      response: { add: { "x-frame-options": "DENY" }, hsts: "max-age=31536000", csp: "default-src 'self'" },
    },
    backends: [{ address: b }],
    domains: [{
      host: "*",
      headers: { request: { add: { "x-team": "web" } } },
      routes: [
        { prefix: "/", backend: b },
        {
          prefix: "/raw",
          backend: b,
          preserve_host: false,
          headers: {
            request: { add: { cookie: "route=1" }, remove: ["x-env"] },
            response: { remove: ["x-frame-options", "content-type"] },
          },
        },
      ],
    }],
  });
  const plain = `http://127.0.0.1:${proxy.plainPort}`;

  const main = await exchange(proxy.url("/a"), ["-H", "Cookie: secret=1", "-H", "X-Tls-Ja4: forged"]);
  assert.equal(main.echo.headers["x-env"], "prod");
  assert.equal(main.echo.headers["x-team"], "web", "the domain overrides the global value");
  assert.equal(main.echo.headers["cookie"], undefined, "removed globally");
  assert.equal(main.echo.headers["host"], `127.0.0.1:${proxy.port}`, "the client's Host by default");
  assert.notEqual(main.echo.headers["x-tls-ja4"], "forged");
  assert.equal(main.echo.headers["x-fingerprint-spoofing-detected"], "x-tls-ja4");
  assert.equal(main.headers.get("x-frame-options"), "DENY");
  assert.equal(main.headers.get("content-security-policy"), "default-src 'self'");
  assert.equal(main.headers.get("strict-transport-security"), "max-age=31536000");
  assert.equal(main.headers.get("content-type"), "application/json");

  const overHttp = await exchange(`${plain}/a`);
  assert.equal(overHttp.headers.get("strict-transport-security"), undefined, "no HSTS over plain HTTP");
  assert.equal(overHttp.headers.get("x-frame-options"), "DENY");

  const route = await exchange(proxy.url("/raw/x"), ["-H", "Cookie: secret=1"]);
  assert.equal(route.echo.headers["x-env"], undefined, "the route removes what the global level adds");
  assert.equal(route.echo.headers["cookie"], "route=1", "the route adds what the global level removes");
  assert.equal(route.echo.headers["x-team"], "web");
  assert.equal(route.echo.headers["host"], b, "preserve_host = false: the backend's own address");
  assert.equal(route.echo.headers["x-forwarded-host"], `127.0.0.1:${proxy.port}`);
  assert.equal(route.headers.get("x-frame-options"), undefined);
  assert.equal(route.headers.get("content-type"), undefined);
  assert.equal(route.headers.get("content-security-policy"), "default-src 'self'");
});
