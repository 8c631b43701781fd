/**
 * The ebpf overlay works with exactly the privileges it grants. Its agent, proxy and echo backend run
 * as processes the way a kubelet would run them (tests/support/manifests.ts): the agent as root with
 * only BPF, NET_ADMIN and PERFMON on the "node" namespace's interface; the proxy as uid 10001 with only
 * CAP_BPF, a read-only root and the node's bpffs mounted read-only, in a "pod" namespace routed behind
 * the node. A client's HTTPS request through the node gets the p0f fingerprint of its own SYN.
 */
import {
  addNetns,
  addVeth,
  container,
  deleteNetns,
  dockerfile,
  dockerfilesByImage,
  find,
  getIn,
  type IContainer,
  type K8sObject,
  kustomizeBuild,
  mountNodeBpffs,
  mountOf,
  portNumber,
  probeUrl,
  run,
  startContainer,
  waitFor,
  withContainers,
} from "./support/manifests.ts";

const CAP_BPF = 39n;
const CAP_NET_ADMIN = 12n;
const CAP_PERFMON = 38n;

/** A process's effective capability set and real uid, from /proc. */
async function credentials(pid: number): Promise<{ uid: number; capEff: bigint }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  const capEff = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)/m.exec(status)?.[1]}`);
  return { uid, capEff };
}

/** The mount options of `path` as process `pid` sees it. */
async function mountOptions(pid: number, path: string): Promise<string[]> {
  for (const line of (await Deno.readTextFile(`/proc/${pid}/mountinfo`)).split("\n")) {
    const fields = line.split(" ");
    if (fields[4] === path) return fields[5].split(",");
  }
  throw new Error(`${path} is not a mount point for pid ${pid}`);
}

Deno.test({
  name: "ebpf overlay: the agent and the CAP_BPF-only, read-only proxy give a client its p0f fingerprint",
  ignore: Deno.uid() !== 0,
  async fn() {
    const objects = await kustomizeBuild("overlays/ebpf");
    const byImage = await dockerfilesByImage();
    const imageOf = async (image = "") =>
      await dockerfile((byImage.get(image) ?? "").replace("manifests/docker/", ""));
    const agentSet = find(objects, "DaemonSet", "huginn-ebpf-agent");
    const proxyDeployment = find(objects, "Deployment", "huginn-proxy");
    const echoDeployment = find(objects, "Deployment", "huginn-echo");
    const agent = container(agentSet, "agent");
    const proxy = container(proxyDeployment, "proxy");
    const echo = container(echoDeployment, "echo");
    const nodeInterface = agent.env?.find((e) => e.name === "HUGINN_EBPF_INTERFACE")?.value ?? "";
    const httpsPort = portNumber(proxy, "https");

    const id = `deploy-${Deno.pid}-podsim`;
    const [client, node, pod] = [`${id}-client`, `${id}-node`, `${id}-pod`];
    const scratch = await Deno.makeTempDir({ prefix: "deploy-podsim-" });
    await Deno.chmod(scratch, 0o755);
    const bpffs = `${scratch}/bpffs`;
    await withContainers(async (started) => {
      await mountNodeBpffs(bpffs);
      for (const ns of [client, node, pod]) await addNetns(ns);
      // Documentation ranges (RFC 5737): client 192.0.2.2 → node 192.0.2.1 / 198.51.100.1 → pod 198.51.100.2.
      const [clientEnd, nodeEnd] = [{ netns: client, name: "eth0", cidr: "192.0.2.2/24" }, {
        netns: node,
        name: nodeInterface,
        cidr: "192.0.2.1/24",
      }];
      await addVeth(clientEnd, nodeEnd);
      await addVeth({ netns: node, name: "vpod", cidr: "198.51.100.1/24" }, {
        netns: pod,
        name: "eth0",
        cidr: "198.51.100.2/24",
      });
      await run(["ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
      await run(["ip", "-n", client, "route", "add", "198.51.100.0/24", "via", "192.0.2.1"]);
      await run(["ip", "-n", pod, "route", "add", "default", "via", "198.51.100.1"]);

      const start = async (netns: string, workload: K8sObject, c: IContainer, hosts?: string[]) => {
        await Deno.mkdir(`${scratch}/${c.name}`);
        const child = await startContainer({
          netns,
          workload,
          container: c.name,
          objects,
          image: await imageOf(c.image),
          hostPaths: { "/sys/fs/bpf": bpffs },
          hosts,
          scratch: `${scratch}/${c.name}`,
        });
        started.push(child);
        return child;
      };
      const agentProcess = await start(node, agentSet, agent);
      const echoProcess = await start(pod, echoDeployment, echo);
      // Cluster DNS for the Service name in the proxy config; the echo shares the pod namespace here.
      const proxyProcess = await start(pod, proxyDeployment, proxy, ["127.0.0.1 huginn-echo"]);
      await waitFor(node, probeUrl(agent, agent.readinessProbe), 200, agentProcess);
      await waitFor(pod, probeUrl(echo, echo.readinessProbe), 200, echoProcess);
      await waitFor(pod, probeUrl(proxy, proxy.readinessProbe), 200, proxyProcess);

      const agentCreds = await credentials(agentProcess.pid);
      const agentCaps = (1n << CAP_BPF) | (1n << CAP_NET_ADMIN) | (1n << CAP_PERFMON);
      if (agentCreds.uid !== 0 || agentCreds.capEff !== agentCaps) {
        throw new Error(`agent runs as ${agentCreds.uid} with CapEff ${agentCreds.capEff.toString(16)}`);
      }
      const proxyCreds = await credentials(proxyProcess.pid);
      if (proxyCreds.uid !== 10001 || proxyCreds.capEff !== 1n << CAP_BPF) {
        throw new Error(`proxy runs as ${proxyCreds.uid} with CapEff ${proxyCreds.capEff.toString(16)}`);
      }
      for (const path of ["/", mountOf(proxy, "ebpf-pins").mountPath]) {
        if (!(await mountOptions(proxyProcess.pid, path)).includes("ro")) {
          throw new Error(`the proxy's ${path} is writable`);
        }
      }

      const response = await getIn(client, `https://198.51.100.2:${httpsPort}/`, ["-k"]);
      if (response.status !== 200) throw new Error(`client got ${response.status}: ${response.body}`);
      const p0f = JSON.parse(response.body).headers["x-tcp-p0f"];
      // IPv4 with the TTL curl's kernel sent (captured on the node, before forwarding) and no IP options.
      if (typeof p0f !== "string" || !p0f.startsWith("4:64+0:0:")) {
        throw new Error(`no p0f fingerprint for the client's SYN: x-tcp-p0f = ${JSON.stringify(p0f)}`);
      }
      const metrics = (await getIn(pod, `http://127.0.0.1:${portNumber(proxy, "metrics")}/metrics`)).body;
      if (!/^huginn_tcp_syn_fingerprints_total\{reason="hit"\} 1$/m.test(metrics)) {
        throw new Error(`the proxy did not count one SYN hit:\n${metrics.match(/^huginn_tcp_syn.*$/gm)}`);
      }
    }, async () => {
      for (const ns of [client, node, pod]) await deleteNetns(ns);
      await new Deno.Command("umount", { args: [bpffs], stderr: "null" }).output();
      await Deno.remove(scratch, { recursive: true });
    });
  },
});
