/**
 * Every object that `kubectl apply -k` would send, for the base and each overlay, is valid against the
 * Kubernetes OpenAPI schemas (npm kubernetes-models), and the overlays carry the resources a working
 * stack needs.
 */
import * as models from "kubernetes-models";
import { find, type K8sObject, KUSTOMIZATIONS, kustomizeBuild } from "./support/manifests.ts";

interface Model {
  new (data: unknown): { validate(): void };
}

/** The kubernetes-models class for an object's apiVersion and kind (`apps/v1` → `models.apps.v1`). */
function modelOf(obj: K8sObject): Model {
  const [group, version] = obj.apiVersion.split("/");
  // The core group is exported as v1; "rbac.authorization.k8s.io" as rbacAuthorizationK8sIo.
  const key = group.split(".").map((p, i) => i === 0 ? p : p[0].toUpperCase() + p.slice(1)).join("");
  // deno-lint-ignore no-explicit-any
  const exports = (models as any)[key];
  const model = version === undefined ? exports?.[obj.kind] : exports?.[version]?.[obj.kind];
  if (typeof model !== "function") throw new Error(`no Kubernetes schema for ${obj.apiVersion} ${obj.kind}`);
  return model;
}

/**
 * kustomize wraps a Secret's base64 data into lines; the API server's base64 decoder (Go's) skips line
 * breaks, the schema's `byte` format does not. Unwrapped, the data is checked as the server reads it.
 */
function asServerReads(obj: K8sObject): K8sObject {
  if (obj.kind !== "Secret" || obj.data === undefined) return obj;
  const data = Object.fromEntries(
    Object.entries<string>(obj.data).map(([k, v]) => [k, v.replace(/\n/g, "")]),
  );
  return { ...obj, data };
}

/** The schema error for `obj`, or undefined when it is valid. */
function schemaError(obj: K8sObject): string | undefined {
  try {
    new (modelOf(obj))(asServerReads(obj)).validate();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

for (const dir of KUSTOMIZATIONS) {
  Deno.test(`manifests/${dir}: every object is valid against the Kubernetes schemas`, async () => {
    const objects = await kustomizeBuild(dir);
    const problems = objects.flatMap((o) => {
      const error = schemaError(o);
      return error === undefined ? [] : [`${o.kind} ${o.metadata.name}: ${error}`];
    });
    if (problems.length > 0) throw new Error(problems.join("\n"));
    for (const o of objects) {
      if (o.kind !== "Namespace" && o.metadata.namespace !== "huginn") {
        throw new Error(`${o.kind} ${o.metadata.name} is in namespace ${o.metadata.namespace}, not huginn`);
      }
    }
  });
}

Deno.test("the schema check rejects a wrongly typed field, so a pass means something", async () => {
  const objects = await kustomizeBuild("overlays/ebpf");
  const agent = structuredClone(find(objects, "DaemonSet", "huginn-ebpf-agent"));
  if (schemaError(agent) !== undefined) throw new Error("the agent DaemonSet should be valid as built");
  agent.spec.template.spec.containers[0].ports[0].containerPort = "9091";
  const error = schemaError(agent);
  if (!error?.includes("containerPort must be integer")) {
    throw new Error(`expected a type error, got ${error}`);
  }
});

Deno.test("each overlay builds a complete stack", async () => {
  const expected: Record<string, string[]> = {
    "overlays/plain": [
      "Namespace/huginn",
      "ConfigMap/huginn-proxy-config",
      "Secret/huginn-tls",
      "Deployment/huginn-proxy",
      "Service/huginn-proxy",
      "Service/huginn-proxy-metrics",
      "HorizontalPodAutoscaler/huginn-proxy",
      "PodDisruptionBudget/huginn-proxy",
      "Deployment/huginn-echo",
      "Service/huginn-echo",
    ],
  };
  expected["overlays/ebpf"] = [...expected["overlays/plain"], "DaemonSet/huginn-ebpf-agent"];
  for (const [dir, wanted] of Object.entries(expected)) {
    const objects = await kustomizeBuild(dir);
    for (const id of wanted) {
      const [kind, name] = id.split("/");
      find(objects, kind, name);
    }
    if (objects.length !== wanted.length) {
      const got = objects.map((o) => `${o.kind}/${o.metadata.name}`).join(", ");
      throw new Error(`manifests/${dir} has ${objects.length} objects, expected ${wanted.length}: ${got}`);
    }
  }
});
