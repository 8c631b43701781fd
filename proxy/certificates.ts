/**
 * The certificates the proxy serves: the default one (`tls.cert_path`) and one per `[[tls.certificates]]`
 * entry, chosen by the client's SNI, each re-read when its files change. Also the rule that keeps an
 * HTTP/2 connection, which clients reuse for every host its certificate covers, from being used for a
 * host another certificate serves (421 Misdirected Request, RFC 9110 §15.5.20).
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { Logger } from "../shared/log.ts";
import type { TlsConfig } from "./config_tls.ts";
import type { ProxyMetrics } from "./metrics.ts";
import { normalizeHost } from "./router.ts";

/**
 * One certificate and key pair. Reloading replaces `context`, never the object, so that a connection
 * made before a renewal still compares equal to the certificate that now serves its host.
 */
export class ServedCertificate {
  /** `default`, or the entry's first host: what logs name it by. */
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** The context new handshakes use. */
  context: tls.SecureContext;
  /** The files' mtimes and sizes when `context` was read. */
  stamp: string;

  constructor(name: string, certPath: string, keyPath: string, context: tls.SecureContext, stamp: string) {
    this.name = name;
    this.certPath = certPath;
    this.keyPath = keyPath;
    this.context = context;
    this.stamp = stamp;
  }
}

/** The certificate a connection's handshake chose, kept on its `ConnectionContext` for `isMisdirected`. */
export interface TlsIdentity {
  certificate: ServedCertificate;
  store: CertificateStore;
}

/** The served certificates, by the names they are chosen for. */
export class CertificateStore {
  readonly default: ServedCertificate;
  readonly #exact = new Map<string, ServedCertificate>();
  /** By the name after `*.`: a wildcard stands for one label. */
  readonly #wildcard = new Map<string, ServedCertificate>();
  readonly #strict: boolean;
  #timer?: ReturnType<typeof setInterval>;

  constructor(
    defaultCert: ServedCertificate,
    entries: Array<{ hosts: string[]; cert: ServedCertificate }>,
    strict: boolean,
  ) {
    this.default = defaultCert;
    this.#strict = strict;
    for (const { hosts, cert } of entries) {
      for (const host of hosts) {
        if (host.startsWith("*.")) this.#wildcard.set(host.slice(2), cert);
        else this.#exact.set(host, cert);
      }
    }
  }

  /** Every certificate, the default first. */
  all(): ServedCertificate[] {
    return [...new Set([this.default, ...this.#exact.values(), ...this.#wildcard.values()])];
  }

  /**
   * The certificate for a handshake's SNI (`""` or undefined: none sent): exact name, then wildcard,
   * then the default. With `strict_sni`, undefined instead of the default: the handshake is refused.
   */
  select(servername: string | undefined): ServedCertificate | undefined {
    const named = servername ? this.#named(servername.toLowerCase()) : undefined;
    return named ?? (this.#strict ? undefined : this.default);
  }

  /** The certificate a request for `host` (a Host or :authority value) belongs to. */
  forHost(host: string): ServedCertificate {
    return this.#named(normalizeHost(host)) ?? this.default;
  }

  /** `name` is lower case, without a trailing dot. */
  #named(name: string): ServedCertificate | undefined {
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf(".");
    return dot > 0 ? this.#wildcard.get(name.slice(dot + 1)) : undefined;
  }

  /** Checks the files every `delaySecs` and reloads the certificates whose files changed. */
  watch(delaySecs: number, options: tls.SecureContextOptions, log: Logger, metrics: ProxyMetrics): void {
    let busy = false;
    this.#timer = setInterval(async () => {
      if (busy) return;
      busy = true;
      try {
        for (const cert of this.all()) await reload(cert, options, log, metrics);
      } finally {
        busy = false;
      }
    }, delaySecs * 1000);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * Whether a request for `host` arrived on a connection whose handshake chose another certificate than
 * the one that serves `host`: the client reused a connection it should not have (421). Plain
 * connections have no identity and are never misdirected.
 */
export function isMisdirected(identity: TlsIdentity | undefined, host: string): boolean {
  return identity !== undefined && identity.store.forHost(host) !== identity.certificate;
}

async function filesStamp(paths: string[]): Promise<string> {
  const stats = await Promise.all(paths.map((p) => Deno.stat(p)));
  return stats.map((s) => `${s.mtime?.getTime()}:${s.size}`).join(",");
}

/**
 * Reads a certificate and key into a context. `createSecureContext` accepts anything here and would
 * only fail at the next handshake, so the pair is checked first: both parse, and the key is the
 * certificate's.
 */
async function loadContext(
  certPath: string,
  keyPath: string,
  options: tls.SecureContextOptions,
): Promise<tls.SecureContext> {
  const [cert, key] = await Promise.all([Deno.readTextFile(certPath), Deno.readTextFile(keyPath)]);
  if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) {
    throw new Error(`${keyPath} is not the key of ${certPath}`);
  }
  return tls.createSecureContext({ ...options, cert, key });
}

async function loadCertificate(
  name: string,
  certPath: string,
  keyPath: string,
  options: tls.SecureContextOptions,
): Promise<ServedCertificate> {
  const stamp = await filesStamp([certPath, keyPath]);
  return new ServedCertificate(name, certPath, keyPath, await loadContext(certPath, keyPath, options), stamp);
}

/**
 * Re-reads `cert` if its files changed. A pair that fails to load is logged and counted and the
 * previous context kept, so that a half-written renewal never breaks handshakes; it is tried again
 * once its files change again.
 */
async function reload(
  cert: ServedCertificate,
  options: tls.SecureContextOptions,
  log: Logger,
  metrics: ProxyMetrics,
): Promise<void> {
  try {
    const stamp = await filesStamp([cert.certPath, cert.keyPath]);
    if (stamp === cert.stamp) return;
    cert.stamp = stamp;
    cert.context = await loadContext(cert.certPath, cert.keyPath, options);
    metrics.tlsCertificateReloads.inc({ result: "ok" });
    log.info("certificate reloaded", { certificate: cert.name, cert_path: cert.certPath });
  } catch (e) {
    metrics.tlsCertificateReloads.inc({ result: "error" });
    log.error("certificate reload failed; keeping the previous one", {
      certificate: cert.name,
      cert_path: cert.certPath,
      error: String(e),
    });
  }
}

/**
 * Loads every certificate of `config` (throws, naming the file, if one is unusable) and watches their
 * files every `watch_delay_secs` (0: never).
 */
export async function openCertificates(
  config: TlsConfig,
  log: Logger,
  metrics: ProxyMetrics,
): Promise<CertificateStore> {
  const options: tls.SecureContextOptions = {
    minVersion: config.min_version,
    maxVersion: config.max_version,
  };
  const load = async (name: string, certPath: string, keyPath: string) => {
    try {
      return await loadCertificate(name, certPath, keyPath, options);
    } catch (e) {
      throw new Error(`cannot load the certificate ${certPath} (key ${keyPath}): ${e}`);
    }
  };
  const defaultCert = await load("default", config.cert_path!, config.key_path!);
  const entries = await Promise.all(config.certificates.map(async (entry) => ({
    hosts: entry.hosts,
    cert: await load(entry.hosts[0], entry.cert_path, entry.key_path),
  })));
  const store = new CertificateStore(defaultCert, entries, config.strict_sni);
  if (config.watch_delay_secs > 0) store.watch(config.watch_delay_secs, options, log, metrics);
  return store;
}
