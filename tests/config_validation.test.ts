import assert from "node:assert/strict";
import { stringify as toToml } from "smol-toml";
import { stringify as toYaml } from "yaml";
import {
  type Config,
  ConfigError,
  ebpfPinPath,
  formatConfigError,
  loadConfig,
  parseAddress,
  parseConfig,
} from "../proxy/config.ts";

type Raw = Record<string, unknown>;
/** A configuration being edited by a test case; the cases deliberately write values of the wrong type. */
// deno-lint-ignore no-explicit-any
type Draft = any;

/** The smallest valid configuration: everything else takes its default. */
const MINIMAL: Raw = {
  tls: { cert_path: "/etc/huginn/cert.pem", key_path: "/etc/huginn/key.pem" },
  backends: [{ address: "127.0.0.1:9000" }],
  domains: [{ host: "example.com", routes: [{ prefix: "/", backend: "127.0.0.1:9000" }] }],
};

const FORMATS = [["toml", toToml], ["yaml", toYaml]] as const;

/** `MINIMAL` with `change` applied to a deep copy. */
function variant(change: (c: Draft) => void): Raw {
  const copy = structuredClone(MINIMAL);
  change(copy);
  return copy;
}

/** The issues `parseConfig` reports for `raw` written in `format`; fails when it is accepted. */
function issues(raw: Raw, format: "toml" | "yaml"): string[] {
  const text = format === "toml" ? toToml(raw) : toYaml(raw);
  try {
    parseConfig(text, format);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  assert.fail(`accepted:\n${text}`);
}

function parseBoth(raw: Raw): Config {
  const [toml, yaml] = FORMATS.map(([format, write]) => parseConfig(write(raw), format));
  assert.deepEqual(toml, yaml);
  return toml;
}

Deno.test("a minimal file gets every documented default", () => {
  const expected: Config = {
    listen: { addrs: ["0.0.0.0:8443"], plain_addrs: [], proxy_protocol: "off" },
    tls: {
      cert_path: "/etc/huginn/cert.pem",
      key_path: "/etc/huginn/key.pem",
      alpn: ["h2", "http/1.1"],
      watch_delay_secs: 60,
      certificates: [],
      strict_sni: false,
      min_version: "TLSv1.2",
      max_version: "TLSv1.3",
    },
    fingerprint: {
      tls_enabled: true,
      http_enabled: true,
      tcp_enabled: false,
      max_capture: 65536,
      tcp_max_age_ms: 5000,
    },
    backends: [{ address: "127.0.0.1:9000" }],
    domains: [{
      host: "example.com",
      routes: [{ prefix: "/", backend: ["127.0.0.1:9000"], fingerprinting: true, preserve_host: true }],
    }],
    telemetry: { metrics_addr: "0.0.0.0", metrics_port: 9090 },
    timeout: {
      handshake_secs: 10,
      idle_secs: 60,
      upstream_secs: 30,
      upstream_connect_secs: 5,
      shutdown_secs: 30,
      proxy_protocol_secs: 5,
    },
    security: { max_connections: 10000, trusted_proxies: [], ip_filter: { allow: [], deny: [] } },
    headers: { request: { add: {}, remove: [] }, response: { add: {}, remove: [] } },
    workers: Math.min(64, navigator.hardwareConcurrency),
    logging: { level: "info" },
  };
  assert.deepEqual(parseBoth(MINIMAL), expected);
});

Deno.test("the TOML and YAML examples are valid and say the same", async () => {
  const examples = new URL("../proxy/examples/", import.meta.url);
  const toml = await loadConfig(new URL("huginn.toml", examples).pathname);
  const yaml = await loadConfig(new URL("huginn.yaml", examples).pathname);
  assert.deepEqual(toml, yaml);
  // The examples exercise the non-default shapes: IPv6 backends, lists, rewrites, explicit workers.
  assert.deepEqual(toml.domains[0].routes[1], {
    prefix: "/static",
    backend: ["[::1]:9100"],
    replace_path: "",
    fingerprinting: false,
    preserve_host: true,
  });
});

Deno.test("explicit values are kept, IPv6 listeners included", () => {
  const config = parseBoth(variant((c) => {
    c.listen = { addrs: ["[::]:443", "0.0.0.0:443"], plain_addrs: ["[::1]:80"], proxy_protocol: "require" };
    c.tls.alpn = ["http/1.1", "h2"];
    c.workers = 3;
    c.domains[0].routes[0].backend = ["127.0.0.1:9000"];
  }));
  assert.deepEqual(config.listen, {
    addrs: ["[::]:443", "0.0.0.0:443"],
    plain_addrs: ["[::1]:80"],
    proxy_protocol: "require",
  });
  assert.deepEqual(config.tls.alpn, ["http/1.1", "h2"]);
  assert.equal(config.workers, 3);
});

Deno.test("TLS paths are optional when there is no TLS listener", () => {
  const config = parseBoth(variant((c) => {
    delete c.tls;
    c.listen = { addrs: [], plain_addrs: ["127.0.0.1:8080"] };
  }));
  assert.equal(config.tls.cert_path, undefined);
});

Deno.test("unknown keys are rejected with their path and the accepted keys", () => {
  for (const [format] of FORMATS) {
    assert.deepEqual(
      issues(
        variant((c) => {
          c.port = 1;
          c.listen = { addrs: ["0.0.0.0:8443"], port: 8443 };
          c.backends[0].weight = 2;
          c.domains[0].routes[0].strip_prefix = true;
        }),
        format,
      ),
      [
        "listen.port: unknown key (accepted: addrs, plain_addrs, proxy_protocol)",
        "backends[0].weight: unknown key (accepted: address, name, health_check)",
        "domains[0].routes[0].strip_prefix: unknown key (accepted: prefix, backend, replace_path, fingerprinting, " +
        "ip_filter, rate_limit, headers, preserve_host)",
        "port: unknown key (accepted: listen, tls, fingerprint, backends, domains, telemetry, timeout, security, " +
        "headers, workers, logging)",
      ],
    );
  }
});

const ADDRESS = "is not a host:port address (port 1..65535, IPv6 in brackets as [::1]:443)";

/** [change, the single issue it must cause]. */
const INVALID: Array<[(c: Draft) => void, string]> = [
  [(c) => c.listen = { addrs: ["8443"] }, `listen.addrs[0]: "8443" ${ADDRESS}`],
  [(c) => c.listen = { addrs: ["0.0.0.0:65536"] }, `listen.addrs[0]: "0.0.0.0:65536" ${ADDRESS}`],
  [(c) => c.listen = { addrs: ["0.0.0.0:0"] }, `listen.addrs[0]: "0.0.0.0:0" ${ADDRESS}`],
  [(c) => c.listen = { addrs: ["::1:8443"] }, `listen.addrs[0]: "::1:8443" ${ADDRESS}`],
  [(c) => c.listen = { addrs: ["[::g]:8443"] }, `listen.addrs[0]: "[::g]:8443" ${ADDRESS}`],
  [(c) => c.listen = { addrs: ["256.0.0.1:8443"] }, `listen.addrs[0]: "256.0.0.1:8443" ${ADDRESS}`],
  [(c) => c.listen = { plain_addrs: [8080] }, `listen.plain_addrs[0]: 8080 ${ADDRESS}`],
  [(c) => c.listen = { addrs: "0.0.0.0:8443" }, `listen.addrs: "0.0.0.0:8443" is not a list`],
  [(c) => c.tls.cert_path = "", `tls.cert_path: "" is not a non-empty file path`],
  [(c) => c.tls.alpn = ["h3"], `tls.alpn[0]: "h3" is not one of h2, http/1.1`],
  [(c) => c.tls.alpn = [], `tls.alpn: [] is not a non-empty list of h2, http/1.1`],
  [(c) => c.tls.alpn = ["h2", "h2"], `tls.alpn: ["h2","h2"] is not a list without repeats`],
  [(c) => c.tls.watch_delay_secs = -1, `tls.watch_delay_secs: -1 is not an integer in 0..86400`],
  [(c) => c.fingerprint = { tls_enabled: "yes" }, `fingerprint.tls_enabled: "yes" is not true or false`],
  [
    (c) => c.fingerprint = { max_capture: 1023 },
    `fingerprint.max_capture: 1023 is not an integer in 1024..65536`,
  ],
  [
    (c) => c.fingerprint = { max_capture: 65537 },
    `fingerprint.max_capture: 65537 is not an integer in 1024..65536`,
  ],
  [
    (c) => c.fingerprint = { tcp_max_age_ms: 0 },
    `fingerprint.tcp_max_age_ms: 0 is not an integer in 1..600000`,
  ],
  [(c) => c.backends = [], `backends: [] is not a non-empty list of backends`],
  [(c) => c.backends[0].address = "localhost", `backends[0].address: "localhost" ${ADDRESS}`],
  [(c) => c.backends[0].name = "", `backends[0].name: "" is not a non-empty name`],
  [(c) => c.domains = [], `domains: [] is not a non-empty list of domains`],
  [
    (c) => c.domains[0].host = "exa mple.com",
    `domains[0].host: "exa mple.com" is not a host name, IP address, "*.suffix" or "*"`,
  ],
  [
    (c) => c.domains[0].host = "a.*.com",
    `domains[0].host: "a.*.com" is not a host name, IP address, "*.suffix" or "*"`,
  ],
  [(c) => c.domains[0].routes = [], `domains[0].routes: [] is not a non-empty list of routes`],
  [
    (c) => c.domains[0].routes[0].prefix = "api",
    `domains[0].routes[0].prefix: "api" is not a path prefix starting with "/" (no query, fragment or spaces)`,
  ],
  [
    (c) => c.domains[0].routes[0].prefix = "/a?b",
    `domains[0].routes[0].prefix: "/a?b" is not a path prefix starting with "/" (no query, fragment or spaces)`,
  ],
  [(c) => c.domains[0].routes[0].backend = "nope", `domains[0].routes[0].backend: "nope" ${ADDRESS}`],
  [
    (c) => c.domains[0].routes[0].backend = [],
    `domains[0].routes[0].backend: [] is not a non-empty list of backend addresses`,
  ],
  [
    (c) => c.domains[0].routes[0].backend = 9000,
    `domains[0].routes[0].backend: 9000 is not a backend address or a list of them`,
  ],
  [
    (c) => c.domains[0].routes[0].replace_path = "v2",
    `domains[0].routes[0].replace_path: "v2" is not "" or a path starting with "/" (no query, fragment or spaces)`,
  ],
  [
    (c) => c.domains[0].routes[0].fingerprinting = "no",
    `domains[0].routes[0].fingerprinting: "no" is not true or false`,
  ],
  [
    (c) => c.telemetry = { metrics_addr: "[::]" },
    `telemetry.metrics_addr: "[::]" is not an IP address or host name (IPv6 without brackets)`,
  ],
  [(c) => c.telemetry = { metrics_port: 0 }, `telemetry.metrics_port: 0 is not an integer in 1..65535`],
  [(c) => c.timeout = { handshake_secs: 0 }, `timeout.handshake_secs: 0 is not an integer in 1..3600`],
  [(c) => c.timeout = { idle_secs: 1.5 }, `timeout.idle_secs: 1.5 is not an integer in 1..86400`],
  [(c) => c.timeout = { upstream_secs: "30" }, `timeout.upstream_secs: "30" is not an integer in 1..3600`],
  [
    (c) => c.timeout = { upstream_connect_secs: 0 },
    `timeout.upstream_connect_secs: 0 is not an integer in 1..3600`,
  ],
  [(c) => c.timeout = { shutdown_secs: 3601 }, `timeout.shutdown_secs: 3601 is not an integer in 0..3600`],
  [(c) => c.security = { max_connections: 0 }, `security.max_connections: 0 is not an integer in 1..1000000`],
  [(c) => c.workers = 0, `workers: 0 is not an integer in 1..64`],
  [(c) => c.workers = 65, `workers: 65 is not an integer in 1..64`],
  [(c) => c.workers = "all", `workers: "all" is not "auto" or an integer in 1..64`],
  [(c) => c.logging = { level: "trace" }, `logging.level: "trace" is not one of debug, info, warn, error`],
  [(c) => c.logging = "info", `logging: "info" is not a table (expected keys: level)`],
  [(c) => delete c.backends, `backends: missing (expected a non-empty list of backends)`],
  [
    (c) => delete c.domains[0].routes[0].backend,
    `domains[0].routes[0].backend: missing (expected a backend address or a list of them)`,
  ],
];

Deno.test("each invalid value is reported with its path, the value and what is expected", () => {
  for (const [change, expected] of INVALID) {
    for (const [format] of FORMATS) {
      assert.deepEqual(issues(variant(change), format), [expected], `${format}: ${expected}`);
    }
  }
});

Deno.test("rules across keys: declared backends, TLS files, listeners, uniqueness", () => {
  const cases: Array<[(c: Draft) => void, string[]]> = [
    [(c) => c.domains[0].routes[0].backend = "b:1", [
      `domains[0].routes[0].backend: "b:1" is not a declared backend (declared: 127.0.0.1:9000)`,
    ]],
    [(c) => c.domains[0].routes[0].backend = ["127.0.0.1:9000", "10.0.0.1:80"], [
      `domains[0].routes[0].backend[1]: "10.0.0.1:80" is not a declared backend (declared: 127.0.0.1:9000)`,
    ]],
    [(c) => delete c.tls, [
      "tls.cert_path: missing (expected a PEM file path; required when listen.addrs is non-empty)",
      "tls.key_path: missing (expected a PEM file path; required when listen.addrs is non-empty)",
    ]],
    [(c) => c.listen = { addrs: [] }, [
      "listen: no listeners (listen.addrs and listen.plain_addrs are both empty)",
    ]],
    [(c) => c.listen = { addrs: ["0.0.0.0:8443"], plain_addrs: ["0.0.0.0:8443"] }, [
      `listen.plain_addrs[0]: "0.0.0.0:8443" is listed already at listen.addrs[0]`,
    ]],
    [(c) => c.backends.push({ address: "127.0.0.1:9000" }), [
      `backends[1].address: "127.0.0.1:9000" is declared already at backends[0].address`,
    ]],
    [
      (c) =>
        c.backends = [{ address: "127.0.0.1:9000", name: "a" }, { address: "127.0.0.1:9001", name: "a" }],
      [
        `backends[1].name: "a" is used as a name already at backends[0].name`,
      ],
    ],
    [(c) => c.domains.push({ host: "EXAMPLE.com", routes: [{ prefix: "/", backend: "127.0.0.1:9000" }] }), [
      `domains[1].host: "example.com" is declared already at domains[0].host`,
    ]],
    [(c) => c.domains[0].routes.push({ prefix: "/", backend: "127.0.0.1:9000" }), [
      `domains[0].routes[1].prefix: "/" is used already at domains[0].routes[0].prefix`,
    ]],
  ];
  for (const [change, expected] of cases) {
    for (const [format] of FORMATS) assert.deepEqual(issues(variant(change), format), expected);
  }
});

Deno.test("syntax errors name the line and column", () => {
  assert.throws(() => parseConfig('workers = "auto"\nlogging = = 2\n', "toml"), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.deepEqual(e.issues, ["line 2, column 11: invalid TOML: invalid value"]);
    return true;
  });
  assert.throws(
    () => parseConfig("workers: auto\nlogging:\n  level: info\nworkers: 2\n", "yaml"),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.issues, ["line 4, column 1: invalid YAML: Map keys must be unique"]);
      return true;
    },
  );
});

Deno.test("loadConfig: extension chooses the format, and file problems are ConfigErrors", async () => {
  const dir = await Deno.makeTempDir({ prefix: "huginn_config_test_" });
  try {
    await Deno.writeTextFile(`${dir}/huginn.yml`, toYaml(MINIMAL));
    assert.deepEqual(await loadConfig(`${dir}/huginn.yml`), parseBoth(MINIMAL));

    await Deno.writeTextFile(`${dir}/huginn.json`, JSON.stringify(MINIMAL));
    await assert.rejects(loadConfig(`${dir}/huginn.json`), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.issues, [
        `${dir}/huginn.json: unsupported file extension (accepted: .toml, .yaml, .yml)`,
      ]);
      return true;
    });

    await assert.rejects(loadConfig(`${dir}/absent.toml`), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.issues.length, 1);
      assert.match(e.issues[0], new RegExp(`^${dir}/absent\\.toml: cannot read the file \\(.*No such file`));
      return true;
    });

    await Deno.writeTextFile(`${dir}/bad.toml`, toToml(variant((c) => c.workers = 0)));
    const error = await loadConfig(`${dir}/bad.toml`).catch((e) => e);
    assert.ok(error instanceof ConfigError);
    assert.equal(error.file, `${dir}/bad.toml`);
    assert.equal(
      formatConfigError(error),
      `invalid configuration in ${dir}/bad.toml (1 problem):\n  workers: 0 is not an integer in 1..64`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("formatConfigError lists every issue, and passes other errors through", () => {
  assert.equal(
    formatConfigError(new ConfigError(["a: x", "b: y"])),
    "invalid configuration (2 problems):\n  a: x\n  b: y",
  );
  assert.equal(formatConfigError(new Error("boom")), "error: boom");
});

Deno.test("parseAddress splits what Deno.listen and Deno.connect take", () => {
  assert.deepEqual(parseAddress("[::]:8443"), { hostname: "::", port: 8443 });
  assert.deepEqual(parseAddress("backend.internal:80"), { hostname: "backend.internal", port: 80 });
  assert.equal(parseAddress("[::1]"), undefined);
  assert.equal(parseAddress("host:08x"), undefined);
});

Deno.test("the eBPF pin path comes from HUGINN_EBPF_PIN_PATH, else the default", () => {
  const env = (value?: string) => ({
    get: (key: string) => key === "HUGINN_EBPF_PIN_PATH" ? value : undefined,
  });
  assert.equal(ebpfPinPath(env()), "/sys/fs/bpf/huginn");
  assert.equal(ebpfPinPath(env("")), "/sys/fs/bpf/huginn");
  assert.equal(ebpfPinPath(env("/sys/fs/bpf/other")), "/sys/fs/bpf/other");
  assert.throws(() => ebpfPinPath(env("bpf/huginn")), ConfigError);

  const saved = Deno.env.get("HUGINN_EBPF_PIN_PATH");
  try {
    Deno.env.set("HUGINN_EBPF_PIN_PATH", "/sys/fs/bpf/from-env");
    assert.equal(ebpfPinPath(), "/sys/fs/bpf/from-env");
  } finally {
    if (saved === undefined) Deno.env.delete("HUGINN_EBPF_PIN_PATH");
    else Deno.env.set("HUGINN_EBPF_PIN_PATH", saved);
  }
});
