/**
 * The proxy's configuration file: parsed from TOML or YAML, validated with zod, defaults filled in.
 * Every problem is reported at once, one line each, as `key.path: problem`, so that `--validate` can
 * tell an operator everything that is wrong in a single run.
 *
 * @module
 */
import { parse as parseToml, TomlError } from "smol-toml";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { LOG_LEVELS } from "../shared/log.ts";
import { expect, show, table } from "./config_schema.ts";
import { tlsSchema } from "./config_tls.ts";
import { isProxyOwned } from "./headers.ts";
import { parseCidr } from "./ip_filter.ts";
import { normalizeHost } from "./router.ts";

/** The configuration is invalid; `issues` holds one `path: problem` line per problem. */
export class ConfigError extends Error {
  /** `file` names the configuration file the issues come from, when there is one. */
  constructor(public readonly issues: string[], public readonly file?: string) {
    super(issues.join("\n"));
    this.name = "ConfigError";
  }
}

/** The file extensions `loadConfig` accepts, and the format each one means. */
export const CONFIG_FORMATS = { ".toml": "toml", ".yaml": "yaml", ".yml": "yaml" } as const;

/** Where the eBPF agent pins its maps unless `HUGINN_EBPF_PIN_PATH` says otherwise. */
export const DEFAULT_EBPF_PIN_PATH = "/sys/fs/bpf/huginn";

/** A listen or backend address split into what `Deno.listen` and `Deno.connect` take. */
export interface Address {
  /** Host name or IP address; IPv6 without brackets. */
  hostname: string;
  port: number;
}

/** Splits `host:port` (IPv6 as `[::1]:443`), or returns `undefined` when it is not a valid address. */
export function parseAddress(address: string): Address | undefined {
  const m = /^(?:\[([^\]]*)\]|([^:\[\]]+)):(\d{1,5})$/.exec(address);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined) return isIPv6(m[1]) ? { hostname: m[1], port } : undefined;
  return isHostname(m[2]) ? { hostname: m[2], port } : undefined;
}

function isIPv6(text: string): boolean {
  return text.includes(":") && URL.canParse(`http://[${text}]/`);
}

const LABEL = "[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?";
const HOSTNAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
const DOTTED_QUAD = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** A DNS name or an IPv4 address; an all-numeric name must be a valid dotted quad. */
function isHostname(text: string): boolean {
  if (text.length > 253 || !HOSTNAME.test(text)) return false;
  if (!/^[\d.]+$/.test(text)) return true;
  const quad = DOTTED_QUAD.exec(text);
  return quad !== null && quad.slice(1).every((octet) => Number(octet) <= 255);
}

/** The host a domain is declared for: `*`, `*.suffix`, a name, an IPv4 address or a bracketed IPv6. */
function isDomainHost(host: string): boolean {
  if (host === "*") return true;
  if (host.startsWith("[") && host.endsWith("]")) return isIPv6(host.slice(1, -1));
  return isHostname(host.startsWith("*.") ? host.slice(2) : host);
}

/** Resolves the eBPF pin directory from the environment. */
export function ebpfPinPath(env: Pick<Deno.Env, "get"> = Deno.env): string {
  const path = env.get("HUGINN_EBPF_PIN_PATH") || DEFAULT_EBPF_PIN_PATH;
  if (!path.startsWith("/")) {
    throw new ConfigError([`HUGINN_EBPF_PIN_PATH: ${show(path)} is not an absolute path`]);
  }
  return path;
}

function int(min: number, max: number) {
  const e = expect(`an integer in ${min}..${max}`);
  return z.int(e).min(min, e).max(max, e);
}

function bool() {
  return z.boolean(expect("true or false"));
}

function list<T extends z.ZodType>(item: T) {
  return z.array(item, expect("a list"));
}

function nonEmptyList<T extends z.ZodType>(item: T, what: string) {
  const e = expect(`a non-empty list of ${what}`);
  return z.array(item, e).min(1, e);
}

function address() {
  const what = "a host:port address (port 1..65535, IPv6 in brackets as [::1]:443)";
  return validString(what, (s) => parseAddress(s) !== undefined);
}

function nonEmptyString(what: string) {
  const e = expect(what);
  return z.string(e).min(1, e);
}

/** A string that `valid` accepts. */
function validString(what: string, valid: (s: string) => boolean) {
  const e = expect(what);
  return z.string(e).refine(valid, e);
}

/** A URL path matching `pattern`, which excludes queries, fragments and spaces. */
function urlPath(what: string, pattern: RegExp) {
  const e = expect(what);
  return z.string(e).regex(pattern, e);
}

/** Whether listeners expect a PROXY protocol header: never, when one is sent, or always. */
const PROXY_PROTOCOL_MODES = ["off", "optional", "require"] as const;

function cidrList() {
  return list(
    validString("an IP address or CIDR block (10.0.0.0/8, 2001:db8::/32)", (s) => parseCidr(s) !== undefined),
  )
    .default([]);
}

/** Allow and deny lists of client addresses; deny wins. */
const ipFilterSchema = table({ allow: cidrList(), deny: cidrList() });

/** The parts of a request a rate-limit bucket is keyed by. */
const RATE_LIMIT_KEY = /^(?:ip|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/;

const rateLimitSchema = table({
  requests_per_second: z.number(expect("a number in 0.001..1000000"))
    .min(0.001, expect("a number in 0.001..1000000"))
    .max(1_000_000, expect("a number in 0.001..1000000")),
  burst: int(1, 1_000_000).optional(),
  key: nonEmptyList(
    validString('"ip", "route" or "header:<name>"', (s) => RATE_LIMIT_KEY.test(s)),
    '"ip", "route" or "header:<name>"',
  )
    .refine((l) => new Set(l).size === l.length, expect("a list without repeats"))
    .transform((l) => l.map((k) => k.toLowerCase()))
    .default(["ip"]),
});

/** A domain's or route's rate limit: its own, or `false` for none where an outer one would apply. */
const rateLimitOverride = z.union(
  [z.literal(false), rateLimitSchema],
  expect("false or a rate limit table (requests_per_second, burst, key)"),
).optional();

const HEALTH_CHECK_KINDS = ["tcp", "http"] as const;

/** Probes of a backend; see `health_checks.ts`. */
const healthCheckSchema = table({
  kind: z.enum(HEALTH_CHECK_KINDS, expect(`one of ${HEALTH_CHECK_KINDS.join(", ")}`)).default("tcp"),
  path: urlPath('a path starting with "/" (no fragment or spaces)', /^\/[^#\s]*$/).default("/"),
  expected_status: int(100, 599).default(200),
  interval_secs: int(1, 3600).default(10),
  timeout_secs: int(1, 3600).default(2),
  healthy_threshold: int(1, 100).default(2),
  unhealthy_threshold: int(1, 100).default(3),
});

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const RULE_HEADER = "a header name other than the fingerprint headers and x-fingerprint-spoofing-detected";

/** Whether a rule may touch header `name`: a valid token, not one of the proxy's fingerprint headers. */
function isRuleHeader(name: string): boolean {
  return HEADER_NAME.test(name) && !isProxyOwned(name.toLowerCase());
}

function headerValue() {
  return validString("a header value without line breaks", (s) => !/[\r\n\0]/.test(s));
}

const headerEdits = {
  /** Set, replacing any header of the same name. */
  add: z.record(z.string(), headerValue(), expect("a table of header names to values"))
    .superRefine((add, ctx) => {
      for (const name of Object.keys(add)) {
        if (!isRuleHeader(name)) {
          ctx.addIssue({ code: "custom", path: [name], message: `${show(name)} is not ${RULE_HEADER}` });
        }
      }
    })
    .transform((add) => Object.fromEntries(Object.entries(add).map(([k, v]) => [k.toLowerCase(), v])))
    .default({}),
  remove: list(validString(RULE_HEADER, isRuleHeader).transform((s) => s.toLowerCase())).default([]),
};

/** Header rules of one level (global, domain or route). */
const headerRulesSchema = table({
  request: table(headerEdits).prefault({}),
  response: table({
    ...headerEdits,
    /** `strict-transport-security`, sent on HTTPS responses only (RFC 6797 §7.2). */
    hsts: headerValue().optional(),
    /** `content-security-policy`. */
    csp: headerValue().optional(),
  }).prefault({}),
});

const routeSchema = table({
  prefix: urlPath('a path prefix starting with "/" (no query, fragment or spaces)', /^\/[^?#\s]*$/),
  backend: z.union(
    [address(), nonEmptyList(address(), "backend addresses")],
    expect("a backend address or a list of them"),
  ).transform((b) => typeof b === "string" ? [b] : b),
  replace_path: urlPath('"" or a path starting with "/" (no query, fragment or spaces)', /^(?:\/[^?#\s]*)?$/)
    .optional(),
  fingerprinting: bool().default(true),
  ip_filter: ipFilterSchema.optional(),
  rate_limit: rateLimitOverride,
  headers: headerRulesSchema.optional(),
  preserve_host: bool().default(true),
});

const configSchema = table({
  listen: table({
    addrs: list(address()).default(["0.0.0.0:8443"]),
    plain_addrs: list(address()).default([]),
    proxy_protocol: z.enum(PROXY_PROTOCOL_MODES, expect(`one of ${PROXY_PROTOCOL_MODES.join(", ")}`))
      .default("off"),
  }).prefault({}),
  tls: tlsSchema,
  fingerprint: table({
    tls_enabled: bool().default(true),
    http_enabled: bool().default(true),
    tcp_enabled: bool().default(false),
    max_capture: int(1024, 65536).default(65536),
    tcp_max_age_ms: int(1, 600_000).default(5000),
  }).prefault({}),
  backends: nonEmptyList(
    table({
      address: address(),
      name: nonEmptyString("a non-empty name").optional(),
      health_check: healthCheckSchema.optional(),
    }),
    "backends",
  ),
  domains: nonEmptyList(
    table({
      host: validString('a host name, IP address, "*.suffix" or "*"', isDomainHost),
      routes: nonEmptyList(routeSchema, "routes"),
      rate_limit: rateLimitOverride,
      headers: headerRulesSchema.optional(),
    }),
    "domains",
  ),
  telemetry: table({
    metrics_addr: validString(
      "an IP address or host name (IPv6 without brackets)",
      (s) => isHostname(s) || isIPv6(s),
    ).default("0.0.0.0"),
    metrics_port: int(1, 65535).default(9090),
  }).prefault({}),
  timeout: table({
    handshake_secs: int(1, 3600).default(10),
    idle_secs: int(1, 86400).default(60),
    upstream_secs: int(1, 3600).default(30),
    upstream_connect_secs: int(1, 3600).default(5),
    shutdown_secs: int(0, 3600).default(30),
    proxy_protocol_secs: int(1, 3600).default(5),
  }).prefault({}),
  security: table({
    max_connections: int(1, 1_000_000).default(10000),
    trusted_proxies: cidrList(),
    ip_filter: ipFilterSchema.prefault({}),
    rate_limit: rateLimitSchema.optional(),
  }).prefault({}),
  headers: headerRulesSchema.prefault({}),
  workers: z.union([z.literal("auto"), int(1, 64)], expect('"auto" or an integer in 1..64'))
    .default("auto")
    .transform((w) => w === "auto" ? Math.min(64, navigator.hardwareConcurrency) : w),
  logging: table({
    level: z.enum(LOG_LEVELS, expect(`one of ${LOG_LEVELS.join(", ")}`)).default("info"),
  }).prefault({}),
});

/**
 * The validated configuration with every default filled in. Keys keep the file's snake_case; a route's
 * `backend` is always a list, and `workers` is a number (`"auto"` resolved to the CPU count).
 */
export type Config = z.output<typeof configSchema>;

/** `["a", 0, "b"]` → `a[0].b`, the way the keys are written in the file. */
function keyPath(path: ReadonlyArray<PropertyKey>): string {
  let out = "";
  for (const key of path) {
    out += typeof key === "number" ? `[${key}]` : `${out === "" ? "" : "."}${String(key)}`;
  }
  return out === "" ? "(top level)" : out;
}

function schemaIssues(error: z.ZodError): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) lines.push(`${keyPath([...issue.path, key])}: ${issue.message}`);
    } else {
      lines.push(`${keyPath(issue.path)}: ${issue.message}`);
    }
  }
  return [...new Set(lines)];
}

/** Reports every `key` already seen under another path. */
function duplicates(items: Array<{ path: string; key: string }>, what: string): string[] {
  const first = new Map<string, string>();
  const issues: string[] = [];
  for (const { path, key } of items) {
    const seen = first.get(key);
    if (seen === undefined) first.set(key, path);
    else issues.push(`${path}: ${show(key)} is ${what} already at ${seen}`);
  }
  return issues;
}

/** The rules that span keys, which the schema alone cannot express. */
function crossCheck(config: Config): string[] {
  const issues: string[] = [];
  if (config.listen.addrs.length === 0 && config.listen.plain_addrs.length === 0) {
    issues.push("listen: no listeners (listen.addrs and listen.plain_addrs are both empty)");
  }
  issues.push(...duplicates(
    [
      ...config.listen.addrs.map((key, i) => ({ path: `listen.addrs[${i}]`, key })),
      ...config.listen.plain_addrs.map((key, i) => ({ path: `listen.plain_addrs[${i}]`, key })),
    ],
    "listed",
  ));
  if (config.listen.addrs.length > 0) {
    for (const key of ["cert_path", "key_path"] as const) {
      if (config.tls[key] === undefined) {
        issues.push(
          `tls.${key}: missing (expected a PEM file path; required when listen.addrs is non-empty)`,
        );
      }
    }
  }
  issues.push(...duplicates(
    config.backends.map((b, i) => ({ path: `backends[${i}].address`, key: b.address })),
    "declared",
  ));
  issues.push(...duplicates(
    config.backends.flatMap((b, i) =>
      b.name === undefined ? [] : [{ path: `backends[${i}].name`, key: b.name }]
    ),
    "used as a name",
  ));
  issues.push(...duplicates(
    config.domains.map((d, i) => ({ path: `domains[${i}].host`, key: normalizeHost(d.host) })),
    "declared",
  ));
  const declared = new Set(config.backends.map((b) => b.address));
  const declaredList = [...declared].join(", ");
  config.domains.forEach((domain, d) => {
    issues.push(...duplicates(
      domain.routes.map((r, i) => ({ path: `domains[${d}].routes[${i}].prefix`, key: r.prefix })),
      "used",
    ));
    domain.routes.forEach((route, r) => {
      route.backend.forEach((backend, b) => {
        if (declared.has(backend)) return;
        // A single backend may be written as a plain string; point at the key, not at an index.
        const path = `domains[${d}].routes[${r}].backend${route.backend.length > 1 ? `[${b}]` : ""}`;
        issues.push(`${path}: ${show(backend)} is not a declared backend (declared: ${declaredList})`);
      });
    });
  });
  return issues;
}

function syntaxError(format: "toml" | "yaml", line: number, column: number, problem: string): ConfigError {
  return new ConfigError([`line ${line}, column ${column}: invalid ${format.toUpperCase()}: ${problem}`]);
}

function parseSyntax(text: string, format: "toml" | "yaml"): unknown {
  if (format === "toml") {
    try {
      return parseToml(text);
    } catch (e) {
      if (!(e instanceof TomlError)) throw e;
      const problem = e.message.split("\n")[0].replace(/^Invalid TOML document: /, "");
      throw syntaxError(format, e.line, e.column, problem);
    }
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const [first] = doc.errors;
  if (first) {
    const { line, col } = lineCounter.linePos(first.pos[0]);
    throw syntaxError(format, line, col, first.message);
  }
  // An empty document is an empty table, so that the errors name the keys that are missing.
  return doc.toJS() ?? {};
}

/** Parses and validates configuration text; throws `ConfigError` listing every problem found. */
export function parseConfig(text: string, format: "toml" | "yaml"): Config {
  const result = configSchema.safeParse(parseSyntax(text, format));
  if (!result.success) throw new ConfigError(schemaIssues(result.error));
  const issues = crossCheck(result.data);
  if (issues.length > 0) throw new ConfigError(issues);
  return result.data;
}

/** Reads, parses and validates the configuration file at `path`, choosing the format by extension. */
export async function loadConfig(path: string): Promise<Config> {
  const ext = path.slice(path.lastIndexOf(".")).toLowerCase();
  const format = Object.hasOwn(CONFIG_FORMATS, ext)
    ? CONFIG_FORMATS[ext as keyof typeof CONFIG_FORMATS]
    : undefined;
  if (format === undefined) {
    const accepted = Object.keys(CONFIG_FORMATS).join(", ");
    throw new ConfigError([`${path}: unsupported file extension (accepted: ${accepted})`]);
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError([`${path}: cannot read the file (${e instanceof Error ? e.message : String(e)})`]);
  }
  try {
    return parseConfig(text, format);
  } catch (e) {
    throw e instanceof ConfigError ? new ConfigError(e.issues, path) : e;
  }
}

/** The text `--validate` and startup print for a failed `loadConfig`. */
export function formatConfigError(e: unknown): string {
  if (!(e instanceof ConfigError)) return `error: ${e instanceof Error ? e.message : String(e)}`;
  const count = e.issues.length === 1 ? "1 problem" : `${e.issues.length} problems`;
  const where = e.file === undefined ? "invalid configuration" : `invalid configuration in ${e.file}`;
  return `${where} (${count}):\n${e.issues.map((issue) => `  ${issue}`).join("\n")}`;
}
