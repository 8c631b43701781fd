/**
 * A connection's fingerprint headers are checked and serialized once (a `FieldBlock`) and spliced into
 * each request head, without changing what backends receive: the same bytes as the fields one by one,
 * in the same place, on the first and the tenth request of a connection, the Akamai fingerprint
 * included once it is known; invalid fields still fail the request; and header edits that name a field
 * of the block change that field in place.
 */
import assert from "node:assert/strict";
import { fingerprintFields } from "../proxy/connections.ts";
import { HeaderList } from "../proxy/header_list.ts";
import { FieldBlock, Http1Pool, requestHead } from "../proxy/http1_client.ts";
import { readRequestHead } from "./support/http1_wire.ts";
import { run, startProxy } from "./support/proxy_harness.ts";

const TLS: [string, string][] = [
  ["x-tls-ja4", "t13d1516h2_8daaf6152771_d8a2da3f94cd"],
  ["x-tls-ja3-hash", "b5001237acdf006056b409cc433726b0"],
];
const AKAMAI: [string, string] = ["x-http2-akamai", "1:65536;4:6291456|15663105|0|m,a,s,p"];
const CLIENT: [string, string][] = [["host", "example.test"], ["accept", "*/*"], ["x-v", "caf\u00e9"]];

Deno.test("a block puts the same head on the wire as its fields one by one", () => {
  const request = (headers: Iterable<readonly [string, string] | FieldBlock>) =>
    requestHead("127.0.0.1:1", { method: "GET", path: "/", headers, body: null }).text;
  assert.equal(
    request([...CLIENT, new FieldBlock([...TLS, AKAMAI]), ["x-after", "1"]]),
    request([...CLIENT, ...TLS, AKAMAI, ["x-after", "1"]]),
  );
});

Deno.test("a block with a field that could not be sent fails the request before it connects", async () => {
  const pool = new Http1Pool({ connectTimeoutMs: 2000, idleTimeoutMs: 5000, maxIdlePerBackend: 4 });
  try {
    for (const bad of [["x-tls-ja4", "a\r\nevil: 1"], ["bad name", "1"], ["host", "elsewhere"]]) {
      const block = new FieldBlock([...TLS, bad as [string, string]]);
      await assert.rejects(
        pool.request("127.0.0.1:9", { method: "GET", path: "/", headers: [block], body: null }),
        TypeError,
      );
    }
  } finally {
    pool.close();
  }
});

Deno.test("a connection's block is built once, and again when the Akamai fingerprint joins the list", () => {
  const ctx: { fingerprints: Array<[string, string]>; fingerprintFields?: FieldBlock } = {
    fingerprints: [...TLS],
  };
  const first = fingerprintFields(ctx);
  assert.equal(fingerprintFields(ctx), first, "reused while the list is unchanged");
  ctx.fingerprints.push(AKAMAI);
  const second = fingerprintFields(ctx);
  assert.notEqual(second, first);
  assert.deepEqual(second.fields, [...TLS, AKAMAI]);
  assert.equal(fingerprintFields(ctx), second);
});

Deno.test("a header list keeps a block whole, and opens it in place when an edit names its field", () => {
  const headers = new HeaderList();
  headers.append("accept", "*/*");
  headers.appendBlock(new FieldBlock([...TLS, AKAMAI]));
  headers.set("host", "backend.test");
  assert.equal(headers.get("x-tls-ja4"), TLS[0][1]);
  assert.ok(headers.has("x-http2-akamai"));
  assert.equal([...headers].filter((field) => field instanceof FieldBlock).length, 1, "still one block");

  headers.set("X-TLS-JA3-Hash", "replaced");
  headers.delete("x-tls-ja4");
  assert.deepEqual([...headers], [
    ["accept", "*/*"],
    ["x-tls-ja3-hash", "replaced"],
    AKAMAI,
    ["host", "backend.test"],
  ]);
});

/** A backend that records every request head and answers each with a small keep-alive response. */
function recordingBackend() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const heads: string[] = [];
  const conns = new Set<Deno.Conn>();
  const serving: Promise<void>[] = [];
  const served = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      serving.push((async () => {
        try {
          for (let head = await readRequestHead(conn); head !== null; head = await readRequestHead(conn)) {
            heads.push(head);
            await conn.write(new TextEncoder().encode("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"));
          }
        } catch {
          // The proxy closed the connection.
        } finally {
          conns.delete(conn);
          conn.close();
        }
      })());
    }
  })();
  return {
    address: `127.0.0.1:${listener.addr.port}`,
    heads,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of conns) conn.close();
      await served;
      await Promise.all(serving);
    },
  };
}

/** The fingerprint header lines of a request head, in order, as the backend received them. */
function fingerprintLines(head: string): string[] {
  return head.split("\r\n").filter((line) => /^x-(tls|http2|tcp)-/.test(line));
}

Deno.test({
  name: "every request of a connection reaches the backend with byte-identical fingerprint lines",
  async fn() {
    await using backend = recordingBackend();
    await using proxy = await startProxy({
      backends: [{ address: backend.address }],
      domains: [{
        host: "*",
        routes: [
          { prefix: "/", backend: backend.address },
          { prefix: "/nofp", backend: backend.address, fingerprinting: false },
        ],
      }],
    });
    for (const version of ["--http2", "--http1.1"]) {
      backend.heads.length = 0;
      // Ten requests on one connection, every third to the route without fingerprinting.
      const paths = Array.from({ length: 10 }, (_, i) => i % 3 === 2 ? `/nofp/${i}` : `/${i}`);
      const r = await run([
        "curl",
        "-sk",
        version,
        "-w",
        "%{num_connects}\\n",
        ...paths.flatMap((path) => ["-o", "/dev/null", proxy.url(path)]),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim().split("\n").map(Number).reduce((a, b) => a + b), 1, "one connection");
      assert.equal(backend.heads.length, paths.length);

      const withFingerprints = backend.heads.filter((head) => !head.startsWith("GET /nofp/"));
      const lines = fingerprintLines(withFingerprints[0]);
      assert.ok(lines.some((line) => line.startsWith("x-tls-ja4: ")), version);
      assert.equal(lines.some((line) => line.startsWith("x-http2-akamai: ")), version === "--http2");
      for (const head of withFingerprints) {
        assert.deepEqual(fingerprintLines(head), lines, head);
        // One run of lines, right after the x-forwarded-* fields, as before they came as one block.
        assert.ok(head.includes(`\r\nx-forwarded-proto: https\r\n${lines.join("\r\n")}\r\n`), head);
      }
      for (const head of backend.heads.filter((head) => head.startsWith("GET /nofp/"))) {
        assert.deepEqual(fingerprintLines(head), [], head);
      }
    }
  },
});
