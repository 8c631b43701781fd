/**
 * The real agent refuses an invalid or missing environment variable before touching the kernel: exit
 * status 2 and exactly one log line naming the variable, the value and what is expected.
 */
import assert from "node:assert/strict";
import { runAgentToExit } from "./support/agent.ts";

const VALID = { HUGINN_EBPF_INTERFACE: "lo", HUGINN_EBPF_DST_PORT: "443" };

const cases: { env: Record<string, string | undefined>; variable: string; value?: string }[] = [
  { env: { HUGINN_EBPF_INTERFACE: undefined }, variable: "HUGINN_EBPF_INTERFACE" },
  {
    env: { HUGINN_EBPF_INTERFACE: "hfp-no-such0" },
    variable: "HUGINN_EBPF_INTERFACE",
    value: "hfp-no-such0",
  },
  { env: { HUGINN_EBPF_INTERFACE: "../../etc" }, variable: "HUGINN_EBPF_INTERFACE", value: "../../etc" },
  { env: { HUGINN_EBPF_DST_PORT: undefined }, variable: "HUGINN_EBPF_DST_PORT" },
  { env: { HUGINN_EBPF_DST_PORT: "65536" }, variable: "HUGINN_EBPF_DST_PORT", value: "65536" },
  { env: { HUGINN_EBPF_DST_PORT: "http" }, variable: "HUGINN_EBPF_DST_PORT", value: "http" },
  { env: { HUGINN_EBPF_DST_IP_V4: "10.0.0.256" }, variable: "HUGINN_EBPF_DST_IP_V4", value: "10.0.0.256" },
  { env: { HUGINN_EBPF_DST_IP_V6: "fd00::1::2" }, variable: "HUGINN_EBPF_DST_IP_V6", value: "fd00::1::2" },
  { env: { HUGINN_EBPF_PIN_PATH: "huginn" }, variable: "HUGINN_EBPF_PIN_PATH", value: "huginn" },
  {
    env: { HUGINN_EBPF_METRICS_ADDR: "example.org" },
    variable: "HUGINN_EBPF_METRICS_ADDR",
    value: "example.org",
  },
  { env: { HUGINN_EBPF_METRICS_PORT: "0" }, variable: "HUGINN_EBPF_METRICS_PORT", value: "0" },
  { env: { HUGINN_EBPF_CAPTURE: "xdp" }, variable: "HUGINN_EBPF_CAPTURE", value: "xdp" },
  {
    env: { HUGINN_EBPF_SYN_MAP_MAX_ENTRIES: "16" },
    variable: "HUGINN_EBPF_SYN_MAP_MAX_ENTRIES",
    value: "16",
  },
  { env: { HUGINN_EBPF_LOG_LEVEL: "trace" }, variable: "HUGINN_EBPF_LOG_LEVEL", value: "trace" },
];

for (const { env, variable, value } of cases) {
  const what = value === undefined ? "missing" : `${JSON.stringify(value)}`;
  Deno.test(`agent exits 2 with one line for ${variable} ${what}`, async () => {
    const merged = { ...VALID, ...env };
    const defined = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined)) as Record<
      string,
      string
    >;
    const { code, lines } = await runAgentToExit(defined);
    assert.equal(code, 2, lines.join("\n"));
    assert.equal(lines.length, 1, lines.join("\n"));
    const { level, msg } = JSON.parse(lines[0]);
    assert.equal(level, "error");
    assert.ok(msg.startsWith(variable), msg);
    if (value !== undefined) assert.ok(msg.includes(JSON.stringify(value)), msg);
    assert.match(msg, /: expected \S/);
  });
}
