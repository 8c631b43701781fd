/**
 * Byte relays between a client connection (decrypted TLS or plain TCP) and a loopback connection to the
 * worker's internal HTTP server. The client-to-server direction passes each chunk to a tap first, which
 * is where the HTTP/2 fingerprint is captured; the other direction may pass each chunk to a downstream
 * hook, which is where the server's HTTP/2 GOAWAYs are counted.
 *
 * @module
 */
import { ReadSize } from "./read_size.ts";
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
 * How long, after its last bytes went out, a client that is still sending is read (and what it sends
 * dropped) before its connection is closed. Closing a socket with unread bytes makes the kernel answer
 * with a reset, and a reset makes the client's kernel drop what the client had not read yet: typically
 * the GOAWAY or error response that explains the close. nginx's lingering close, with a shorter wait.
 */
export const LINGER_MS = 2000;

/** Settles when `done` does or after `LINGER_MS`, whichever is first. */
export async function linger(done: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([done, new Promise((r) => timer = setTimeout(r, LINGER_MS))]);
  clearTimeout(timer);
}

/**
 * Copies the client's bytes to the internal server until EOF, then half-closes towards it. Once a write
 * fails (the server has closed) the client's bytes are read and dropped until EOF: the server's last
 * bytes may still be on their way to the client, see `LINGER_MS`.
 */
async function pumpUp(client: Deno.Conn, internal: Deno.Conn, hooks: RelayHooks): Promise<void> {
  const reads = new ReadSize();
  let forwarding = true;
  while (true) {
    // The previous chunk was written out, and the tap copies what it keeps.
    const chunk = await reads.read(client, true);
    if (chunk === null) return void internal.closeWrite().catch(() => {});
    if (!forwarding) continue;
    hooks.tap(chunk);
    forwarding = await writeAll(internal, chunk).then(() => true, () => false);
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
  const up = pumpUp(client, internal, hooks).catch(closeBoth);
  try {
    const reads = new ReadSize();
    while (true) {
      const chunk = await reads.read(internal, true);
      if (chunk === null) break;
      hooks.downstream?.(chunk);
      await writeAll(client, chunk);
    }
    await client.closeWrite();
    await linger(up);
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
    const reads = new ReadSize();
    while (true) {
      // A Writable counts a chunk until its write completes: at 0 the TLS socket holds no chunk of ours.
      const chunk = await reads.read(internal, client.writableLength === 0);
      if (chunk === null) break;
      hooks.downstream?.(chunk);
      if (!client.write(chunk)) {
        await Promise.race([new Promise((r) => client.once("drain", r)), closed]);
      }
    }
    // The client's bytes are no longer forwarded but still read, also when a failed write left it paused:
    // the socket only closes on its EOF, and see `LINGER_MS`. The last bytes and close_notify leave first.
    client.off("data", forward).resume();
    await tlsClient.end();
    await linger(tlsClient.clientEnded);
  } catch {
    // either side failed: close both below
  }
  closeBoth();
}
