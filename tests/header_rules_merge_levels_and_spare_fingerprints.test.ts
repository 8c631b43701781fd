/**
 * Header rules merge global, domain and route levels with the most specific winning, and can never set
 * or remove a fingerprint header: the configuration refuses such rules, and applying rules skips them.
 */
import assert from "node:assert/strict";
import { stringify } from "smol-toml";
import { ConfigError, parseConfig } from "../proxy/config.ts";
import { applyEdits, compileHeaderRules, type HeaderRules } from "../proxy/header_rules.ts";
import { FINGERPRINT_HEADERS, SPOOFING_HEADER } from "../proxy/headers.ts";

function rules(r: {
  request?: { add?: Record<string, string>; remove?: string[] };
  response?: { add?: Record<string, string>; remove?: string[]; hsts?: string; csp?: string };
}): HeaderRules {
  return {
    request: { add: {}, remove: [], ...r.request },
    response: { add: {}, remove: [], ...r.response },
  };
}

Deno.test("the more specific level wins, for additions and removals alike", () => {
  const global = rules({
    request: { add: { "x-env": "prod", "x-team": "core" }, remove: ["cookie"] },
    response: { add: { "x-frame-options": "DENY" }, hsts: "max-age=60", csp: "default-src 'self'" },
  });
  const domain = rules({ request: { add: { "x-team": "web" } }, response: { hsts: "max-age=600" } });
  const route = rules({
    request: { add: { cookie: "route=1" }, remove: ["x-env"] },
    response: { remove: ["x-frame-options", "server"] },
  });
  const compiled = compileHeaderRules([global, undefined, domain, route]);
  assert.deepEqual(compiled, {
    request: { remove: ["x-env"], set: [["x-team", "web"], ["cookie", "route=1"]] },
    response: {
      remove: ["x-frame-options", "server"],
      set: [["content-security-policy", "default-src 'self'"]],
    },
    hsts: "max-age=600",
  });
  const headers = new Headers({ "x-env": "dev", cookie: "a=1", accept: "*/*" });
  applyEdits(headers, compiled.request);
  assert.deepEqual([...headers], [["accept", "*/*"], ["cookie", "route=1"], ["x-team", "web"]]);
});

Deno.test("applying rules never touches a fingerprint header, whatever the rules say", () => {
  const owned = [...FINGERPRINT_HEADERS, SPOOFING_HEADER];
  const headers = new Headers(owned.map((name) => [name, "from-the-proxy"]));
  applyEdits(headers, { remove: owned, set: owned.map((name) => [name, "forged"] as const) });
  for (const name of owned) assert.equal(headers.get(name), "from-the-proxy", name);
});

const BASE = {
  listen: { addrs: [], plain_addrs: ["127.0.0.1:8080"] },
  backends: [{ address: "127.0.0.1:9000" }],
  domains: [{ host: "*", routes: [{ prefix: "/", backend: "127.0.0.1:9000" }] }],
};

function issues(raw: Record<string, unknown>): string[] {
  try {
    parseConfig(stringify(raw), "toml");
  } catch (e) {
    if (e instanceof ConfigError) return e.issues;
    throw e;
  }
  assert.fail("accepted");
}

Deno.test("the configuration refuses rules naming a fingerprint header, at every level", () => {
  const what = "is not a header name other than the fingerprint headers and x-fingerprint-spoofing-detected";
  assert.deepEqual(issues({ ...BASE, headers: { request: { remove: ["X-TLS-JA4"] } } }), [
    `headers.request.remove[0]: "X-TLS-JA4" ${what}`,
  ]);
  assert.deepEqual(issues({ ...BASE, headers: { request: { add: { "x-tcp-p0f": "x" } } } }), [
    `headers.request.add.x-tcp-p0f: "x-tcp-p0f" ${what}`,
  ]);
  const domains = [{
    host: "*",
    headers: { response: { add: { [SPOOFING_HEADER]: "no" } } },
    routes: [{
      prefix: "/",
      backend: "127.0.0.1:9000",
      headers: { request: { remove: ["x-http2-akamai"] } },
    }],
  }];
  assert.deepEqual(issues({ ...BASE, domains }), [
    `domains[0].routes[0].headers.request.remove[0]: "x-http2-akamai" ${what}`,
    `domains[0].headers.response.add.${SPOOFING_HEADER}: "${SPOOFING_HEADER}" ${what}`,
  ]);
  assert.deepEqual(issues({ ...BASE, headers: { response: { hsts: "max-age=1\r\nx: y" } } }), [
    `headers.response.hsts: "max-age=1\\r\\nx: y" is not a header value without line breaks`,
  ]);
});
