/**
 * Requests/s of `Http1Pool` against `fetch` with a keep-alive `Deno.createHttpClient`, both on the same
 * local `Deno.serve` backend (a separate process) in the same run: one request at a time, 16 concurrent, and a 4 KiB upload.
 * Bodies are read to the end so connections return to the pools.
 *
 * And what the fingerprint fields add to each request: a browser-like request head encoded and written
 * with and without them (the rest of a request is the same either way, and its round trip would hide a
 * difference of this size).
 */
import { FieldBlock, headBytes, Http1Pool, requestHead } from "../proxy/http1_client.ts";
import { parseResponseHead } from "../proxy/http1_parse.ts";
import { FINGERPRINT_HEADERS } from "./support/fingerprint_headers.ts";

// The backend runs in its own process so the figures measure the clients, not the server sharing their
// thread. It exits when its stdin closes, i.e. when this bench process ends.
const BACKEND = `
  Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) }, async (req) => {
    if (req.body !== null) await req.arrayBuffer();
    return new Response("ok");
  });
  for await (const _ of Deno.stdin.readable);
  Deno.exit(0);
`;
const child = new Deno.Command(Deno.execPath(), { args: ["eval", BACKEND], stdin: "piped", stdout: "piped" })
  .spawn();
const port = (await child.stdout.pipeThrough(new TextDecoderStream()).getReader().read()).value?.trim();
const backend = `127.0.0.1:${port}`;
const pool = new Http1Pool({ connectTimeoutMs: 10_000, idleTimeoutMs: 30_000, maxIdlePerBackend: 64 });
const client = Deno.createHttpClient({ http1: true, http2: false });
const upload = new Uint8Array(4096);
const headers: [string, string][] = [["host", backend], ["x-client", "bench"]];

async function viaPool(body: Uint8Array<ArrayBuffer> | null): Promise<void> {
  const res = await pool.request(backend, {
    method: body === null ? "GET" : "POST",
    path: "/",
    headers: body === null ? headers : [...headers, ["content-length", String(body.length)]],
    body: body === null ? null : new Response(body).body,
  });
  await new Response(res.body).arrayBuffer();
}

async function viaFetch(body: Uint8Array<ArrayBuffer> | null): Promise<void> {
  const res = await fetch(`http://${backend}/`, {
    method: body === null ? "GET" : "POST",
    headers,
    body: body === null ? null : new Response(body).body,
    client,
  });
  await res.arrayBuffer();
}

const concurrently = (send: () => Promise<void>) => Promise.all(Array.from({ length: 16 }, send));

Deno.bench("Http1Pool GET", { group: "sequential", baseline: true }, () => viaPool(null));
Deno.bench("fetch GET", { group: "sequential" }, () => viaFetch(null));
Deno.bench("Http1Pool 16 concurrent GETs", { group: "concurrent", baseline: true }, async () => {
  await concurrently(() => viaPool(null));
});
Deno.bench("fetch 16 concurrent GETs", { group: "concurrent" }, async () => {
  await concurrently(() => viaFetch(null));
});
Deno.bench("Http1Pool POST 4 KiB", { group: "upload", baseline: true }, () => viaPool(upload));
Deno.bench("fetch POST 4 KiB", { group: "upload" }, () => viaFetch(upload));

/** A browser's request as the proxy forwards it: its own headers, then the proxy's `x-forwarded-*`. */
const browser: [string, string][] = [
  ["host", "example.com"],
  ["user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"],
  ["accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
  ["accept-encoding", "gzip, deflate, br, zstd"],
  ["accept-language", "en-US,en;q=0.5"],
  ["cookie", "session=0123456789abcdef; theme=dark"],
  ["referer", "https://example.com/start"],
  ["x-forwarded-for", "198.51.100.7"],
  ["x-forwarded-host", "example.com"],
  ["x-forwarded-port", "51234"],
  ["x-forwarded-proto", "https"],
];

const fingerprints = FINGERPRINT_HEADERS;

const sink = Deno.openSync("/dev/null", { write: true });
const writeBuffer = new Uint8Array(32 * 1024);

/**
 * What `Http1Pool.request` does with a request head before it waits for the response, the write made
 * synchronous and to /dev/null: a socket's asynchronous write varies by more than what is measured here.
 */
function sendHead(headers: Iterable<readonly [string, string] | FieldBlock>): void {
  const head = requestHead(backend, { method: "GET", path: "/", headers, body: null });
  const bytes = headBytes(head.text, writeBuffer);
  for (let off = 0; off < bytes.length;) off += sink.writeSync(bytes.subarray(off));
}

const withBlock = [...browser, new FieldBlock(fingerprints)];
const withFields = [...browser, ...fingerprints];
Deno.bench(
  "request head, fingerprinting off",
  { group: "request head", baseline: true },
  () => sendHead(browser),
);
Deno.bench("request head with the 9 fingerprint fields, one block per connection", {
  group: "request head",
}, () => sendHead(withBlock));
// What the block saves: the fields checked and joined again for every request.
Deno.bench(
  "request head with the 9 fingerprint fields, one by one",
  { group: "request head" },
  () => sendHead(withFields),
);

// The response head of the load benchmark's nginx backend, and a typical application's.
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const NGINX_HEAD = latin1(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 17:08:00 GMT\r\n" +
    "Content-Type: application/json\r\nContent-Length: 256\r\nConnection: keep-alive\r\n\r\n",
);
const APP_HEAD = latin1(
  "HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 25 Nov 2026 17:08:00 GMT\r\n" +
    "Content-Type: text/html; charset=utf-8\r\nContent-Length: 12345\r\nConnection: keep-alive\r\n" +
    "Vary: Accept-Encoding\r\nCache-Control: private, max-age=0\r\n" +
    "Set-Cookie: session=abcdef0123456789; Path=/; HttpOnly; Secure; SameSite=Lax\r\n" +
    "X-Frame-Options: SAMEORIGIN\r\nX-Content-Type-Options: nosniff\r\n" +
    'Strict-Transport-Security: max-age=31536000\r\nETag: "5f3c-abcdef"\r\n\r\n',
);
for (const [name, head] of [["nginx, 5 fields", NGINX_HEAD], ["application, 12 fields", APP_HEAD]] as const) {
  if (parseResponseHead(head, "GET").kind !== "head") throw new Error(`bench input refused: ${name}`);
  Deno.bench(`parseResponseHead, ${name}`, { group: "response head" }, () => {
    parseResponseHead(head, "GET");
  });
}
