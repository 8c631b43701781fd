/**
 * Reading HTTP/1.1 off a raw socket, for tests that play a backend byte by byte.
 *
 * @module
 */

/** Reads one request head (the tests using it send no request bodies); null when the client closed. */
export async function readRequestHead(conn: Deno.Conn): Promise<string | null> {
  let text = "";
  const buf = new Uint8Array(4096);
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) return null;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}
