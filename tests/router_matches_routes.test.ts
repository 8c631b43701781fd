import assert from "node:assert/strict";
import { parseConfig } from "../proxy/config.ts";
import { Router } from "../proxy/router.ts";

const CONFIG = `
listen = { addrs = [], plain_addrs = ["127.0.0.1:8080"] }
backends = [
  { address = "10.0.0.1:80" },
  { address = "10.0.0.2:80" },
  { address = "10.0.0.3:80" },
  { address = "[fd00::1]:80" },
]

[[domains]]
host = "Example.com"
routes = [
  { prefix = "/", backend = "10.0.0.1:80" },
  { prefix = "/api", backend = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"] },
  { prefix = "/api/v2", backend = "10.0.0.2:80", replace_path = "/v2" },
  { prefix = "/strip", backend = "10.0.0.3:80", replace_path = "" },
  { prefix = "/dir/", backend = "10.0.0.3:80", replace_path = "/other/" },
  { prefix = "/raw", backend = "10.0.0.3:80", fingerprinting = false },
]

[[domains]]
host = "*.example.com"
routes = [{ prefix = "/", backend = "10.0.0.2:80" }]

[[domains]]
host = "*.deep.example.com"
routes = [{ prefix = "/", backend = "10.0.0.3:80" }]

[[domains]]
host = "[::1]"
routes = [{ prefix = "/", backend = "[fd00::1]:80" }]

[[domains]]
host = "*"
routes = [{ prefix = "/only", backend = "10.0.0.1:80", replace_path = "/" }]
`;

const router = () => new Router(parseConfig(CONFIG, "toml"));

Deno.test("host: exact first, then the longest wildcard, then the catch-all", () => {
  const r = router();
  assert.equal(r.match("example.com", "/")?.route, "example.com/");
  assert.equal(r.match("a.example.com", "/")?.route, "*.example.com/");
  assert.equal(r.match("a.b.example.com", "/")?.route, "*.example.com/");
  assert.equal(r.match("x.deep.example.com", "/")?.route, "*.deep.example.com/");
  assert.equal(r.match("deep.example.com", "/")?.route, "*.example.com/");
  // `*.example.com` does not cover the bare name; and `notexample.com` is another name entirely.
  assert.equal(r.match("notexample.com", "/only")?.route, "*/only");
  assert.equal(r.match("other.org", "/only")?.route, "*/only");
  assert.equal(r.match("", "/only")?.route, "*/only");
});

Deno.test("host: case, port, trailing dot and IPv6 literals are normalised", () => {
  const r = router();
  assert.equal(r.match("EXAMPLE.COM:8443", "/")?.route, "example.com/");
  assert.equal(r.match("example.com.", "/")?.route, "example.com/");
  assert.equal(r.match("A.Example.Com:443", "/")?.route, "*.example.com/");
  assert.equal(r.match("[::1]:8443", "/")?.backend, "[fd00::1]:80");
  assert.equal(r.match("[0:0::1]", "/")?.route, "[::1]/");
  assert.equal(r.match("::1", "/")?.route, "[::1]/");
});

Deno.test("path: the longest prefix wins and matches only at a segment boundary", () => {
  const r = router();
  const route = (path: string) => r.match("example.com", path)?.route;
  assert.equal(route("/api"), "example.com/api");
  assert.equal(route("/api/users"), "example.com/api");
  assert.equal(route("/api?q=1"), "example.com/api");
  assert.equal(route("/apix"), "example.com/");
  assert.equal(route("/api/v2"), "example.com/api/v2");
  assert.equal(route("/api/v2/items"), "example.com/api/v2");
  assert.equal(route("/api/v20"), "example.com/api");
  assert.equal(route("/dir"), "example.com/");
  assert.equal(route("/dir/a"), "example.com/dir/");
  assert.equal(route("/anything/else"), "example.com/");
});

Deno.test("no match: the chosen domain has no route for the path, and nothing falls through", () => {
  const r = router();
  assert.equal(r.match("other.org", "/"), undefined);
  assert.equal(r.match("other.org", "/onlyx"), undefined);
});

Deno.test("replace_path rewrites the matched prefix and keeps the query", () => {
  const r = router();
  const path = (host: string, p: string) => r.match(host, p)?.path;
  assert.equal(path("example.com", "/api/users?id=1"), "/api/users?id=1");
  assert.equal(path("example.com", "/api/v2/items?x=1&y=2"), "/v2/items?x=1&y=2");
  assert.equal(path("example.com", "/api/v2"), "/v2");
  assert.equal(path("example.com", "/api/v2?q"), "/v2?q");
  assert.equal(path("example.com", "/strip/a/b?c"), "/a/b?c");
  assert.equal(path("example.com", "/strip"), "/");
  assert.equal(path("example.com", "/strip?c=1"), "/?c=1");
  assert.equal(path("example.com", "/dir/a"), "/other/a");
  assert.equal(path("example.com", "/dir/"), "/other/");
  assert.equal(path("other.org", "/only/x"), "/x");
  assert.equal(path("other.org", "/only"), "/");
});

Deno.test("fingerprinting follows the route", () => {
  const r = router();
  assert.equal(r.match("example.com", "/raw/x")?.fingerprinting, false);
  assert.equal(r.match("example.com", "/api")?.fingerprinting, true);
});

Deno.test("backends are chosen round-robin, evenly, per route", () => {
  const r = router();
  const counts = new Map<string, number>();
  const order: string[] = [];
  for (let i = 0; i < 300; i++) {
    const backend = r.match("example.com", "/api/x")!.backend;
    counts.set(backend, (counts.get(backend) ?? 0) + 1);
    if (i < 4) order.push(backend);
    // Another route's traffic does not disturb the rotation.
    assert.equal(r.match("example.com", "/strip")!.backend, "10.0.0.3:80");
  }
  assert.deepEqual(order, ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.1:80"]);
  assert.deepEqual(Object.fromEntries(counts), {
    "10.0.0.1:80": 100,
    "10.0.0.2:80": 100,
    "10.0.0.3:80": 100,
  });
});

Deno.test("a path without a leading slash is treated as starting with one", () => {
  assert.deepEqual(router().match("example.com", "api?x"), {
    route: "example.com/api",
    backend: "10.0.0.1:80",
    path: "/api?x",
    fingerprinting: true,
  });
});
