/**
 * `Http1Pool` reads every response framing (content-length, chunked, close-delimited, bodiless),
 * streams bodies as they arrive, skips interim responses, and turns every malformed response into an
 * `UpstreamError` of kind `protocol` (or `reset` when the backend stops mid-response). Edge cases come
 * from a raw TCP server scripted byte by byte; bulk downloads from a `Deno.serve` backend.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Http1Pool, type Http1Response, UpstreamError } from "../proxy/http1_client.ts";
import { readRequestHead } from "./support/http1_wire.ts";

const POOL_OPTS = { connectTimeoutMs: 2000, idleTimeoutMs: 5000, maxIdlePerBackend: 4 };
const enc = new TextEncoder();

/**
 * A backend that answers each request, on whichever connection, with the next of `responses` (raw
 * bytes), and closes a connection when they run out or the client closes. Counts accepted connections.
 */
function scriptedServer(...responses: (string | Uint8Array)[]) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  let answered = 0;
  const conns: Promise<void>[] = [];
  const serve = async (conn: Deno.Conn) => {
    try {
      while (await readRequestHead(conn) !== null) {
        const response = responses[answered++];
        if (response === undefined) return;
        await conn.write(typeof response === "string" ? enc.encode(response) : response);
        if (answered === responses.length) return;
      }
    } catch {
      // The client may close first; that is what some tests check.
    } finally {
      conn.close();
    }
  };
  const served = (async () => {
    for await (const conn of listener) {
      accepted++;
      conns.push(serve(conn));
    }
  })();
  return {
    addr: `127.0.0.1:${listener.addr.port}`,
    get accepted() {
      return accepted;
    },
    async close() {
      listener.close();
      await served;
      await Promise.all(conns);
    },
  };
}

async function text(res: Http1Response): Promise<string> {
  return res.body === null ? "" : await new Response(res.body).text();
}

/** Runs `fn` with a pool and a scripted server, closing both afterwards. */
async function withScript(
  responses: (string | Uint8Array)[],
  fn: (pool: Http1Pool, addr: string, server: ReturnType<typeof scriptedServer>) => Promise<void>,
): Promise<void> {
  const server = scriptedServer(...responses);
  const pool = new Http1Pool(POOL_OPTS);
  try {
    await fn(pool, server.addr, server);
  } finally {
    pool.close();
    await server.close();
  }
}

const get = (pool: Http1Pool, addr: string, method = "GET") =>
  pool.request(addr, { method, path: "/", headers: [["host", "h"]], body: null });

Deno.test("HEAD, 204 and 304 have no body even with content-length, and keep the connection", async () => {
  await withScript([
    "HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n",
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
  ], async (pool, addr, server) => {
    const head = await get(pool, addr, "HEAD");
    assert.equal(new Headers(head.headers).get("content-length"), "10");
    assert.equal(head.body, null);
    assert.equal((await get(pool, addr)).body, null);
    assert.equal((await get(pool, addr)).body, null);
    assert.equal(await text(await get(pool, addr)), "ok");
    assert.equal(server.accepted, 1);
  });
});

Deno.test("interim 100 and 103 responses are skipped; 101 is refused", async () => {
  await withScript([
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n" +
    "HTTP/1.1 201 Created\r\ncontent-length: 2\r\nx-final: 1\r\n\r\nok",
    "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
  ], async (pool, addr) => {
    const res = await get(pool, addr);
    assert.equal(res.status, 201);
    assert.equal(res.statusText, "Created");
    assert.equal(new Headers(res.headers).get("link"), null);
    assert.equal(new Headers(res.headers).get("x-final"), "1");
    assert.equal(await text(res), "ok");
    await assert.rejects(get(pool, addr), (e) => e instanceof UpstreamError && e.kind === "protocol");
  });
});

Deno.test("chunked bodies: extensions ignored, trailers discarded, connection reused", async () => {
  await withScript([
    "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\nA \r\n, chunked!\r\n0\r\nx-t: 1\r\n\r\n",
    // Transfer-Encoding overrides Content-Length; such a response must not be followed on this connection.
    "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n4\r\nte w\r\n3\r\nins\r\n0\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
  ], async (pool, addr, server) => {
    assert.equal(await text(await get(pool, addr)), "hello, chunked!");
    assert.equal(server.accepted, 1);
    assert.equal(await text(await get(pool, addr)), "te wins");
    await get(pool, addr);
    assert.equal(server.accepted, 2);
  });
});

Deno.test("without framing headers, or on HTTP/1.0, the body runs until the backend closes", async () => {
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  await withScript(
    [new Uint8Array([...enc.encode("HTTP/1.1 200 OK\r\nx: y\r\n\r\n"), ...big])],
    async (pool, addr) => {
      const res = await get(pool, addr);
      assert.deepEqual(new Uint8Array(await new Response(res.body).arrayBuffer()), big);
    },
  );
  await withScript(["HTTP/1.0 200 OK\r\n\r\nold"], async (pool, addr) => {
    assert.equal(await text(await get(pool, addr)), "old");
  });
});

Deno.test("malformed responses are protocol errors", async () => {
  const malformed = [
    "HTTP/1.1 2000 OK\r\n\r\n",
    "HTTP/2 200 OK\r\n\r\n",
    "HTTP/1.1 200 OK\ncontent-length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nx: a\r\n folded\r\n\r\n",
    "HTTP/1.1 200 OK\r\nbad name: 1\r\n\r\n",
    "HTTP/1.1 200 OK\r\n: empty\r\n\r\n",
    "HTTP/1.1 200 OK\r\nx: a\0b\r\n\r\n",
    "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\ncontent-length: 5, 6\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
    `HTTP/1.1 200 OK\r\nx: ${"a".repeat(70_000)}\r\n\r\n`,
  ];
  for (const response of malformed) {
    await withScript([response], async (pool, addr) => {
      await assert.rejects(
        get(pool, addr),
        (e) => e instanceof UpstreamError && e.kind === "protocol",
        JSON.stringify(response.slice(0, 60)),
      );
    });
  }
  // Equal repeated values are allowed.
  await withScript(
    ["HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 2\r\n\r\nok"],
    async (pool, addr) => {
      assert.equal(await text(await get(pool, addr)), "ok");
    },
  );
});

Deno.test("malformed or truncated bodies fail the body stream", async () => {
  const cases: [string, string][] = [
    ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", "protocol"],
    ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", "protocol"],
    ["HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel", "reset"],
    ["HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", "reset"],
  ];
  for (const [response, kind] of cases) {
    await withScript([response], async (pool, addr) => {
      const res = await get(pool, addr);
      await assert.rejects(text(res), (e) => e instanceof UpstreamError && e.kind === kind, response);
    });
  }
});

Deno.test("a backend that closes before answering is a reset", async () => {
  await withScript([], async (pool, addr) => {
    await assert.rejects(get(pool, addr), (e) => e instanceof UpstreamError && e.kind === "reset");
  });
});

Deno.test("large downloads arrive intact: content-length and chunked", async () => {
  const data = new Uint8Array(8 * 1024 * 1024 + 5);
  for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
  const expected = createHash("sha256").update(data).digest("hex");
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    if (new URL(req.url).pathname === "/length") return new Response(data);
    let off = 0;
    return new Response(
      new ReadableStream({
        pull(c) {
          if (off >= data.length) return c.close();
          c.enqueue(data.slice(off, off + 50_000));
          off += 50_000;
        },
      }),
    );
  });
  const pool = new Http1Pool(POOL_OPTS);
  try {
    for (const [path, framing] of [["/length", "content-length"], ["/chunked", "transfer-encoding"]]) {
      const res = await pool.request(`127.0.0.1:${server.addr.port}`, {
        method: "GET",
        path,
        headers: [],
        body: null,
      });
      assert.ok(new Headers(res.headers).has(framing), path);
      const hash = createHash("sha256");
      assert.ok(res.body instanceof ReadableStream, "a large body streams");
      for await (const chunk of res.body) hash.update(chunk);
      assert.equal(hash.digest("hex"), expected, path);
    }
  } finally {
    pool.close();
    await server.shutdown();
  }
});

Deno.test("the response and its first body bytes arrive before the backend has sent the rest", async () => {
  const { promise: firstSeen, resolve: sawFirst } = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
    new Response(
      new ReadableStream({
        async start(c) {
          c.enqueue(enc.encode("first"));
          // The last chunk is only produced once the client has seen the first.
          await firstSeen;
          c.enqueue(enc.encode("last"));
          c.close();
        },
      }),
    ));
  const pool = new Http1Pool(POOL_OPTS);
  try {
    const res = await pool.request(`127.0.0.1:${server.addr.port}`, {
      method: "GET",
      path: "/",
      headers: [],
      body: null,
    });
    assert.ok(res.body instanceof ReadableStream, "a body still on its way streams");
    const reader = res.body.getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), "first");
    sawFirst();
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      rest += new TextDecoder().decode(r.value);
    }
    assert.equal(rest, "last");
  } finally {
    sawFirst();
    pool.close();
    await server.shutdown();
  }
});
