/**
 * The `tls` table of the configuration: the default certificate, per-host certificates chosen by SNI,
 * and the protocol versions offered. Its own module so that `config.ts` stays about the file as a whole;
 * the error messages follow the same `value is not what-was-expected` form.
 *
 * @module
 */
import { z } from "zod";
import { expect, show, table } from "./config_schema.ts";

/** The protocol versions the TLS engine can be bounded to, oldest first. */
export const TLS_VERSIONS = ["TLSv1.2", "TLSv1.3"] as const;

const ALPN = ["h2", "http/1.1"] as const;

function nonEmptyList<T extends z.ZodType>(item: T, what: string) {
  const e = expect(`a non-empty list of ${what}`);
  return z.array(item, e).min(1, e);
}

function path() {
  const e = expect("a non-empty file path");
  return z.string(e).min(1, e);
}

function version() {
  return z.enum(TLS_VERSIONS, expect(`one of ${TLS_VERSIONS.join(", ")}`));
}

const LABEL = "[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?";
/** A DNS name, or `*.` and a name: the wildcard stands for exactly one label, as in a certificate. */
const CERT_HOST = new RegExp(`^(?:\\*\\.)?${LABEL}(?:\\.${LABEL})*$`);

const certificateSchema = table({
  hosts: nonEmptyList(
    z.string(expect('a host name or "*.name"')).refine(
      (h) => h.length <= 253 && CERT_HOST.test(h.toLowerCase()),
      expect('a host name or "*.name"'),
    ).transform((h) => h.toLowerCase()),
    'host names or "*.name" patterns',
  ),
  cert_path: path(),
  key_path: path(),
});

/** The schema of `tls`, defaults filled in. */
export const tlsSchema = table({
  cert_path: path().optional(),
  key_path: path().optional(),
  alpn: nonEmptyList(z.enum(ALPN, expect(`one of ${ALPN.join(", ")}`)), ALPN.join(", "))
    .refine((l) => new Set(l).size === l.length, expect("a list without repeats"))
    .default([...ALPN]),
  watch_delay_secs: z.int(expect("an integer in 0..86400")).min(0, expect("an integer in 0..86400"))
    .max(86400, expect("an integer in 0..86400")).default(60),
  certificates: z.array(certificateSchema, expect("a list of tables")).default([]),
  strict_sni: z.boolean(expect("true or false")).default(false),
  min_version: version().default("TLSv1.2"),
  max_version: version().default("TLSv1.3"),
}).superRefine((tls, ctx) => {
  if (TLS_VERSIONS.indexOf(tls.min_version) > TLS_VERSIONS.indexOf(tls.max_version)) {
    ctx.addIssue({
      code: "custom",
      path: ["min_version"],
      message: `${show(tls.min_version)} is newer than max_version ${show(tls.max_version)}`,
    });
  }
  const seen = new Map<string, string>();
  tls.certificates.forEach((entry, i) =>
    entry.hosts.forEach((host, j) => {
      const here = `tls.certificates[${i}].hosts[${j}]`;
      const first = seen.get(host);
      if (first === undefined) seen.set(host, here);
      else {ctx.addIssue({
          code: "custom",
          path: ["certificates", i, "hosts", j],
          message: `${show(host)} is listed already at ${first}`,
        });}
    })
  );
}).prefault({});

/** The validated `tls` table. */
export type TlsConfig = z.output<typeof tlsSchema>;
