/**
 * TLS termination in JavaScript: `node:tls` over a raw Deno TCP connection. Terminating here rather than
 * in `Deno.serve` is what lets the proxy see the ClientHello bytes (it reads them first and hands them to
 * the TLS engine) and the decrypted client bytes (for the HTTP/2 fingerprint).
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { Duplex } from "node:stream";
import tls from "node:tls";
import type { Logger } from "../shared/log.ts";
import { closeQuietly, writeAll } from "./relay.ts";

/** A Node stream over a Deno connection whose first bytes were already read. */
class ConnDuplex extends Duplex {
  #conn: Deno.Conn;
  #reading = false;

  constructor(conn: Deno.Conn, first: Uint8Array) {
    super();
    this.#conn = conn;
    this.push(first);
  }

  override _read() {
    if (!this.#reading) this.#pump();
  }

  async #pump() {
    this.#reading = true;
    try {
      while (true) {
        const buf = new Uint8Array(16 * 1024);
        const n = await this.#conn.read(buf);
        if (n === null) return void this.push(null);
        if (!this.push(buf.subarray(0, n))) return void (this.#reading = false);
      }
    } catch (e) {
      this.destroy(e as Error);
    }
  }

  override _write(chunk: Uint8Array, _encoding: string, done: (e?: Error | null) => void) {
    writeAll(this.#conn, chunk).then(() => done(), done);
  }

  override _final(done: (e?: Error | null) => void) {
    this.#conn.closeWrite().then(() => done(), () => done());
  }

  override _destroy(err: Error | null, done: (e?: Error | null) => void) {
    closeQuietly(this.#conn);
    done(err);
  }
}

/** A client connection after its TLS handshake. */
export interface TlsClient {
  /** Its `data` is the decrypted client stream; `alpnProtocol` is set. */
  socket: tls.TLSSocket;
  /**
   * Settles once everything written to `socket` before `end()` has reached the TCP connection (and
   * after a close). The TLS socket finishes earlier than that, so destroying it on its own `finish`
   * would cut off the last bytes of a response.
   */
  flushed: Promise<void>;
}

/**
 * Runs the server side of a TLS handshake on `conn`, starting with the `first` bytes already read from
 * it. Rejects with the TLS error, the connection destroyed; later errors destroy the socket too.
 */
export function acceptTls(
  conn: Deno.Conn,
  first: Uint8Array,
  context: tls.SecureContext,
  alpn: string[],
): Promise<TlsClient> {
  const raw = new ConnDuplex(conn, first);
  const flushed = new Promise<void>((r) => {
    raw.once("finish", r);
    raw.once("close", r);
  });
  const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: context, ALPNProtocols: alpn });
  return new Promise((resolve, reject) => {
    // Stays attached: an error event without a listener would throw and take the worker down.
    socket.on("error", (e: Error) => {
      socket.destroy();
      reject(e);
    });
    socket.once("close", () => reject(new Error("connection closed during the TLS handshake")));
    socket.once("secure", () => resolve({ socket, flushed }));
  });
}

/** The current certificate, re-read when its files change. */
export interface CertificateStore {
  /** The context new handshakes use. */
  context(): tls.SecureContext;
  stop(): void;
}

async function mtimes(paths: string[]): Promise<string> {
  const stats = await Promise.all(paths.map((p) => Deno.stat(p)));
  return stats.map((s) => `${s.mtime?.getTime()}:${s.size}`).join(",");
}

/**
 * Reads a certificate and key into a context. `createSecureContext` accepts anything here and would
 * only fail at the next handshake, so the pair is checked first: both parse, and the key is the
 * certificate's.
 */
async function load(certPath: string, keyPath: string): Promise<tls.SecureContext> {
  const [cert, key] = await Promise.all([Deno.readTextFile(certPath), Deno.readTextFile(keyPath)]);
  if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
    throw new Error(`${keyPath} is not the key of ${certPath}`);
  }
  return tls.createSecureContext({ cert, key });
}

/**
 * Loads the certificate and key (throws if they are unusable) and polls their mtimes every
 * `delaySecs`. A changed pair that fails to load is logged and the previous certificate kept, so that a
 * half-written renewal never takes the listener down.
 */
export async function watchCertificate(
  certPath: string,
  keyPath: string,
  delaySecs: number,
  log: Logger,
): Promise<CertificateStore> {
  let stamp = await mtimes([certPath, keyPath]);
  let current = await load(certPath, keyPath);
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const now = await mtimes([certPath, keyPath]);
      if (now === stamp) return;
      stamp = now;
      current = await load(certPath, keyPath);
      log.info("certificate reloaded", { cert_path: certPath });
    } catch (e) {
      log.error("certificate reload failed; keeping the previous one", {
        cert_path: certPath,
        error: String(e),
      });
    } finally {
      busy = false;
    }
  }, Math.max(delaySecs, 0.1) * 1000);
  return { context: () => current, stop: () => clearInterval(timer) };
}
