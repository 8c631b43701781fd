/**
 * The deployment files say what the code does: the agent accepts the DaemonSet's environment, the proxy
 * accepts the ConfigMaps' configuration, ports, paths, pin paths, users and capabilities match across
 * the manifests, the Compose files and the Dockerfiles, the images hold every file their entrypoints
 * load, and (as root) the real agent and proxy, run as their manifests say, answer the probes and expose
 * every metric the Grafana dashboard charts.
 */
import assert from "node:assert/strict";
import { parseAllDocuments } from "yaml";
import { agentEnvSchema, parseAgentEnv } from "../agent/config.ts";
import { parseConfig } from "../proxy/config.ts";
import {
  addNetns,
  addVeth,
  composeFile,
  configMapFile,
  container,
  deleteNetns,
  type Dockerfile,
  dockerfile,
  dockerfilesByImage,
  envOf,
  find,
  getIn,
  type IContainer,
  type K8sObject,
  kustomizeBuild,
  mountNodeBpffs,
  mountOf,
  podSpec,
  portNumber,
  probeUrl,
  ROOT,
  run,
  startContainer,
  waitFor,
  withContainers,
} from "./support/manifests.ts";

const plain = await kustomizeBuild("overlays/plain");
const ebpf = await kustomizeBuild("overlays/ebpf");
const agentSet = find(ebpf, "DaemonSet", "huginn-ebpf-agent");
const agent = container(agentSet, "agent");
const agentEnv = envOf(agent);
const proxyOf = (objects: K8sObject[]) => find(objects, "Deployment", "huginn-proxy");
const composePlain = await composeFile("compose.plain.yaml");
const composeEbpf = await composeFile("compose.ebpf.yaml");

/** The proxy configuration of a build, parsed by the proxy's own parser. */
function proxyConfig(objects: K8sObject[]) {
  return parseConfig(configMapFile(objects, proxyOf(objects), "config", "proxy.toml"), "toml");
}

/** The port of a `host:port` listen address. */
const portOf = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

Deno.test("the agent accepts the DaemonSet's HUGINN_EBPF_* environment, which sets every variable", () => {
  const parsed = parseAgentEnv(agentEnv);
  if (!parsed.ok) throw new Error(`the agent rejects the DaemonSet env: ${parsed.message}`);
  const known = Object.keys(agentEnvSchema.shape).sort();
  assert.deepStrictEqual(Object.keys(agentEnv).sort(), known, "DaemonSet env names vs the agent's schema");
  assert.deepStrictEqual(
    composeEbpf.services.agent.environment,
    agentEnv,
    "compose agent env vs DaemonSet env",
  );
});

Deno.test("the proxy mounts the agent's pin directory read-only, and finds the pins there", () => {
  const proxy = container(proxyOf(ebpf), "proxy");
  const pin = agentEnv.HUGINN_EBPF_PIN_PATH;
  const agentMount = mountOf(agent, "bpffs");
  if (!pin.startsWith(`${agentMount.mountPath}/`)) {
    throw new Error(`the agent's ${pin} is not under its bpffs mount ${agentMount.mountPath}`);
  }
  const volume = (w: K8sObject, name: string) => podSpec(w).volumes?.find((v) => v.name === name)?.hostPath;
  assert.deepStrictEqual(volume(agentSet, "bpffs"), {
    path: agentMount.mountPath,
    type: "DirectoryOrCreate",
  });
  assert.deepStrictEqual(agentMount.readOnly ?? false, false, "agent bpffs readOnly");
  // The host's pin directory is the agent's pin path; the proxy's pin path is where it is mounted.
  assert.deepStrictEqual(volume(proxyOf(ebpf), "ebpf-pins"), { path: pin, type: "DirectoryOrCreate" });
  const pinsMount = mountOf(proxy, "ebpf-pins");
  assert.deepStrictEqual(pinsMount.readOnly, true, "proxy ebpf-pins readOnly");
  assert.deepStrictEqual(
    envOf(proxy).HUGINN_EBPF_PIN_PATH,
    pinsMount.mountPath,
    "proxy HUGINN_EBPF_PIN_PATH",
  );

  // Compose shares one fresh bpffs (mode 1777, so uid 10001 can traverse it) between the two services.
  const [composeAgent, composeProxy] = [composeEbpf.services.agent, composeEbpf.services.proxy];
  assert.deepStrictEqual(composeAgent.volumes, [`bpffs:${agentMount.mountPath}`], "compose agent volumes");
  if (!composeProxy.volumes.includes(`bpffs:${agentMount.mountPath}:ro`)) {
    throw new Error("compose proxy does not mount bpffs read-only where the agent pins");
  }
  assert.deepStrictEqual(composeProxy.environment.HUGINN_EBPF_PIN_PATH, pin, "compose proxy pin path");
  assert.deepStrictEqual(composeEbpf.volumes?.bpffs, { driver_opts: { type: "bpf", device: "bpf" } });
});

Deno.test("privileges: the agent gets BPF, NET_ADMIN, PERFMON; the ebpf proxy BPF only; plain none", () => {
  const spec = podSpec(agentSet);
  assert.deepStrictEqual(spec.hostNetwork, true, "agent hostNetwork");
  assert.deepStrictEqual(spec.priorityClassName, "system-node-critical", "agent priorityClassName");
  assert.deepStrictEqual(spec.tolerations, [{ operator: "Exists" }], "agent tolerations");
  assert.deepStrictEqual(
    agent.securityContext?.capabilities,
    { add: ["BPF", "NET_ADMIN", "PERFMON"], drop: ["ALL"] },
    "agent",
  );
  assert.deepStrictEqual(agent.securityContext?.seccompProfile, { type: "Unconfined" }, "agent seccomp");
  for (const [objects, add] of [[ebpf, ["BPF"]], [plain, undefined]] as const) {
    const deployment = proxyOf(objects);
    const proxy = container(deployment, "proxy");
    const variant = add ? "ebpf" : "plain";
    assert.deepStrictEqual(
      proxy.securityContext?.capabilities,
      add ? { add, drop: ["ALL"] } : { drop: ["ALL"] },
      `${variant} proxy capabilities`,
    );
    assert.deepStrictEqual(
      proxy.securityContext?.readOnlyRootFilesystem,
      true,
      `${variant} proxy readOnlyRootFilesystem`,
    );
    assert.deepStrictEqual(
      proxy.securityContext?.allowPrivilegeEscalation,
      false,
      `${variant} allowPrivilegeEscalation`,
    );
    const pod = podSpec(deployment).securityContext;
    assert.deepStrictEqual([pod?.runAsNonRoot, pod?.runAsUser], [true, 10001], `${variant} proxy user`);
    assert.deepStrictEqual(pod?.seccompProfile, { type: "RuntimeDefault" }, `${variant} proxy seccomp`);
  }
  const plainProxy = proxyOf(plain);
  if (podSpec(plainProxy).volumes?.some((v) => v.hostPath)) throw new Error("plain proxy mounts a hostPath");
  if (Object.keys(envOf(container(plainProxy, "proxy"))).some((k) => k.startsWith("HUGINN_EBPF_"))) {
    throw new Error("plain proxy has HUGINN_EBPF_* env");
  }
  const [c, p] = [composeEbpf.services.agent, composeEbpf.services.proxy];
  assert.deepStrictEqual(
    [c.cap_drop, c.cap_add, c.user],
    [["ALL"], ["BPF", "NET_ADMIN", "PERFMON"], "0:0"],
    "compose agent",
  );
  assert.deepStrictEqual(c.network_mode, "service:proxy", "compose agent network_mode");
  if (!c.security_opt.includes("seccomp=unconfined")) {
    throw new Error("compose agent seccomp is not unconfined");
  }
  assert.deepStrictEqual(
    [p.cap_drop, p.cap_add, p.user],
    [["ALL"], ["BPF"], "10001:10001"],
    "compose ebpf proxy",
  );
  const q = composePlain.services.proxy;
  assert.deepStrictEqual(
    [q.cap_drop, q.cap_add, q.user],
    [["ALL"], undefined, "10001:10001"],
    "compose plain proxy",
  );
  for (const s of [p, q]) {
    if (s.security_opt.some((o: string) => o.startsWith("seccomp"))) {
      throw new Error("a compose proxy leaves Docker's default seccomp profile");
    }
  }
});

Deno.test("the ConfigMaps' proxy configs pass `proxy/main.ts --validate` with the proxy's env", async () => {
  for (const [variant, objects] of [["plain", plain], ["ebpf", ebpf]] as const) {
    const proxy = container(proxyOf(objects), "proxy");
    const file = await Deno.makeTempFile({ suffix: ".toml" });
    try {
      await Deno.writeTextFile(file, configMapFile(objects, proxyOf(objects), "config", "proxy.toml"));
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}proxy/main.ts`, "--validate", file],
        env: envOf(proxy),
        clearEnv: true,
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      if (out.code !== 0 || !text.includes("configuration OK")) {
        throw new Error(`${variant}: --validate exited ${out.code}:\n${text}`);
      }
    } finally {
      await Deno.remove(file);
    }
  }
  const [p, e] = [proxyConfig(plain), proxyConfig(ebpf)];
  assert.deepStrictEqual(
    [p.fingerprint.tcp_enabled, e.fingerprint.tcp_enabled],
    [false, true],
    "tcp_enabled plain, ebpf",
  );
  e.fingerprint.tcp_enabled = false;
  assert.deepStrictEqual(e, p, "the ebpf config apart from tcp_enabled vs the plain config");
});

Deno.test("config and certificate paths: the args, the mounts, the Secret and the Compose files agree", async () => {
  for (
    const [objects, compose, file] of [
      [plain, composePlain, "../base/proxy.toml"],
      [ebpf, composeEbpf, "../overlays/ebpf/proxy.toml"],
    ] as const
  ) {
    const deployment = proxyOf(objects);
    const proxy = container(deployment, "proxy");
    const configPath = `${mountOf(proxy, "config").mountPath}/proxy.toml`;
    assert.deepStrictEqual(proxy.args, [configPath], "proxy args");
    assert.deepStrictEqual(compose.services.proxy.command, [configPath], "compose proxy command");
    if (!compose.services.proxy.volumes.includes(`${file}:${configPath}:ro`)) {
      throw new Error(`compose does not mount ${file} at ${configPath}`);
    }
    const onDisk = await Deno.readTextFile(new URL(file, `file://${ROOT}manifests/compose/`));
    assert.deepStrictEqual(
      configMapFile(objects, deployment, "config", "proxy.toml"),
      onDisk,
      `ConfigMap vs ${file}`,
    );

    const tls = mountOf(proxy, "tls");
    const secretName = podSpec(deployment).volumes?.find((v) => v.name === "tls")?.secret?.secretName ?? "";
    const secret = find(objects, "Secret", secretName);
    const config = proxyConfig(objects);
    for (const path of [config.tls.cert_path, config.tls.key_path]) {
      const dir = path?.slice(0, path.lastIndexOf("/"));
      const key = path?.slice(path.lastIndexOf("/") + 1) ?? "";
      assert.deepStrictEqual(dir, tls.mountPath, `directory of ${path}`);
      if (!(key in secret.data)) throw new Error(`Secret ${secretName} has no ${key} for ${path}`);
    }
    if (!compose.services.proxy.volumes.includes(`../components/demo-tls:${tls.mountPath}:ro`)) {
      throw new Error(`compose does not mount the certificate directory at ${tls.mountPath}`);
    }
  }
});

Deno.test("ports: Services, probes, annotations, the agent's filter and Compose match the configs", async () => {
  for (const [objects, compose] of [[plain, composePlain], [ebpf, composeEbpf]] as const) {
    const deployment = proxyOf(objects);
    const proxy = container(deployment, "proxy");
    const config = proxyConfig(objects);
    const listen = config.listen.addrs.map(portOf);
    const metrics = config.telemetry.metrics_port;
    const https = find(objects, "Service", "huginn-proxy").spec.ports;
    assert.deepStrictEqual(https.length, 1, "public Service ports");
    // The SYN arrives with the Service port; the proxy keeps only SYN records for its listen port.
    assert.deepStrictEqual(
      [https[0].port, portNumber(proxy, https[0].targetPort)],
      [listen[0], listen[0]],
      "https port",
    );
    assert.deepStrictEqual(
      find(objects, "Service", "huginn-proxy").spec.externalTrafficPolicy,
      "Local",
      "traffic policy",
    );
    const metricsService = find(objects, "Service", "huginn-proxy-metrics").spec.ports[0];
    assert.deepStrictEqual(
      portNumber(proxy, metricsService.targetPort),
      metrics,
      "metrics Service target port",
    );
    for (const probe of [proxy.readinessProbe, proxy.livenessProbe]) {
      assert.deepStrictEqual(
        portNumber(proxy, probe?.httpGet?.port ?? 0),
        metrics,
        `probe ${probe?.httpGet?.path} port`,
      );
    }
    const annotations = deployment.spec.template.metadata.annotations;
    assert.deepStrictEqual([annotations["prometheus.io/port"], annotations["prometheus.io/path"]], [
      `${metrics}`,
      "/metrics",
    ], "proxy prometheus.io annotations");
    const published = compose.services.proxy.ports.map((p: string) => Number(p.split(":")[1]));
    for (const port of [...listen, metrics]) {
      if (!published.includes(port)) throw new Error(`compose does not publish the proxy's port ${port}`);
    }
    const health = compose.services.proxy.healthcheck.test.join(" ");
    if (!health.includes(`127.0.0.1:${metrics}/ready`)) throw new Error(`compose healthcheck: ${health}`);
  }
  const listen = proxyConfig(ebpf).listen.addrs.map(portOf);
  assert.deepStrictEqual(
    Number(agentEnv.HUGINN_EBPF_DST_PORT),
    listen[0],
    "agent HUGINN_EBPF_DST_PORT vs listen port",
  );
  const agentMetrics = Number(agentEnv.HUGINN_EBPF_METRICS_PORT);
  for (const probe of [agent.readinessProbe, agent.livenessProbe]) {
    assert.deepStrictEqual(
      portNumber(agent, probe?.httpGet?.port ?? 0),
      agentMetrics,
      `agent probe ${probe?.httpGet?.path}`,
    );
  }
  const annotations = agentSet.spec.template.metadata.annotations;
  assert.deepStrictEqual(annotations["prometheus.io/port"], `${agentMetrics}`, "agent prometheus.io/port");
  if (!composeEbpf.services.proxy.ports.some((p: string) => p.endsWith(`:${agentMetrics}`))) {
    throw new Error("compose does not publish the agent's metrics port on the proxy service it shares");
  }

  const monitors = await Deno.readTextFile(`${ROOT}manifests/prometheus/servicemonitor.yaml`);
  const [serviceMonitor, podMonitor] = parseAllDocuments(monitors).map((doc) => doc.toJS());
  const metricsService = find(ebpf, "Service", "huginn-proxy-metrics");
  for (const [k, v] of Object.entries<string>(serviceMonitor.spec.selector.matchLabels)) {
    assert.deepStrictEqual(metricsService.metadata.labels?.[k], v, `ServiceMonitor selector ${k}`);
  }
  assert.deepStrictEqual(
    serviceMonitor.spec.endpoints[0].port,
    metricsService.spec.ports[0].name,
    "ServiceMonitor port",
  );
  for (const [k, v] of Object.entries<string>(podMonitor.spec.selector.matchLabels)) {
    assert.deepStrictEqual(agentSet.spec.template.metadata.labels[k], v, `PodMonitor selector ${k}`);
  }
  portNumber(agent, podMonitor.spec.podMetricsEndpoints[0].port);
});

/** The `deno run` flags of a deno.json task. */
async function taskFlags(task: string): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
  return tasks[task].split(/\s+/).filter((w: string) => w.startsWith("--"));
}

Deno.test("images: each manifest image is built by a Dockerfile whose user, flags and ports match", async () => {
  const byImage = await dockerfilesByImage();
  const imageOf = (name: string) => name.slice(0, name.lastIndexOf(":"));
  const expectedFlags: Record<string, string[]> = {
    "huginn/proxy": await taskFlags("proxy"),
    "huginn/proxy-plain": (await taskFlags("proxy")).filter((f) => f !== "--allow-ffi"),
    "huginn/ebpf-agent": await taskFlags("agent"),
  };
  for (const objects of [plain, ebpf]) {
    for (const w of objects.filter((o) => o.kind === "Deployment" || o.kind === "DaemonSet")) {
      const spec = podSpec(w);
      for (const c of spec.containers) {
        const path = byImage.get(c.image ?? "");
        if (!path) throw new Error(`no Compose service builds ${c.image} (${w.metadata.name})`);
        const file = await dockerfile(path.replace("manifests/docker/", ""));
        const uid = c.securityContext?.runAsUser ?? spec.securityContext?.runAsUser;
        const gid = c.securityContext?.runAsGroup ?? spec.securityContext?.runAsGroup ?? uid;
        assert.deepStrictEqual(file.user, `${uid}:${gid}`, `${path} USER vs ${w.metadata.name}`);
        const exposed = file.instructions.filter(([i]) => i === "EXPOSE").flatMap(([, a]) => a.split(/\s+/));
        for (const p of c.ports ?? []) {
          if (!c.command && !exposed.includes(`${p.containerPort}`)) {
            throw new Error(`${path} does not EXPOSE ${p.containerPort} (${w.metadata.name})`);
          }
        }
        if (c.command) continue; // the echo backend, checked with the Dockerfiles' contents
        const [deno, sub, ...rest] = file.entrypoint;
        assert.deepStrictEqual(
          [deno, sub, rest[0], rest[1]],
          ["deno", "run", "--cached-only", "--frozen"],
          path,
        );
        assert.deepStrictEqual(
          rest.slice(2, -1),
          expectedFlags[imageOf(c.image ?? "")],
          `${path} permissions`,
        );
      }
    }
  }
});

/** Local modules and files that a module graph loads: `deno info` plus `new URL("…", import.meta.url)`. */
async function filesLoadedBy(entry: string): Promise<Set<string>> {
  const files = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const next = pending.pop()!;
    const info = JSON.parse(await run([Deno.execPath(), "info", "--json", `${ROOT}${next}`]));
    for (const m of info.modules) {
      if (!m.specifier?.startsWith("file://")) continue;
      const path = new URL(m.specifier).pathname.slice(ROOT.length);
      if (files.has(path)) continue;
      files.add(path);
      const source = await Deno.readTextFile(`${ROOT}${path}`);
      for (const [, rel] of source.matchAll(/new URL\("([^"]+)", import\.meta\.url\)/g)) {
        const target = new URL(rel, m.specifier).pathname.slice(ROOT.length);
        if (target.endsWith(".ts")) pending.push(target);
        else files.add(target);
      }
    }
  }
  return files;
}

Deno.test("images: every COPY source exists and holds every file the entrypoints load", async () => {
  for (const name of ["proxy.Dockerfile", "proxy-plain.Dockerfile", "ebpf-agent.Dockerfile"]) {
    const file = await dockerfile(name);
    const copied: string[] = [];
    for (const { sources, dest } of file.copies) {
      for (const source of sources) {
        await Deno.stat(`${ROOT}${source}`).catch(() => {
          throw new Error(`${file.path}: COPY source ${source} does not exist`);
        });
        // Every COPY keeps the repository layout under WORKDIR, so that relative imports resolve.
        const base = source.replace(/\/$/, "").split("/").pop();
        const target = (dest.endsWith("/") && !source.endsWith("/") ? `${dest}${base}` : dest).replace(
          /^\.\//,
          "",
        );
        if (target.replace(/\/$/, "") !== source.replace(/\/$/, "")) {
          throw new Error(`${file.path}: COPY ${source} ${dest} moves it to ${target}`);
        }
        copied.push(source);
      }
    }
    const inImage = (path: string) => copied.some((c) => c.endsWith("/") ? path.startsWith(c) : path === c);
    const cache = file.instructions.find(([i, a]) => i === "RUN" && a.startsWith("deno cache"));
    const entries = cache?.[1].split(/\s+/).filter((w) => w.endsWith(".ts")) ?? [];
    const script = file.entrypoint[file.entrypoint.length - 1];
    if (!entries.includes(script)) throw new Error(`${file.path}: 'deno cache' does not cover ${script}`);
    for (const entry of entries) {
      for (const path of await filesLoadedBy(entry)) {
        if (!inImage(path)) throw new Error(`${file.path}: ${entry} loads ${path}, which is not copied in`);
      }
    }
  }
  const echo = container(find(plain, "Deployment", "huginn-echo"), "echo");
  const script = echo.command?.[echo.command.length - 1] ?? "";
  const plainImage = await dockerfile("proxy-plain.Dockerfile");
  if (!plainImage.copies.some((c) => c.sources.includes(script))) {
    throw new Error(`the echo backend's ${script} is not in the proxy image`);
  }
  assert.deepStrictEqual(
    composePlain.services["huginn-echo"].entrypoint,
    echo.command,
    "compose echo entrypoint",
  );
});

/** The Dockerfile that builds a container's image. */
async function imageOf(c: IContainer): Promise<Dockerfile> {
  const path = (await dockerfilesByImage()).get(c.image ?? "");
  if (!path) throw new Error(`no Compose service builds ${c.image}`);
  return await dockerfile(path.replace("manifests/docker/", ""));
}

/** The metric names the Grafana dashboard queries, without histogram suffixes; `process_*` ones both serve. */
async function dashboardMetrics(): Promise<Set<string>> {
  const dashboard = JSON.parse(await Deno.readTextFile(`${ROOT}manifests/grafana/huginn.json`));
  const names = new Set<string>();
  // deno-lint-ignore no-explicit-any
  for (const panel of dashboard.panels.filter((p: any) => p.targets)) {
    for (const { expr } of panel.targets) {
      for (const [name] of expr.matchAll(/\b(?:huginn|process)_\w+/g)) {
        names.add(name.replace(/_(bucket|sum|count)$/, ""));
      }
    }
  }
  return names;
}

/** The metric families a /metrics page declares. */
const families = (text: string) => new Set([...text.matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]));

Deno.test({
  name:
    "the real agent and proxy, run as their manifests say, answer the probes and serve every charted metric",
  ignore: Deno.uid() !== 0,
  async fn() {
    const id = `deploy-${Deno.pid}-agree`;
    const [node, pod] = [`${id}-node`, `${id}-pod`];
    const scratch = await Deno.makeTempDir({ prefix: "deploy-agree-" });
    // The simulated containers' users reach their Deno cache through here.
    await Deno.chmod(scratch, 0o755);
    const bpffs = `${scratch}/bpffs`;
    const proxyDeployment = proxyOf(plain);
    const proxy = container(proxyDeployment, "proxy");
    await withContainers(async (started) => {
      await mountNodeBpffs(bpffs);
      await addNetns(node);
      await addNetns(pod);
      // The node's interface named as the DaemonSet names it; its peer stands for the wire.
      await addVeth({ netns: node, name: agentEnv.HUGINN_EBPF_INTERFACE }, { netns: pod, name: "wire0" });
      for (
        const [workload, c, netns, objects] of [[agentSet, agent, node, ebpf], [
          proxyDeployment,
          proxy,
          pod,
          plain,
        ]] as const
      ) {
        await Deno.mkdir(`${scratch}/${c.name}`);
        started.push(
          await startContainer({
            netns,
            workload,
            container: c.name,
            objects,
            image: await imageOf(c),
            hostPaths: { "/sys/fs/bpf": bpffs },
            scratch: `${scratch}/${c.name}`,
          }),
        );
      }
      const charted = await dashboardMetrics();
      for (const [netns, c, child] of [[node, agent, started[0]], [pod, proxy, started[1]]] as const) {
        await waitFor(netns, probeUrl(c, c.readinessProbe), 200, child);
        assert.deepStrictEqual(
          (await getIn(netns, probeUrl(c, c.livenessProbe))).status,
          200,
          `${c.name} liveness probe`,
        );
        const port = portNumber(c, "metrics");
        const served = families((await getIn(netns, `http://127.0.0.1:${port}/metrics`)).body);
        const missing = [...charted].filter((m) =>
          (m.startsWith("process_") || (c === agent) === m.startsWith("huginn_ebpf_")) && !served.has(m)
        );
        if (missing.length > 0) {
          throw new Error(`${c.name} does not serve charted metrics: ${missing.join(", ")}`);
        }
      }
    }, async () => {
      await deleteNetns(node);
      await deleteNetns(pod);
      await new Deno.Command("umount", { args: [bpffs], stderr: "null" }).output();
      await Deno.remove(scratch, { recursive: true });
    });
  },
});
