/**
 * `Http1Pool` puts on the wire exactly the request the caller gave (headers in order and case, nothing
 * like fetch's `accept`/`user-agent` added), frames request bodies correctly, and uploads large bodies
 * intact. A raw TCP server records the request bytes; a `Deno.serve` backend hashes uploads.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Http1Pool, UpstreamError } from "../proxy/http1_client.ts";

const POOL_OPTS = { connectTimeoutMs: 2000, idleTimeoutMs: 5000, maxIdlePerBackend: 4 };
const latin1 = new TextDecoder("latin1");

/** Reads everything the client sends on one connection until `complete(bytes)` says the request is whole. */
async function recordRequest(conn: Deno.Conn, complete: (text: string) => boolean): Promise<Uint8Array> {
  const parts: number[] = [];
  const buf = new Uint8Array(65536);
  while (!complete(String.fromCharCode(...parts))) {
    const n = await conn.read(buf);
    if (n === null) break;
    for (let i = 0; i < n; i++) parts.push(buf[i]);
  }
  return new Uint8Array(parts);
}

/** A backend that records one request per connection and answers `200`, closing the connection. */
function recordingServer(complete: (text: string) => boolean) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: Uint8Array[] = [];
  const served = (async () => {
    for await (const conn of listener) {
      try {
        requests.push(await recordRequest(conn, complete));
        await conn.write(
          new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
        );
      } finally {
        conn.close();
      }
    }
  })();
  return {
    addr: `127.0.0.1:${listener.addr.port}`,
    requests,
    async close() {
      listener.close();
      await served;
    },
  };
}

const headEnded = (text: string) => text.includes("\r\n\r\n");

function streamOf(data: Uint8Array, piece: number): ReadableStream<Uint8Array> {
  let off = 0;
  return new ReadableStream({
    pull(c) {
      if (off >= data.length) return c.close();
      c.enqueue(data.slice(off, off + piece));
      off += piece;
    },
  });
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

Deno.test("headers go out exactly as given: order, case, duplicates, nothing added", async () => {
  const server = recordingServer(headEnded);
  const pool = new Http1Pool(POOL_OPTS);
  try {
    const res = await pool.request(server.addr, {
      method: "GET",
      path: "/p?q=1",
      headers: [["Host", "example.test"], ["X-B", "2"], ["x-a", "1"], ["X-Dup", "a"], ["X-Dup", "b"]],
      body: null,
    });
    assert.equal(res.status, 200);
    assert.equal(
      latin1.decode(server.requests[0]),
      "GET /p?q=1 HTTP/1.1\r\nHost: example.test\r\nX-B: 2\r\nx-a: 1\r\nX-Dup: a\r\nX-Dup: b\r\n\r\n",
    );
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("a request without Host gets the backend address, and no other header", async () => {
  const server = recordingServer(headEnded);
  const pool = new Http1Pool(POOL_OPTS);
  try {
    await pool.request(server.addr, { method: "DELETE", path: "/x", headers: [], body: null });
    assert.equal(latin1.decode(server.requests[0]), `DELETE /x HTTP/1.1\r\nhost: ${server.addr}\r\n\r\n`);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("header values are byte strings: obs-text goes out as single bytes", async () => {
  const server = recordingServer(headEnded);
  const pool = new Http1Pool(POOL_OPTS);
  try {
    await pool.request(server.addr, {
      method: "GET",
      path: "/",
      headers: [["x-v", "caf\u00e9"]],
      body: null,
    });
    const bytes = server.requests[0];
    const at = latin1.decode(bytes).indexOf("x-v: caf") + "x-v: caf".length;
    assert.equal(bytes[at], 0xe9);
    assert.equal(bytes[at + 1], 13);
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("headers that could inject lines or smuggle a second body framing are refused before connecting", async () => {
  const pool = new Http1Pool(POOL_OPTS);
  for (
    const headers of [[["x", "a\r\nevil: 1"]], [["bad name", "1"]], [["x", "a\0"]]] as [string, string][][]
  ) {
    await assert.rejects(
      pool.request("127.0.0.1:9", { method: "GET", path: "/", headers, body: null }),
      TypeError,
    );
  }
  await assert.rejects(
    pool.request("127.0.0.1:9", { method: "GET", path: "/a b", headers: [], body: null }),
    TypeError,
  );
  await assert.rejects(
    pool.request("127.0.0.1:9", {
      method: "POST",
      path: "/",
      headers: [["content-length", "2"], ["transfer-encoding", "chunked"]],
      body: new Response("hi").body,
    }),
    (e) => e instanceof UpstreamError && e.kind === "request_body",
  );
  pool.close();
});

Deno.test("a body with content-length is sent as is; without one it is chunked", async () => {
  const server = recordingServer((t) => t.endsWith("hello") || t.endsWith("0\r\n\r\n"));
  const pool = new Http1Pool(POOL_OPTS);
  const enc = new TextEncoder();
  try {
    await pool.request(server.addr, {
      method: "POST",
      path: "/",
      headers: [["host", "h"], ["content-length", "5"]],
      body: streamOf(enc.encode("hello"), 2),
    });
    await pool.request(server.addr, {
      method: "POST",
      path: "/",
      headers: [["host", "h"]],
      body: streamOf(enc.encode("hello world, chunked"), 8),
    });
    assert.equal(
      latin1.decode(server.requests[0]),
      "POST / HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\nhello",
    );
    assert.equal(
      latin1.decode(server.requests[1]),
      "POST / HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n" +
        "8\r\nhello wo\r\n8\r\nrld, chu\r\n4\r\nnked\r\n0\r\n\r\n",
    );
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("a body shorter or longer than its content-length fails as request_body", async () => {
  const server = recordingServer(headEnded);
  const pool = new Http1Pool(POOL_OPTS);
  try {
    for (const length of ["4", "6"]) {
      await assert.rejects(
        pool.request(server.addr, {
          method: "PUT",
          path: "/",
          headers: [["content-length", length]],
          body: streamOf(new TextEncoder().encode("hello"), 5),
        }),
        (e) => e instanceof UpstreamError && e.kind === "request_body",
      );
    }
  } finally {
    pool.close();
    await server.close();
  }
});

Deno.test("large uploads arrive intact, chunked and with content-length", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const body = new Uint8Array(await req.arrayBuffer());
    return new Response(sha256(body), {
      headers: { "x-framing": req.headers.has("transfer-encoding") ? "chunked" : "length" },
    });
  });
  const addr = `127.0.0.1:${server.addr.port}`;
  const pool = new Http1Pool(POOL_OPTS);
  try {
    const data = randomBytes(8 * 1024 * 1024 + 3);
    const expected = sha256(data);
    const cases: [string, [string, string][], number][] = [
      ["chunked", [], 1000],
      ["chunked", [], 100_000],
      ["length", [["content-length", String(data.length)]], 100_000],
    ];
    for (const [framing, headers, piece] of cases) {
      const res = await pool.request(addr, {
        method: "POST",
        path: "/",
        headers,
        body: streamOf(data, piece),
      });
      assert.equal(new Headers(res.headers).get("x-framing"), framing);
      assert.ok(res.body !== null);
      assert.equal(await new Response(res.body).text(), expected);
    }
  } finally {
    pool.close();
    await server.shutdown();
  }
});

Deno.test("a chunked upload streams: the backend reads the first chunk before the last one exists", async () => {
  const { promise: firstArrived, resolve: firstChunkArrived } = Promise.withResolvers<void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    let received = "";
    for await (const chunk of req.body!) {
      received += new TextDecoder().decode(chunk);
      if (received.startsWith("first")) firstChunkArrived();
    }
    return new Response(received);
  });
  const pool = new Http1Pool(POOL_OPTS);
  try {
    const body = new ReadableStream<Uint8Array>({
      async start(c) {
        c.enqueue(new TextEncoder().encode("first"));
        // Produced only once the backend has the first chunk: a client that buffers the body deadlocks.
        await firstArrived;
        c.enqueue(new TextEncoder().encode(" last"));
        c.close();
      },
    });
    const res = await pool.request(`127.0.0.1:${server.addr.port}`, {
      method: "POST",
      path: "/",
      headers: [],
      body,
    });
    assert.equal(await new Response(res.body).text(), "first last");
  } finally {
    firstChunkArrived();
    pool.close();
    await server.shutdown();
  }
});
