/**
 * Requests/s of `Http1Pool` against `fetch` with a keep-alive `Deno.createHttpClient`, both on the same
 * local `Deno.serve` backend (a separate process) in the same run: one request at a time, 16 concurrent, and a 4 KiB upload.
 * Bodies are read to the end so connections return to the pools.
 */
import { Http1Pool } from "../proxy/http1_client.ts";

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
