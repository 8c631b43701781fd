/**
 * Raw HTTP/1.1 over TLS (and on the plain listener): fingerprint headers sent by the client, in every
 * case variant and repeated, never reach the backend with the client's values, and each is reported;
 * requests whose framing is ambiguous (CL.TE, TE.CL, TE.TE, conflicting Content-Length, obs-fold and
 * other malformed header lines) are answered 400 and nothing of them reaches the backend.
 */
import assert from "node:assert/strict";
import { FINGERPRINT_HEADERS, SPOOFING_HEADER } from "../proxy/headers.ts";
import { type AttackConn, rawConnect, tlsConnect } from "./support/attack.ts";
import { parseEchoes, type Proxy, routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";

const DEADLINE_MS = 10_000;
const SMUGGLED = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";

/** Requests whose body framing two parsers could read differently, each with a request hidden in it. */
const AMBIGUOUS: Record<string, string> = {
  "CL.TE": "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
  "TE.CL": "Transfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n0\r\n\r\n" + SMUGGLED,
  "TE.TE, repeated": "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n" + SMUGGLED,
  "TE.TE, unknown coding": "Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
  "TE.TE, chunked not last": "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + SMUGGLED,
  "TE.TE, space before colon": "Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
  "conflicting Content-Length": "Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcd" + SMUGGLED,
  "Content-Length list": "Content-Length: 4, 5\r\n\r\nabcd" + SMUGGLED,
  "signed Content-Length": "Content-Length: +4\r\n\r\nabcd" + SMUGGLED,
  "obs-fold hiding a fingerprint header": "X-Foo: bar\r\n x-tls-ja4: spoofed\r\n\r\n",
  "obs-fold of a fingerprint header": "X-TLS-JA4: a\r\n\tspoofed\r\n\r\n",
  "space before colon in a fingerprint header": "X-TLS-JA4 : spoofed\r\n\r\n",
  "CR inside a value": "X-Foo: a\rx-tls-ja4: spoofed\r\n\r\n",
};

function connect(proxy: Proxy, transport: "tls" | "plain"): Promise<AttackConn> {
  return transport === "tls" ? tlsConnect(proxy.port, ["http/1.1"]) : rawConnect(proxy.plainPort);
}

/** Sends `request` and returns what came back before the proxy closed (or the deadline). */
async function exchange(proxy: Proxy, transport: "tls" | "plain", request: string): Promise<string> {
  using conn = await connect(proxy, transport);
  await conn.write(new TextEncoder().encode(request));
  return new TextDecoder().decode((await conn.received(DEADLINE_MS)).bytes);
}

/** Every case variant of a header name: lower, upper, capitalised words, alternating. */
function caseVariants(name: string): string[] {
  const title = name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());
  const alternating = [...name].map((c, i) => i % 2 ? c.toUpperCase() : c).join("");
  return [name, name.toUpperCase(), title, alternating];
}

Deno.test("fingerprint headers a client sends, in any case and repeated, never reach the backend", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy(routeAllTo(echo.address));
  const names = [...FINGERPRINT_HEADERS, SPOOFING_HEADER];
  const lines = names.flatMap((name) => caseVariants(name).map((v, i) => `${v}: spoofed-${i}\r\n`));
  for (const transport of ["tls", "plain"] as const) {
    const response = await exchange(
      proxy,
      transport,
      `GET /spoof HTTP/1.1\r\nHost: localhost\r\n${lines.join("")}Connection: close\r\n\r\n`,
    );
    const [seen] = parseEchoes(response);
    assert.ok(seen, `no answer over ${transport}: ${response}`);
    const leaked = Object.entries(seen.headers).filter(([, value]) => value.includes("spoofed"));
    assert.deepEqual(leaked, [], `over ${transport}`);
    assert.equal(seen.headers[SPOOFING_HEADER], names.join(", "));
    if (transport === "tls") assert.match(seen.headers["x-tls-ja4"], /^t13i/);
    else assert.equal(seen.headers["x-tls-ja4"], undefined);
  }
  for (const header of names) {
    // One increment per request, however many copies it carried.
    assert.equal(await proxy.metric("huginn_fingerprint_spoofing_attempts_total", `header="${header}"`), 2);
  }
});

Deno.test("requests with ambiguous framing or malformed header lines are answered 400 and never forwarded", async (t) => {
  await using echo = await startEcho();
  await using proxy = await startProxy(routeAllTo(echo.address));
  for (const [name, rest] of Object.entries(AMBIGUOUS)) {
    for (const transport of ["tls", "plain"] as const) {
      await t.step(`${name} over ${transport}`, async () => {
        const response = await exchange(
          proxy,
          transport,
          `POST /front HTTP/1.1\r\nHost: localhost\r\n${rest}`,
        );
        assert.match(response, /^HTTP\/1\.1 400 /, JSON.stringify(response));
        assert.equal(response.match(/HTTP\/1\.1 /g)?.length, 1, "exactly one response");
        assert.deepEqual(parseEchoes(response), [], "nothing reached the backend");
      });
    }
  }
  assert.equal(await proxy.metric("huginn_backend_requests_total", `backend="${echo.address}"`), 0);
  // The same proxy still serves a well-formed request.
  const ok = await exchange(
    proxy,
    "tls",
    "GET /after HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
  );
  assert.equal(parseEchoes(ok)[0]?.path, "/after");
});

Deno.test({
  name: "the backend sees no request header the client did not send, other than the proxy's own",
  // Deno's fetch adds `accept`, `accept-encoding`, `accept-language` and a Deno `user-agent` to requests
  // that lack them, which is why the upstream side is proxy/http1_client.ts and not fetch.
  async fn() {
    await using echo = await startEcho();
    await using proxy = await startProxy(routeAllTo(echo.address));
    const response = await exchange(
      proxy,
      "tls",
      "GET /bare HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    const [seen] = parseEchoes(response);
    assert.ok(seen, response);
    const added = Object.keys(seen.headers).filter((name) =>
      name !== "host" && !name.startsWith("x-forwarded-") && !name.startsWith("x-tls-")
    );
    assert.deepEqual(added, []);
  },
});
