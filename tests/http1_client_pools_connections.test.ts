/**
 * `Http1Pool` keeps connections alive and reuses them, retries a request without a body once when a
 * pooled connection turned out to be closed, drops idle and abandoned connections, and classifies
 * connect failures: refused (`connect`) versus a backend that never completes the handshake
 * (`connect_timeout`). All against real loopback sockets.
 */
import assert from "node:assert/strict";
import { Http1Pool, UpstreamError } from "../proxy/http1_client.ts";
import { readRequestHead } from "./support/http1_wire.ts";

const POOL_OPTS = { connectTimeoutMs: 2000, idleTimeoutMs: 5000, maxIdlePerBackend: 4 };
const enc = new TextEncoder();

const get = (pool: Http1Pool, addr: string, signal?: AbortSignal) =>
  pool.request(addr, { method: "GET", path: "/", headers: [["host", "h"]], body: null, signal });

const isKind = (kind: string) => (e: unknown) => e instanceof UpstreamError && e.kind === kind;

/**
 * A raw backend running `script` on every connection it accepts (the connection is closed afterwards);
 * `closed[i]` resolves once connection `i` has been closed.
 */
function rawServer(script: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed: Promise<void>[] = [];
  const served = (async () => {
    for await (const conn of listener) {
      closed.push(script(conn).catch(() => {}).finally(() => conn.close()));
    }
  })();
  return {
    addr: `127.0.0.1:${listener.addr.port}`,
    closed,
    async close() {
      listener.close();
      await served;
      await Promise.all(closed);
    },
  };
}

Deno.test("sequential requests, with and without bodies, reuse one connection; a cancelled body closes it", async () => {
  const ports: number[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req, info) => {
    ports.push(info.remoteAddr.port);
    if (req.body !== null) await req.arrayBuffer();
    return new Response("x".repeat(100_000));
  });
  const addr = `127.0.0.1:${server.addr.port}`;
  const pool = new Http1Pool(POOL_OPTS);
  try {
    for (let i = 0; i < 20; i++) {
      assert.equal((await new Response((await get(pool, addr)).body).text()).length, 100_000);
    }
    for (const headers of [[], [["content-length", "5"]]] as [string, string][][]) {
      const res = await pool.request(addr, {
        method: "POST",
        path: "/",
        headers,
        body: new Response("hello").body,
      });
      await new Response(res.body).text();
    }
    assert.equal(new Set(ports).size, 1);
    const abandoned = await get(pool, addr);
    assert.ok(abandoned.body instanceof ReadableStream, "a large body streams");
    await abandoned.body.cancel();
    await new Response((await get(pool, addr)).body).text();
    assert.equal(ports.length, 24);
    assert.equal(new Set(ports).size, 2);
  } finally {
    pool.close();
    await server.shutdown();
  }
});

Deno.test("a pooled connection the backend closed is retried once, but only for bodiless requests", async () => {
  // Every connection serves one keep-alive response, then the backend closes it while it sits idle.
  const server = rawServer(async (conn) => {
    await readRequestHead(conn);
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
  });
  const pool = new Http1Pool(POOL_OPTS);
  try {
    assert.equal(await new Response((await get(pool, server.addr)).body).text(), "ok");
    await server.closed[0];
    assert.equal(await new Response((await get(pool, server.addr)).body).text(), "ok");
    assert.equal(server.closed.length, 2);
    await server.closed[1];
    await assert.rejects(
      pool.request(server.addr, {
        method: "POST",
        path: "/",
        headers: [["content-length", "2"]],
        body: new Response("hi").body,
      }),
      isKind("reset"),
    );
    assert.equal(server.closed.length, 2);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("idle connections are closed after idleTimeoutMs and by close()", async () => {
  // Answers one request, then waits until the client closes the connection.
  const server = rawServer(async (conn) => {
    await readRequestHead(conn);
    await conn.write(enc.encode("HTTP/1.1 204 No Content\r\n\r\n"));
    assert.equal(await readRequestHead(conn), null);
  });
  const shortIdle = new Http1Pool({ ...POOL_OPTS, idleTimeoutMs: 50 });
  const longIdle = new Http1Pool({ ...POOL_OPTS, idleTimeoutMs: 60_000 });
  try {
    await get(shortIdle, server.addr);
    await server.closed[0];
    await get(longIdle, server.addr);
    longIdle.close();
    await server.closed[1];
  } finally {
    shortIdle.close();
    longIdle.close();
    await server.close();
  }
});

Deno.test("an aborted request closes its connection and rejects with the abort reason", async () => {
  const { promise: headSeen, resolve: sawHead } = Promise.withResolvers<void>();
  const server = rawServer(async (conn) => {
    await readRequestHead(conn);
    sawHead();
    assert.equal(await readRequestHead(conn), null);
  });
  const pool = new Http1Pool(POOL_OPTS);
  try {
    const abort = new AbortController();
    const pending = get(pool, server.addr, abort.signal);
    await headSeen;
    abort.abort(new Error("client went away"));
    await assert.rejects(pending, /client went away/);
    await server.closed[0];
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("a refused connect is kind connect", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const addr = `127.0.0.1:${listener.addr.port}`;
  listener.close();
  const pool = new Http1Pool(POOL_OPTS);
  await assert.rejects(get(pool, addr), isKind("connect"));
  pool.close();
});

Deno.test("a backend whose accept queue is full is kind connect_timeout", async () => {
  // A listener with backlog 0 that never accepts, its queue filled by one connection of its own: the
  // kernel drops further SYNs, so a connect hangs like one to a blackholed host.
  const python = new Deno.Command("python3", {
    args: [
      "-c",
      "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\n" +
      "port=s.getsockname()[1]\nfiller=socket.create_connection(('127.0.0.1',port))\n" +
      "print(port,flush=True)\nsys.stdin.read()",
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const pool = new Http1Pool({ ...POOL_OPTS, connectTimeoutMs: 300 });
  try {
    const reader = python.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const port = Number((await reader.read()).value);
    await reader.cancel();
    await assert.rejects(get(pool, `127.0.0.1:${port}`), isKind("connect_timeout"));
  } finally {
    pool.close();
    await python.stdin.close();
    await python.status;
  }
});

Deno.test("aborting while the body streams fails the body with the abort reason", async () => {
  const server = rawServer(async (conn) => {
    await readRequestHead(conn);
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc"));
    assert.equal(await readRequestHead(conn), null);
  });
  const pool = new Http1Pool(POOL_OPTS);
  try {
    const abort = new AbortController();
    const res = await get(pool, server.addr, abort.signal);
    assert.ok(res.body instanceof ReadableStream, "a body still on its way streams");
    const reader = res.body.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "abc");
    abort.abort(new Error("client went away"));
    await assert.rejects(reader.read(), /client went away/);
    await server.closed[0];
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("IPv6 backends are addressed in brackets", async () => {
  const server = Deno.serve(
    { hostname: "::1", port: 0, onListen() {} },
    (req) => new Response(req.headers.get("host")),
  );
  const pool = new Http1Pool(POOL_OPTS);
  try {
    const addr = `[::1]:${server.addr.port}`;
    const res = await pool.request(addr, { method: "GET", path: "/", headers: [], body: null });
    assert.equal(await new Response(res.body).text(), addr);
  } finally {
    pool.close();
    await server.shutdown();
  }
});
