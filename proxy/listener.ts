/**
 * A listening socket and what happens to each connection it accepts: the connection limit, the PROXY
 * protocol header naming the real client (when configured), the TCP fingerprint (looked up at once,
 * while the SYN record is fresh), the ClientHello and TLS
 * handshake under the handshake timeout, then the relay to the worker's internal HTTP server, with the
 * HTTP/2 fingerprint captured on the way up and the server's HTTP/2 GOAWAY counted on the way down.
 * Every fingerprint is computed once per connection.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import type { Peer } from "../shared/syn_record.ts";
import { readClientHello } from "./client_hello.ts";
import type { Address, Config } from "./config.ts";
import type { ConnectionContext, ConnectionLimit, ConnectionTable } from "./connections.ts";
import type { CertificateStore } from "./certificates.ts";
import { isFileLimitError } from "./file_budget.ts";
import { captureAkamai, tcpFingerprint, tlsFingerprint } from "./fingerprints.ts";
import { AkamaiCapture } from "./h2_capture.ts";
import { GoawayScanner, h2ErrorName } from "./h2_frames.ts";
import type { CidrSet } from "./ip_filter.ts";
import type { ProxyMetrics } from "./metrics.ts";
import { readProxyHeader } from "./proxy_header_reader.ts";
import { closeQuietly, type RelayHooks, relayPlain, relayTls } from "./relay.ts";
import type { SynSource } from "./tcp_syn.ts";
import { acceptTls, handshakeErrorKind, type TlsClient } from "./tls_front.ts";

/** What a worker's listeners share. */
export interface ListenerDeps {
  config: Config;
  /** The served certificates; required for TLS listeners. */
  certs?: CertificateStore;
  connections: ConnectionTable;
  /** `security.trusted_proxies`: the peers whose PROXY headers are believed. Replaced on reload. */
  trustedProxies: CidrSet;
  limit: ConnectionLimit;
  /** The worker's internal HTTP server, where client bytes are relayed. */
  internalPort: number;
  /** Present when `fingerprint.tcp_enabled`. */
  syn?: SynSource;
  metrics: ProxyMetrics;
  log: Logger;
}

/** TLS listeners terminate TLS; plain ones relay cleartext HTTP/1.1 and HTTP/2 prior knowledge. */
type Kind = "tls" | "plain";

const PREFACE_START = [0x50, 0x52, 0x49]; // "PRI", the start of the HTTP/2 client preface

/** Accepts connections on one address until closed. */
export class Listener {
  readonly #listener: Deno.TcpListener;
  readonly #kind: Kind;
  readonly #deps: ListenerDeps;
  /** Closers of the connections `handshaking` counts; shutdown closes them at once. */
  readonly #handshaking = new Set<() => void>();
  #closed = false;

  /** Binds `address`; `reusePort` lets every worker bind the same one. Throws when it cannot bind. */
  constructor(address: Address, kind: Kind, reusePort: boolean, deps: ListenerDeps) {
    this.#listener = Deno.listen({ hostname: address.hostname, port: address.port, reusePort });
    this.#kind = kind;
    this.#deps = deps;
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  /** Runs the accept loop; returns once the listener is closed. */
  async serve(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (e) {
        if (this.#closed) break;
        // Out of file descriptors and the like: keep the listener, give the process a moment.
        this.#deps.log.error("accept failed", { port: this.port, error: String(e) });
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // An accept that completed as the drain began: the drain has not counted it and would shut the
      // internal server down under it. Closed before any byte is read, as the kernel resets its backlog.
      if (this.#closed) {
        closeQuietly(conn);
        break;
      }
      this.#accept(conn);
    }
  }

  /**
   * Connections accepted and not relayed yet: in their PROXY header, ClientHello or TLS handshake, or
   * connecting to the internal server.
   */
  get handshaking(): number {
    return this.#handshaking.size;
  }

  /** Stops accepting; connections already accepted go on (a drain lets them reach their first request). */
  stopAccepting(): void {
    this.#closed = true;
    closeQuietly(this.#listener);
  }

  /** Stops accepting and closes the connections that are still in their handshake. */
  close(): void {
    this.stopAccepting();
    for (const close of this.#handshaking) close();
  }

  async #accept(conn: Deno.TcpConn) {
    const { limit, metrics, log } = this.#deps;
    if (!limit.tryAcquire()) {
      metrics.connectionsRejected.inc({ reason: "limit_exceeded" });
      return closeQuietly(conn);
    }
    metrics.connectionsActive.inc();
    try {
      await this.#serveConnection(conn);
    } catch (e) {
      // Out of descriptors for the relay: this connection is refused, the next one may fit.
      if (isFileLimitError(e)) metrics.connectionsRejected.inc({ reason: "file_limit" });
      log.debug("connection ended with an error", { error: String(e) });
      closeQuietly(conn);
    } finally {
      metrics.connectionsActive.dec();
      limit.release();
    }
  }

  async #serveConnection(conn: Deno.TcpConn) {
    conn.setNoDelay(true);
    const remote = conn.remoteAddr;
    let peer: Peer = { address: remote.hostname, port: remote.port };
    // The SYN the agent saw went to the address the balancer accepted on, when there is a balancer.
    let synPort = this.port;
    let client: Deno.TcpConn = conn;
    if (this.#deps.config.listen.proxy_protocol !== "off") {
      const intake = await this.#proxyHeader(conn, peer);
      if (intake === undefined) return;
      client = intake.conn;
      if (intake.source !== undefined) {
        peer = intake.source;
        synPort = intake.destinationPort;
      }
    }
    const fingerprints: Array<[string, string]> = [];
    const { syn, config, metrics } = this.#deps;
    const p0f = syn && tcpFingerprint(syn, peer, synPort, config.fingerprint.tcp_max_age_ms, metrics);
    if (p0f !== undefined) fingerprints.push(["x-tcp-p0f", p0f]);

    let tlsClient: TlsClient | undefined;
    if (this.#kind === "tls") {
      tlsClient = await this.#handshake(client, fingerprints);
      if (tlsClient === undefined) return;
    }
    await this.#relay(client, tlsClient, peer, fingerprints);
  }

  /**
   * Reads the PROXY header under `proxy_protocol_secs`, from trusted peers only: anyone else could claim
   * any address. Returns the client's stream and the client it names, or undefined (the connection closed
   * and the reason counted).
   */
  async #proxyHeader(
    conn: Deno.TcpConn,
    peer: Peer,
  ): Promise<{ conn: Deno.TcpConn; source?: Peer; destinationPort: number } | undefined> {
    const { config, trustedProxies, metrics, log } = this.#deps;
    const trusted = trustedProxies.has(peer.address);
    const required = config.listen.proxy_protocol === "require";
    const refuse = (kind: string, problem?: string) => {
      metrics.badClientInput.inc({ kind });
      log.debug("PROXY header refused", { kind, problem, peer: peer.address });
      closeQuietly(conn);
      return undefined;
    };
    if (required && !trusted) return refuse("untrusted_proxy_peer");
    let timedOut = false;
    const abort = () => closeQuietly(conn);
    const timer = setTimeout(() => {
      timedOut = true;
      abort();
    }, config.timeout.proxy_protocol_secs * 1000);
    this.#handshaking.add(abort);
    try {
      const intake = await readProxyHeader(conn, required);
      if (!intake.ok) {
        if (intake.problem === undefined) return void closeQuietly(conn);
        return refuse(
          intake.problem === "missing" ? "missing_proxy_header" : "bad_proxy_header",
          intake.problem,
        );
      }
      if (intake.header === undefined) return { conn: intake.conn, destinationPort: this.port };
      if (!trusted) return refuse("untrusted_proxy_peer");
      const { source, destination } = intake.header;
      return { conn: intake.conn, source, destinationPort: destination?.port ?? this.port };
    } catch (e) {
      if (timedOut) return refuse("proxy_header_timeout");
      log.debug("reading the PROXY header failed", { error: String(e) });
      closeQuietly(conn);
      return undefined;
    } finally {
      clearTimeout(timer);
      this.#handshaking.delete(abort);
    }
  }

  /** Relays the client to the internal server, with its context registered for the handler. */
  async #relay(
    conn: Deno.TcpConn,
    tlsClient: TlsClient | undefined,
    peer: Peer,
    fingerprints: Array<[string, string]>,
  ) {
    const { config, metrics } = this.#deps;
    const socket = tlsClient?.socket;
    // Counted as in its handshake until the table below has it: a drain starting in between would see
    // neither, shut the internal server down, and lose the request this client is about to send.
    const abort = () => socket ? socket.destroy() : closeQuietly(conn);
    this.#handshaking.add(abort);
    let internal: Deno.TcpConn;
    try {
      internal = await Deno.connect({ hostname: "127.0.0.1", port: this.#deps.internalPort });
    } finally {
      this.#handshaking.delete(abort);
    }
    internal.setNoDelay(true);
    const relayPort = internal.localAddr.port;
    const h2 = socket?.alpnProtocol === "h2";
    // The idle timer may close the connection again before its relay has ended: count it once.
    let closedByProxy = false;
    const ctx: ConnectionContext = {
      peer,
      listenerPort: this.port,
      proto: socket ? "https" : "http",
      tls: tlsClient?.identity,
      protocol: h2 ? "HTTP/2" : "HTTP/1.1",
      fingerprints,
      inflight: 0,
      requests: 0,
      partial: false,
      lastActive: performance.now(),
      close: (reason) => {
        if (closedByProxy) return;
        closedByProxy = true;
        metrics.connectionsClosed.inc({ reason });
        closeQuietly(internal);
        if (socket) socket.destroy();
        else closeQuietly(conn);
      },
    };
    // Plain listeners learn the protocol from the first bytes (HTTP/2 prior knowledge or HTTP/1.1).
    const capture = config.fingerprint.http_enabled && (h2 || !socket)
      ? new AkamaiCapture(config.fingerprint.max_capture)
      : undefined;
    let first = !socket;
    const hooks: RelayHooks = {
      tap: (chunk) => {
        ctx.partial = true;
        if (first) {
          first = false;
          if (PREFACE_START.every((b, i) => chunk[i] === b)) {
            ctx.protocol = "HTTP/2";
            // Set before this chunk is forwarded, so before the server can answer it.
            hooks.downstream = this.#goawayCounter();
          }
        }
        if (capture !== undefined && !capture.outcome.done) captureAkamai(capture, chunk, ctx, metrics);
      },
      downstream: h2 ? this.#goawayCounter() : undefined,
    };
    this.#deps.connections.add(relayPort, ctx);
    try {
      await (tlsClient ? relayTls(tlsClient, internal, hooks) : relayPlain(conn, internal, hooks));
    } finally {
      this.#deps.connections.delete(relayPort, ctx);
    }
    // An HTTP/2 client that never completed its first request sent something the server refused.
    if (capture?.outcome.done === false && ctx.protocol === "HTTP/2") {
      metrics.badClientInput.inc({ kind: "bad_h2_preface" });
    }
  }

  /**
   * A downstream hook counting the GOAWAY that ends an HTTP/2 connection. Only the first one is counted:
   * the server closes after it, and a graceful shutdown sends two (RFC 9113 §6.8).
   */
  #goawayCounter(): (chunk: Uint8Array) => void {
    const scanner = new GoawayScanner((code) => {
      scanner.stop();
      this.#deps.metrics.http2Goaways.inc({ error_code: h2ErrorName(code) });
    });
    return (chunk) => scanner.push(chunk);
  }

  /**
   * Reads and fingerprints the ClientHello, then completes the TLS handshake, all within
   * `handshake_secs`. Returns undefined (the connection closed and the reason counted) on failure.
   */
  async #handshake(
    conn: Deno.TcpConn,
    fingerprints: Array<[string, string]>,
  ): Promise<TlsClient | undefined> {
    const { config, certs, metrics, log } = this.#deps;
    let timedOut = false;
    const abort = () => closeQuietly(conn);
    const timer = setTimeout(() => {
      timedOut = true;
      abort();
    }, config.timeout.handshake_secs * 1000);
    this.#handshaking.add(abort);
    try {
      const hello = await readClientHello(conn);
      if (!hello.ok) {
        if (hello.bad !== undefined) metrics.badClientInput.inc({ kind: hello.bad });
        closeQuietly(conn);
        return undefined;
      }
      if (hello.complete && config.fingerprint.tls_enabled) {
        fingerprints.push(...tlsFingerprint(hello.bytes, metrics));
      }
      const client = await acceptTls(conn, hello.bytes, certs!, config.tls.alpn);
      metrics.tlsHandshakes.inc({ result: "ok" });
      metrics.tlsNegotiated.inc({
        version: client.version,
        cipher: client.cipher,
        resumed: String(client.resumed),
      });
      return client;
    } catch (e) {
      metrics.tlsHandshakes.inc({ result: "error" });
      metrics.tlsHandshakeErrors.inc({ kind: timedOut ? "timeout" : handshakeErrorKind(e) });
      if (timedOut) metrics.badClientInput.inc({ kind: "handshake_timeout" });
      log.debug("TLS handshake failed", { error: String(e), timed_out: timedOut });
      closeQuietly(conn);
      return undefined;
    } finally {
      clearTimeout(timer);
      this.#handshaking.delete(abort);
    }
  }
}
