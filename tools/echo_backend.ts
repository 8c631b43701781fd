/**
 * A backend for demos and tests: answers every request with JSON describing what it received, so that
 * the headers the proxy added (fingerprints, x-forwarded-*) can be read back by the client.
 *
 * Usage: deno run --allow-net --allow-env tools/echo_backend.ts [PORT]   (or ECHO_PORT; default 9000)
 *
 * @module
 */

/** What the backend answers: the request line, every header (repeated ones joined by ", ") and the body size. */
export interface Echo {
  method: string;
  path: string;
  headers: Record<string, string>;
  body_bytes: number;
}

async function countBytes(body: ReadableStream<Uint8Array> | null): Promise<number> {
  let n = 0;
  if (body) { for await (const chunk of body) n += chunk.length; }
  return n;
}

/** Serves the echo on `hostname:port` until `signal` aborts. */
export function serveEcho(port: number, hostname = "127.0.0.1", signal?: AbortSignal): Deno.HttpServer {
  return Deno.serve({ port, hostname, signal, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const echo: Echo = {
      method: req.method,
      path: url.pathname + url.search,
      headers: Object.fromEntries(req.headers),
      body_bytes: await countBytes(req.body),
    };
    return Response.json(echo);
  });
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? Deno.env.get("ECHO_PORT") ?? 9000);
  const hostname = Deno.env.get("ECHO_HOST") ?? "127.0.0.1";
  const server = serveEcho(port, hostname);
  console.error(JSON.stringify({ level: "info", component: "echo", msg: "listening", hostname, port }));
  await server.finished;
}
