/**
 * Self-signed certificates for the local stack and the tests: P-256, valid for localhost, 127.0.0.1 and
 * ::1, and marked as an end-entity certificate (rustls-based clients refuse a CA certificate as a server
 * certificate, which is what `openssl req -x509` makes by default).
 *
 * @module
 */

/** Writes a self-signed certificate and its key (PEM) to `cert` and `key`; throws when openssl fails. */
export async function makeSelfSignedCertificate(
  cert: string,
  key: string,
  opts: { commonName: string; days: number },
): Promise<void> {
  const r = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      String(opts.days),
      "-subj",
      `/CN=${opts.commonName}`,
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-keyout",
      key,
      "-out",
      cert,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`openssl req failed: ${new TextDecoder().decode(r.stderr)}`);
}
