/**
 * Reading the deployment files the way their tools do, for the manifest tests: kustomize builds (the real
 * kustomize from `scripts/install-kustomize.sh`), Compose files and Dockerfiles; and running a container
 * of a built manifest as a process the way a kubelet would: in a network namespace, with its volumes at
 * their mount paths in a private mount namespace, as its user, with its capabilities and sysctls, and a
 * read-only root when the manifest asks for one.
 *
 * @module
 */
import { parse as parseYaml, parseAllDocuments } from "yaml";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";

export type { IContainer, IPodSpec };

/** The repository root, with a trailing slash. */
export const ROOT = new URL("../../", import.meta.url).pathname;
const KUSTOMIZE = `${ROOT}.tools/bin/kustomize`;

/** Every kustomization a user may apply or build on, relative to `manifests/`. */
export const KUSTOMIZATIONS = ["base", "overlays/plain", "overlays/ebpf"] as const;

/** An object of a kustomize build: typed loosely, so that each test reads the fields it checks. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  // deno-lint-ignore no-explicit-any
  [field: string]: any;
}

/** Runs `kustomize build manifests/<dir>` and parses its output. */
export async function kustomizeBuild(dir: string): Promise<K8sObject[]> {
  try {
    await Deno.stat(KUSTOMIZE);
  } catch {
    throw new Error(`${KUSTOMIZE} is missing: run 'bash scripts/install-kustomize.sh'`);
  }
  const out = await new Deno.Command(KUSTOMIZE, { args: ["build", `${ROOT}manifests/${dir}`] }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`kustomize build manifests/${dir} failed:\n${stderr}`);
  return parseAllDocuments(new TextDecoder().decode(out.stdout)).map((doc) => {
    if (doc.errors.length > 0) throw doc.errors[0];
    return doc.toJS() as K8sObject;
  });
}

/** The one object of `kind` named `name` (a generated name's hash suffix aside). */
export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const generated = new RegExp(`^${name}-[a-z0-9]{10}$`);
  const hits = objects.filter((o) =>
    o.kind === kind && (o.metadata.name === name || generated.test(o.metadata.name))
  );
  if (hits.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${hits.length}`);
  return hits[0];
}

/** The pod template's spec of a Deployment or DaemonSet. */
export function podSpec(workload: K8sObject): IPodSpec {
  return workload.spec.template.spec;
}

/** A container of a workload by name. */
export function container(workload: K8sObject, name: string): IContainer {
  const found = podSpec(workload).containers.find((c) => c.name === name);
  if (!found) throw new Error(`${workload.kind} ${workload.metadata.name} has no container ${name}`);
  return found;
}

/** A container's literal environment (`value` entries only: the manifests use no other kind). */
export function envOf(c: IContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value === undefined) throw new Error(`env ${e.name} of ${c.name} has no literal value`);
    env[e.name] = e.value;
  }
  return env;
}

/** A port as a probe or Service names it (a number, or a container port's name), as a number. */
export function portNumber(c: IContainer, port: number | string): number {
  if (typeof port === "number") return port;
  const named = c.ports?.find((p) => p.name === port);
  if (!named) throw new Error(`container ${c.name} has no port named ${port}`);
  return named.containerPort;
}

/** The URL of an HTTP probe, from inside the container's network namespace. */
export function probeUrl(c: IContainer, probe: IContainer["readinessProbe"]): string {
  const get = probe?.httpGet;
  if (!get) throw new Error(`container ${c.name} has no HTTP probe there`);
  return `http://127.0.0.1:${portNumber(c, get.port)}${get.path}`;
}

/** The mount of the volume `volume` in container `c`. */
export function mountOf(c: IContainer, volume: string) {
  const mount = c.volumeMounts?.find((m) => m.name === volume);
  if (!mount) throw new Error(`container ${c.name} does not mount volume ${volume}`);
  return mount;
}

/** The file `key` of the ConfigMap that volume `volume` of `workload` refers to, from the build. */
export function configMapFile(
  objects: K8sObject[],
  workload: K8sObject,
  volume: string,
  key: string,
): string {
  const ref = podSpec(workload).volumes?.find((v) => v.name === volume)?.configMap?.name;
  if (!ref) throw new Error(`${workload.metadata.name} has no ConfigMap volume ${volume}`);
  const map = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === ref);
  if (!map) throw new Error(`ConfigMap ${ref} (volume ${volume}) is not in the build`);
  const text = map.data?.[key];
  if (typeof text !== "string") throw new Error(`ConfigMap ${ref} has no key ${key}`);
  return text;
}

/** A Compose file of `manifests/compose/`, parsed. */
export async function composeFile(name: string): Promise<{
  // deno-lint-ignore no-explicit-any
  services: Record<string, any>;
  // deno-lint-ignore no-explicit-any
  volumes?: Record<string, any>;
}> {
  return parseYaml(await Deno.readTextFile(`${ROOT}manifests/compose/${name}`));
}

/** The instructions of a Dockerfile this project uses; array forms (`["a", "b"]`) are parsed. */
export interface Dockerfile {
  /** Repository path of the file. */
  path: string;
  /** `[instruction, arguments]` in order, continuation lines joined, comments dropped. */
  instructions: Array<[string, string]>;
  /** Sources and destination of each `COPY` into the final stage (not `COPY --from`). */
  copies: Array<{ sources: string[]; dest: string }>;
  /** `ENV` of the final stage. */
  env: Record<string, string>;
  workdir: string;
  user: string;
  entrypoint: string[];
  cmd: string[];
}

/** Reads and parses `manifests/docker/<name>`. */
export async function dockerfile(name: string): Promise<Dockerfile> {
  const path = `manifests/docker/${name}`;
  const text = await Deno.readTextFile(`${ROOT}${path}`);
  const lines = text.replace(/\\\n/g, " ").split("\n").map((l) => l.trim());
  const instructions = lines.filter((l) => l !== "" && !l.startsWith("#")).map((l): [string, string] => {
    const m = /^(\S+)\s+(.*)$/.exec(l);
    if (!m) throw new Error(`${path}: cannot read instruction: ${l}`);
    return [m[1].toUpperCase(), m[2].trim()];
  });
  const finalStage = instructions.slice(instructions.findLastIndex(([i]) => i === "FROM"));
  const file: Dockerfile = {
    path,
    instructions,
    copies: [],
    env: {},
    workdir: "/",
    user: "root",
    entrypoint: [],
    cmd: [],
  };
  for (const [instruction, args] of finalStage) {
    if (instruction === "COPY" && !args.startsWith("--from")) {
      const words = args.split(/\s+/);
      file.copies.push({ sources: words.slice(0, -1), dest: words[words.length - 1] });
    } else if (instruction === "ENV") {
      for (const m of args.matchAll(/(\w+)=(\S+)/g)) file.env[m[1]] = m[2];
    } else if (instruction === "WORKDIR") file.workdir = args;
    else if (instruction === "USER") file.user = args;
    else if (instruction === "ENTRYPOINT") file.entrypoint = JSON.parse(args);
    else if (instruction === "CMD") file.cmd = JSON.parse(args);
  }
  return file;
}

/** Which Dockerfile builds each image, as the Compose files' `build` sections say. */
export async function dockerfilesByImage(): Promise<Map<string, string>> {
  const byImage = new Map<string, string>();
  for (const name of ["compose.plain.yaml", "compose.ebpf.yaml"]) {
    for (const [service, s] of Object.entries((await composeFile(name)).services)) {
      if (!s.build) continue;
      const path = String(s.build.dockerfile);
      const seen = byImage.get(s.image);
      if (seen !== undefined && seen !== path) {
        throw new Error(`${name}: service ${service} builds ${s.image} from ${path}, elsewhere from ${seen}`);
      }
      byImage.set(s.image, path);
    }
  }
  return byImage;
}

/** Runs `cmd` and throws with its output when it fails. */
export async function run(cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd.join(" ")} failed:\n${text}`);
  return text;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Where Deno keeps its cache here; the simulated containers read it, read-only. */
async function denoDir(): Promise<string> {
  return JSON.parse(await run([Deno.execPath(), "info", "--json"])).denoDir;
}

/** How to run one container of a built manifest. */
export interface ContainerRun {
  /** The network namespace standing for the pod's (or, with hostNetwork, the node's). */
  netns: string;
  workload: K8sObject;
  container: string;
  /** The build the workload comes from, where its ConfigMaps and Secrets are. */
  objects: K8sObject[];
  /** The Dockerfile of the container's image, for its entrypoint and environment. */
  image: Dockerfile;
  /** hostPath path → the directory on this machine that stands for it (e.g. a test's own bpffs). */
  hostPaths: Record<string, string>;
  /** Extra /etc/hosts lines, standing for cluster DNS (e.g. `127.0.0.1 huginn-echo`). */
  hosts?: string[];
  /** Scratch directory for the materialized volumes; removed by the caller. */
  scratch: string;
}

const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The files a ConfigMap or Secret volume holds, decoded. */
function volumeFiles(obj: K8sObject): Record<string, Uint8Array> {
  const decode = (v: string) =>
    obj.kind === "Secret" ? Uint8Array.from(atob(v), (ch) => ch.charCodeAt(0)) : new TextEncoder().encode(v);
  return Object.fromEntries(Object.entries<string>(obj.data ?? {}).map(([k, v]) => [k, decode(v)]));
}

/** Writes a ConfigMap or Secret volume's files with the mode and group a kubelet would give them. */
async function materialize(dir: string, files: Record<string, Uint8Array>, mode: number, gid: number) {
  await Deno.mkdir(dir, { recursive: true });
  await Deno.chmod(dir, 0o755);
  for (const [key, bytes] of Object.entries(files)) {
    await Deno.writeFile(`${dir}/${key}`, bytes);
    await Deno.chmod(`${dir}/${key}`, mode);
    await Deno.chown(`${dir}/${key}`, 0, gid);
  }
}

/**
 * Starts a container of a built manifest as a process; stdout and stderr are piped. The process is the
 * image's entrypoint (with this machine's Deno and Deno cache, from the repository root standing for the
 * image's WORKDIR), its args and env from the manifest. Needs root.
 */
export async function startContainer(r: ContainerRun): Promise<Deno.ChildProcess> {
  const spec = podSpec(r.workload);
  const c = container(r.workload, r.container);
  const sc = c.securityContext ?? {};
  const uid = sc.runAsUser ?? spec.securityContext?.runAsUser ?? 0;
  const gid = sc.runAsGroup ?? spec.securityContext?.runAsGroup ?? 0;
  const fsGroup = spec.securityContext?.fsGroup ?? 0;
  await Deno.chmod(r.scratch, 0o755);

  const script = ["set -eu"];
  for (const s of spec.securityContext?.sysctls ?? []) script.push(`sysctl -qw ${q(`${s.name}=${s.value}`)}`);
  // Directories the container writes to, or makes mount points in, are overlaid (writes land in
  // scratch), so that this machine's directories are never touched.
  const overlaid: string[] = [];
  const overlay = async (dir: string) => {
    if (overlaid.some((o) => dir === o || dir.startsWith(`${o}/`))) return;
    const layer = `${r.scratch}/overlay-${overlaid.length}`;
    await Deno.mkdir(`${layer}/upper`, { recursive: true });
    await Deno.mkdir(`${layer}/work`);
    const options = `lowerdir=${dir},upperdir=${layer}/upper,workdir=${layer}/work`;
    script.push(`mount -t overlay overlay -o ${q(options)} ${q(dir)}`);
    overlaid.push(dir);
  };
  const makeMountPoint = async (path: string) => {
    let dir = path;
    while (!(await exists(dir))) dir = dir.slice(0, dir.lastIndexOf("/")) || "/";
    if (dir !== path) await overlay(dir);
    script.push(`mkdir -p ${q(path)}`);
  };
  if (r.hosts) {
    await overlay("/etc");
    for (const line of r.hosts) script.push(`echo ${q(line)} >> /etc/hosts`);
  }

  for (const mount of c.volumeMounts ?? []) {
    const volume = spec.volumes?.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`${c.name} mounts undeclared volume ${mount.name}`);
    let source: string;
    if (volume.hostPath) {
      const { path, type } = volume.hostPath;
      const host = Object.keys(r.hostPaths).find((h) => path === h || path.startsWith(`${h}/`));
      if (host === undefined) throw new Error(`no stand-in given for hostPath ${path}`);
      source = `${r.hostPaths[host]}${path.slice(host.length)}`;
      // As the kubelet does for DirectoryOrCreate; Directory must exist already.
      if (type === "DirectoryOrCreate") await Deno.mkdir(source, { recursive: true, mode: 0o755 });
      else if (!(await exists(source))) throw new Error(`hostPath ${path} (${type}) does not exist`);
    } else if (volume.configMap || volume.secret) {
      const ref = volume.configMap?.name ?? volume.secret?.secretName;
      const kind = volume.configMap ? "ConfigMap" : "Secret";
      const obj = r.objects.find((o) => o.kind === kind && o.metadata.name === ref);
      if (!obj) throw new Error(`${kind} ${ref} (volume ${mount.name}) is not in the build`);
      source = `${r.scratch}/volume-${mount.name}`;
      const mode = (volume.configMap ?? volume.secret)?.defaultMode ?? 0o644;
      await materialize(source, volumeFiles(obj), mode, fsGroup);
    } else {
      throw new Error(`volume ${mount.name}: only hostPath, configMap and secret volumes are simulated`);
    }
    await makeMountPoint(mount.mountPath);
    script.push(`mount --bind ${q(source)} ${q(mount.mountPath)}`);
    if (mount.readOnly) script.push(`mount -o remount,bind,ro ${q(mount.mountPath)}`);
  }

  const cache = `${r.scratch}/deno-dir`;
  await Deno.mkdir(cache);
  script.push(`mount --bind ${q(await denoDir())} ${q(cache)}`, `mount -o remount,bind,ro ${q(cache)}`);
  if (sc.readOnlyRootFilesystem) {
    script.push(...overlaid.map((dir) => `mount -o remount,ro ${q(dir)}`), "mount -o remount,bind,ro /");
  }

  const caps = (sc.capabilities?.add ?? []).map((cap) => cap.toLowerCase());
  if (!(sc.capabilities?.drop ?? []).includes("ALL")) throw new Error(`${c.name} must drop ALL capabilities`);
  const plus = caps.map((cap) => `,+${cap}`).join("");
  const setpriv = ["setpriv", `--bounding-set=-all${plus}`, `--inh-caps=-all${uid === 0 ? "" : plus}`];
  if (uid !== 0) {
    // A non-root user keeps added capabilities only as ambient ones (containerd puts them in the
    // permitted and effective sets, which amounts to the same for the process).
    setpriv.push(`--ambient-caps=-all${plus}`, `--reuid=${uid}`, `--regid=${gid}`, "--clear-groups");
  }
  if (sc.allowPrivilegeEscalation === false) setpriv.push("--no-new-privs");

  const env = {
    ...r.image.env,
    ...envOf(c),
    DENO_DIR: cache,
    PATH: "/usr/local/bin:/usr/bin:/bin",
    HOME: "/",
  };
  const [program, ...entryArgs] = c.command ?? r.image.entrypoint;
  if (program !== "deno") throw new Error(`${c.name}: only deno entrypoints are simulated, not ${program}`);
  const argv = [Deno.execPath(), ...entryArgs, ...(c.args ?? (c.command ? [] : r.image.cmd))];
  script.push(
    `cd ${q(ROOT)}`,
    `exec ${setpriv.map(q).join(" ")} env -i ${
      Object.entries(env).map(([k, v]) => q(`${k}=${v}`)).join(" ")
    } ${argv.map(q).join(" ")}`,
  );
  return new Deno.Command("ip", {
    args: ["netns", "exec", r.netns, "bash", "-c", script.join("\n")],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Stops a started container (SIGTERM, then SIGKILL after 10 s) and returns what it printed. */
async function stopContainer(child: Deno.ChildProcess): Promise<string> {
  const output = child.output();
  try {
    child.kill("SIGTERM");
  } catch {
    // already exited
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited meanwhile
    }
  }, 10_000);
  const out = await output;
  clearTimeout(timer);
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

/**
 * Runs `body`, which starts containers into the list it is given; then, whatever happened, stops them and
 * runs `cleanup`. A failure of `body` is rethrown with everything the containers printed.
 */
export async function withContainers(
  body: (started: Deno.ChildProcess[]) => Promise<void>,
  cleanup: () => Promise<void>,
): Promise<void> {
  const started: Deno.ChildProcess[] = [];
  let failure: { error: unknown } | undefined;
  try {
    await body(started);
  } catch (error) {
    failure = { error };
  }
  const logs = await Promise.all(started.map(stopContainer));
  await cleanup();
  if (failure) {
    const message = failure.error instanceof Error ? failure.error.message : String(failure.error);
    throw new Error(`${message}\n--- container output ---\n${logs.join("\n")}`, {
      cause: failure.error,
    });
  }
}

/** GETs `url` from inside `netns` with curl; returns the status code and body. */
export async function getIn(
  netns: string,
  url: string,
  extra: string[] = [],
): Promise<{ status: number; body: string }> {
  const out = await new Deno.Command("ip", {
    args: ["netns", "exec", netns, "curl", "-sS", "--max-time", "5", "-w", "\n%{http_code}", ...extra, url],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const cut = text.lastIndexOf("\n");
  const status = Number(text.slice(cut + 1)) || 0;
  // No HTTP status: curl's own message says why (refused, timed out, TLS failure...).
  return { status, body: status === 0 ? new TextDecoder().decode(out.stderr) : text.slice(0, cut) };
}

/** Polls `url` in `netns` until it answers `status`, the process exits, or 30 s pass. */
export async function waitFor(
  netns: string,
  url: string,
  status: number,
  child: Deno.ChildProcess,
): Promise<void> {
  let exited = false;
  child.status.then(() => exited = true);
  let last = { status: 0, body: "" };
  for (let i = 0; i < 150 && !exited; i++) {
    last = await getIn(netns, url);
    if (last.status === status) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(
    `${url} in ${netns}: ${
      exited ? "the process exited" : `still ${last.status} ${last.body.trim()} after 30 s`
    }`,
  );
}

/** Mounts a bpffs instance at `dir` (made if needed) standing for a node's, with systemd's mode 700. */
export async function mountNodeBpffs(dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  await run(["mount", "-t", "bpf", "-o", "mode=700", "bpf", dir]);
}

/** Creates network namespace `name` with its loopback up. */
export async function addNetns(name: string): Promise<void> {
  await run(["ip", "netns", "add", name]);
  await run(["ip", "-n", name, "link", "set", "lo", "up"]);
}

/** Deletes network namespace `name` if it exists (its interfaces go with it). */
export async function deleteNetns(name: string): Promise<void> {
  await new Deno.Command("ip", { args: ["netns", "delete", name], stderr: "null" }).output();
}

/** A veth pair between two namespaces, each end up and optionally addressed (`192.0.2.1/24`). */
export async function addVeth(
  a: { netns: string; name: string; cidr?: string },
  b: { netns: string; name: string; cidr?: string },
): Promise<void> {
  // Created under a temporary name: the final one (e.g. eth0) may exist in this machine's namespace.
  const tmp = `dv${Math.floor(Math.random() * 1e9)}`;
  await run(["ip", "link", "add", `${tmp}a`, "type", "veth", "peer", "name", `${tmp}b`]);
  for (const [end, side] of [[a, "a"], [b, "b"]] as const) {
    await run(["ip", "link", "set", `${tmp}${side}`, "netns", end.netns]);
    await run(["ip", "-n", end.netns, "link", "set", `${tmp}${side}`, "name", end.name]);
    if (end.cidr) await run(["ip", "-n", end.netns, "addr", "add", end.cidr, "dev", end.name]);
    await run(["ip", "-n", end.netns, "link", "set", end.name, "up"]);
  }
}
