/**
 * `/metrics` carries the process-wide families (`process_*`) once, for the whole process: the proxy's
 * workers are threads of one process, so a family counted in each of them and summed would be off by the
 * worker count.
 */
import assert from "node:assert/strict";
import { routeAllTo, startEcho, startProxy } from "./support/proxy_harness.ts";

/** The permissions of the plain-mode image (`manifests/docker/proxy-plain.Dockerfile`). */
const PLAIN_IMAGE_PERMISSIONS = ["--allow-read", "--allow-env", "--allow-net", "--allow-sys"];

/** The value of the one unlabelled sample of `name`; fails when there is none or more than one. */
function single(text: string, name: string): number {
  const lines = text.split("\n").filter((l) => l.startsWith(`${name} `));
  assert.equal(lines.length, 1, `${name} appears once: ${lines.join(" | ")}`);
  return Number(lines[0].slice(name.length + 1));
}

function procStatusKiB(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  assert.ok(m, field);
  return Number(m[1]);
}

Deno.test("process memory, CPU and descriptors describe the proxy process, not each worker", async () => {
  await using echo = await startEcho();
  await using proxy = await startProxy({ ...routeAllTo(echo.address), workers: 2 });
  const pid = proxy.child.pid;
  const text = (await proxy.ops("/metrics")).body;

  const rss = single(text, "process_resident_memory_bytes");
  const procRss = procStatusKiB(pid, "VmRSS") * 1024;
  // Sampled a moment apart: a doubled value (one per worker, summed) would be far outside this.
  assert.ok(Math.abs(rss - procRss) < procRss * 0.25, `RSS ${rss} vs /proc ${procRss}`);

  const fds = single(text, "process_open_fds");
  const procFds = [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
  assert.ok(Math.abs(fds - procFds) <= 4, `open fds ${fds} vs /proc ${procFds}`);
  const limit = /^Max open files\s+(\d+)/m.exec(Deno.readTextFileSync(`/proc/${pid}/limits`));
  assert.equal(single(text, "process_max_fds"), Number(limit![1]));

  const started = single(text, "process_start_time_seconds");
  assert.ok(Math.abs(started - Date.now() / 1000) < 120, `start time ${started}`);
  assert.ok(single(text, "process_cpu_seconds_total") > 0);
  assert.doesNotMatch(text, /^nodejs_/m, "no per-isolate families from the idle main thread");
});

Deno.test("without --allow-all, as in the plain image, memory is still reported and nothing reads zero", async () => {
  const dockerfile = await Deno.readTextFile(
    new URL("../manifests/docker/proxy-plain.Dockerfile", import.meta.url),
  );
  for (const flag of PLAIN_IMAGE_PERMISSIONS) assert.ok(dockerfile.includes(`"${flag}"`), flag);
  await using echo = await startEcho();
  await using proxy = await startProxy(routeAllTo(echo.address), { permissions: PLAIN_IMAGE_PERMISSIONS });
  const text = (await proxy.ops("/metrics")).body;
  const rss = single(text, "process_resident_memory_bytes");
  const procRss = procStatusKiB(proxy.child.pid, "VmRSS") * 1024;
  assert.ok(Math.abs(rss - procRss) < procRss * 0.25, `RSS ${rss} vs /proc ${procRss}`);
  assert.ok(single(text, "process_cpu_seconds_total") > 0);
  // Deno refuses /proc/self to such a process: families read from it would be zeros, so they are absent.
  assert.doesNotMatch(text, /^process_(open_fds|max_fds|virtual_memory_bytes|heap_bytes) /m);
});
