/**
 * TLS termination in JavaScript: `node:tls` over a raw Deno TCP connection. Terminating here rather than
 * in `Deno.serve` is what lets the proxy see the ClientHello bytes (it reads them first and hands them to
 * the TLS engine) and the decrypted client bytes (for the HTTP/2 fingerprint).
 *
 * @module
 */
import { Duplex } from "node:stream";
import tls from "node:tls";
import type { CertificateStore, TlsIdentity } from "./certificates.ts";
import type { TlsHandshakeErrorKind } from "./metrics.ts";
import { clientHelloEnd } from "./client_hello.ts";
import { ReadSize } from "./read_size.ts";
import { closeQuietly, writeAll } from "./relay.ts";

/** A Node stream over a Deno connection whose first bytes were already read. */
class ConnDuplex extends Duplex {
  #conn: Deno.Conn;
  #first: Uint8Array | undefined;
  #reading = false;
  #readSize = new ReadSize();

  constructor(conn: Deno.Conn, first: Uint8Array) {
    super();
    this.#conn = conn;
    this.#first = first;
  }

  override _read() {
    if (!this.#reading) this.#pump();
  }

  async #pump() {
    this.#reading = true;
    try {
      if (this.#first !== undefined) {
        // Handed over only once the TLS socket has started: Deno 2.9 processes bytes already buffered
        // inside `TLSSocket._start`, and a hello refused there (e.g. a version outside the bounds)
        // destroys the socket under it, which throws out of the worker.
        await Promise.resolve();
        const first = this.#first;
        this.#first = undefined;
        let rest = first;
        const end = clientHelloEnd(first);
        if (end < first.length) {
          // What followed the hello in the same reads (e.g. an alert) goes in a chunk of its own.
          this.push(first.subarray(0, end));
          rest = first.subarray(end);
          await Promise.resolve();
        }
        if (!this.push(rest)) return void (this.#reading = false);
      }
      while (true) {
        const chunk = await this.#readSize.read(this.#conn);
        if (chunk === null) return void this.push(null);
        if (!this.push(chunk)) return void (this.#reading = false);
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
   * Ends the TLS stream (close_notify, then FIN) and settles once everything written to `socket` has
   * reached the TCP connection, or it closed. The TLS socket finishes earlier than that, so destroying it
   * on its own `finish` would cut off the last bytes of a response.
   */
  end(): Promise<void>;
  /** Settles when the client's side of the TCP connection has ended (EOF read) or closed. */
  clientEnded: Promise<void>;
  /** The certificate the handshake chose. */
  identity: TlsIdentity;
  /** The negotiated protocol version (`TLSv1.3`) and cipher suite (`TLS_AES_128_GCM_SHA256`). */
  version: string;
  cipher: string;
  /** Whether the client resumed an earlier session. */
  resumed: boolean;
}

/** The client's SNI names no certificate and `tls.strict_sni` is on. */
export class UnknownServerName extends Error {
  constructor(servername: string) {
    super(servername === "" ? "no SNI sent (tls.strict_sni)" : `no certificate for SNI ${servername}`);
    this.name = "UnknownServerName";
  }
}

/** A fatal `unrecognized_name` alert (RFC 6066 §3), in the cleartext record a refused hello gets. */
const UNRECOGNIZED_NAME_ALERT = new Uint8Array([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70]);

/**
 * Runs the server side of a TLS handshake on `conn`, starting with the `first` bytes already read from
 * it, with the certificate `certs` selects for the client's SNI. Rejects with the TLS error (an
 * `UnknownServerName` after sending the alert), the connection destroyed; later errors destroy the
 * socket too.
 */
export function acceptTls(
  conn: Deno.Conn,
  first: Uint8Array,
  certs: CertificateStore,
  alpn: string[],
): Promise<TlsClient> {
  const raw = new ConnDuplex(conn, first);
  const flushed = new Promise<void>((r) => {
    raw.once("finish", r);
    raw.once("close", r);
  });
  const clientEnded = new Promise<void>((r) => {
    raw.once("end", r);
    raw.once("close", r);
  });
  const end = () => {
    // Deno 2.9's TLS socket does not always end the stream under it once it has finished (seen when the
    // client's EOF came first: then its own `end` never fires either), which left the connection open
    // until the idle timeout. Its output is in `raw`'s queue by its `finish`; ending `raw` then is safe.
    const endRaw = () => {
      if (!raw.destroyed && !raw.writableEnded) raw.end();
    };
    if (socket.writableFinished) endRaw();
    else socket.once("finish", endRaw);
    socket.end();
    return flushed;
  };
  let chosen = certs.default;
  const socket = new tls.TLSSocket(raw, {
    isServer: true,
    secureContext: certs.default.context,
    ALPNProtocols: alpn,
    SNICallback: (servername: string, done: (e: Error | null, context?: tls.SecureContext) => void) => {
      const cert = certs.select(servername);
      if (cert === undefined) {
        // The engine would only drop the connection; the alert tells the client why.
        const refused = new UnknownServerName(servername);
        writeAll(conn, UNRECOGNIZED_NAME_ALERT).finally(() => socket.destroy(refused));
        return;
      }
      chosen = cert;
      done(null, cert.context);
    },
  });
  return new Promise((resolve, reject) => {
    // Stays attached: an error event without a listener would throw and take the worker down.
    socket.on("error", (e: Error) => {
      socket.destroy();
      reject(e);
    });
    socket.once("close", () => reject(new Error("connection closed during the TLS handshake")));
    socket.once("secure", () => {
      resolve({
        socket,
        end,
        clientEnded,
        identity: { certificate: chosen, store: certs },
        version: socket.getProtocol() ?? "unknown",
        cipher: socket.getCipher()?.standardName ?? "unknown",
        resumed: socket.isSessionReused(),
      });
    });
  });
}

/** The `kind` label of `huginn_tls_handshake_errors_total` for a rejection of `acceptTls`. */
export function handshakeErrorKind(e: unknown): TlsHandshakeErrorKind {
  if (e instanceof UnknownServerName) return "unknown_sni";
  const message = e instanceof Error ? e.message : String(e);
  // rustls words these "peer is incompatible: ..." (no common version, cipher suite or group).
  if (/incompatible/i.test(message)) return "incompatible";
  if (/alert/i.test(message)) return "client_alert";
  if (/closed/i.test(message)) return "closed";
  return "other";
}
