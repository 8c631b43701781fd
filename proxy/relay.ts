/**
 * Byte relays between a client connection (decrypted TLS or plain TCP) and a loopback connection to the
 * worker's internal HTTP server. The client-to-server direction passes each chunk to a tap first, which
 * is where the HTTP/2 fingerprint is captured; the other direction may pass each chunk to a downstream
 * hook, which is where the server's HTTP/2 GOAWAYs are counted.
 *
 * @module
 */
import type { TlsClient } from "./tls_front.ts";

/** Writes all of `bytes`; `Deno.Conn.write` may write fewer. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) bytes = bytes.subarray(await conn.write(bytes));
}

/** Callbacks the relay makes as bytes flow. */
export interface RelayHooks {
  /** Sees each client chunk before it is forwarded. */
  tap(chunk: Uint8Array): void;
  /**
   * Sees each server chunk before it is sent to the client. Read for every chunk, so that it can be set
   * once the protocol is known and left unset (costing nothing) on connections that do not need it.
   */
  downstream?(chunk: Uint8Array): void;
}

/** Closes `c`, ignoring that it may be closed already. */
export function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch {
    // already closed
  }
}

/**
 * Copies the client's bytes to the internal server until EOF, then half-closes towards it. A failed
 * write only stops the copy: the server has closed, and its last bytes may still be on their way to the
 * client, which the other direction must deliver before the connection is torn down.
 */
async function pumpUp(client: Deno.Conn, internal: Deno.Conn, hooks: RelayHooks): Promise<void> {
  const buf = new Uint8Array(16 * 1024);
  while (true) {
    const n = await client.read(buf);
    if (n === null) return void internal.closeWrite().catch(() => {});
    const chunk = buf.subarray(0, n);
    hooks.tap(chunk);
    if (!await writeAll(internal, chunk).then(() => true, () => false)) return;
  }
}

/**
 * Relays a plain TCP client to `internal` until the server side ends (it closes after the client's EOF,
 * on its idle rules, or on shutdown) or the client fails; both connections are closed on return.
 */
export async function relayPlain(client: Deno.Conn, internal: Deno.Conn, hooks: RelayHooks): Promise<void> {
  const closeBoth = () => {
    closeQuietly(client);
    closeQuietly(internal);
  };
  pumpUp(client, internal, hooks).catch(closeBoth);
  try {
    const buf = new Uint8Array(16 * 1024);
    while (true) {
      const n = await internal.read(buf);
      if (n === null) break;
      const chunk = buf.subarray(0, n);
      hooks.downstream?.(chunk);
      await writeAll(client, chunk);
    }
    await client.closeWrite();
  } catch {
    // either side failed: close both below
  }
  closeBoth();
}

/** Like `relayPlain`, with the client behind a TLS socket. */
export async function relayTls(tlsClient: TlsClient, internal: Deno.Conn, hooks: RelayHooks): Promise<void> {
  const client = tlsClient.socket;
  const closeBoth = () => {
    client.destroy();
    closeQuietly(internal);
  };
  const closed = new Promise((r) => client.once("close", r));
  const forward = (chunk: Uint8Array) => {
    hooks.tap(chunk);
    client.pause();
    // A failed write leaves the client paused: see `pumpUp`.
    writeAll(internal, chunk).then(() => client.resume(), () => {});
  };
  client.on("data", forward);
  client.on("end", () => internal.closeWrite().catch(closeBoth));
  client.on("error", closeBoth);
  closed.then(closeBoth);
  try {
    while (true) {
      const buf = new Uint8Array(16 * 1024);
      const n = await internal.read(buf);
      if (n === null) break;
      const chunk = buf.subarray(0, n);
      hooks.downstream?.(chunk);
      if (!client.write(chunk)) {
        await Promise.race([new Promise((r) => client.once("drain", r)), closed]);
      }
    }
    // Nothing reads the client's bytes any more, but its EOF must be read, also when a failed write left
    // it paused: the socket only closes on it (a server that refused a client would otherwise hold its
    // connection until the idle timeout). Then let the last bytes and close_notify leave.
    client.off("data", forward).resume();
    client.end();
    await tlsClient.flushed;
  } catch {
    // either side failed: close both below
  }
  closeBoth();
}
