/**
 * `security.max_connections` is lowered to what the process's open-files limit can hold (three
 * descriptors per client connection), so a full proxy refuses new clients cleanly instead of failing
 * accept with EMFILE inside its internal server.
 */
import assert from "node:assert/strict";
import { connectionsWithinFileLimit } from "../proxy/connections.ts";

const limits = (soft: string, hard: string) =>
  `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            ${soft}                ${hard}                files     
Max locked memory         8388608              8388608              bytes     
`;

Deno.test("a limit that fits the open-files limit is kept", () => {
  assert.equal(connectionsWithinFileLimit(10_000, limits("1048576", "1048576")), 10_000);
  assert.equal(connectionsWithinFileLimit(10_000, limits("unlimited", "unlimited")), 10_000);
});

Deno.test("a limit that does not fit is lowered to (soft limit - reserve) / 3", () => {
  assert.equal(connectionsWithinFileLimit(10_000, limits("20000", "20000")), Math.floor((20_000 - 256) / 3));
  assert.equal(connectionsWithinFileLimit(10_000, limits("1024", "4096")), Math.floor((1024 - 256) / 3));
});

Deno.test("unreadable limits leave the configured value, and the result is never below 1", () => {
  assert.equal(connectionsWithinFileLimit(500, "garbage"), 500);
  assert.equal(connectionsWithinFileLimit(500, limits("10", "10")), 1);
});

Deno.test("the proxy reads its own limit: a real /proc/self/limits parses", () => {
  const text = Deno.readTextFileSync("/proc/self/limits");
  assert.match(text, /^Max open files/m);
  assert.ok(connectionsWithinFileLimit(1_000_000_000, text) < 1_000_000_000);
});
