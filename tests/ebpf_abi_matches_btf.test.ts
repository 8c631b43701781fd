/**
 * The committed `bpf/capture.bpf.o` agrees with `shared/ebpf_abi.ts`, read from the object's own BTF (as
 * `bpftool` prints it): every struct's size and field offsets and sizes, every map's type, key and value
 * size and capacity, the counter count, the read-only filter global, and the program names.
 */
import assert from "node:assert/strict";
import {
  CAPTURE_FILTER,
  COUNTER_COUNT,
  COUNTERS_MAP,
  FILTER_VARIABLE,
  type Layout,
  PINNED_MAPS,
  PROGRAM_TC,
  PROGRAM_XDP,
  SYN_BUDGET_KEY,
  SYN_BUDGET_VALUE,
  SYN_KEY_V4,
  SYN_KEY_V6,
  SYN_VALUE,
} from "../shared/ebpf_abi.ts";

const OBJECT = new URL("../bpf/capture.bpf.o", import.meta.url).pathname;

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
  vars?: { type_id: number; offset: number; size: number }[];
}

const dump = await new Deno.Command("bpftool", {
  args: ["btf", "dump", "file", OBJECT, "format", "raw", "-j"],
})
  .output();
if (!dump.success) throw new Error(`bpftool failed: ${new TextDecoder().decode(dump.stderr)}`);
const types = new Map<number, BtfType>(
  (JSON.parse(new TextDecoder().decode(dump.stdout)).types as BtfType[]).map((t) => [t.id, t]),
);

function type(id: number): BtfType {
  const t = types.get(id);
  if (!t) throw new Error(`BTF type ${id} missing`);
  return t;
}

/** Follows typedefs and qualifiers to the type that has a layout. */
function resolve(id: number): BtfType {
  const t = type(id);
  return ["TYPEDEF", "CONST", "VOLATILE"].includes(t.kind) ? resolve(t.type_id!) : t;
}

function sizeOf(id: number): number {
  const t = resolve(id);
  if (t.kind === "ARRAY") return t.nr_elems! * sizeOf(t.type_id!);
  if (t.size === undefined) throw new Error(`BTF type ${id} (${t.kind}) has no size`);
  return t.size;
}

function named(kind: string, name: string): BtfType {
  const found = [...types.values()].filter((t) => t.kind === kind && t.name === name);
  assert.equal(found.length, 1, `${kind} ${name} in the object's BTF`);
  return found[0];
}

function datasecVars(name: string): { variable: BtfType; offset: number; size: number }[] {
  return named("DATASEC", name).vars!.map((v) => ({
    variable: type(v.type_id),
    offset: v.offset,
    size: v.size,
  }));
}

for (
  const layout of [
    SYN_KEY_V4,
    SYN_KEY_V6,
    SYN_VALUE,
    CAPTURE_FILTER,
    SYN_BUDGET_KEY,
    SYN_BUDGET_VALUE,
  ] as Layout[]
) {
  Deno.test(`struct ${layout.name} in the object has the size and fields of shared/ebpf_abi.ts`, () => {
    const struct = named("STRUCT", layout.name);
    assert.equal(struct.size, layout.size, "struct size");
    const actual = Object.fromEntries(
      struct.members!.map((m) => [m.name, { offset: m.bits_offset / 8, size: sizeOf(m.type_id) }]),
    );
    assert.deepEqual(actual, layout.fields);
  });
}

/** The `__uint(field, N)` of a BTF-defined map: a pointer to an array of N elements. */
function mapUint(def: BtfType, field: string): number {
  const member = def.members!.find((m) => m.name === field);
  assert.ok(member, `map definition has ${field}`);
  const array = type(type(member.type_id).type_id!);
  assert.equal(array.kind, "ARRAY");
  return array.nr_elems!;
}

/** The size of the `__type(field, T)` of a BTF-defined map: a pointer to T. */
function mapTypeSize(def: BtfType, field: string): number {
  const member = def.members!.find((m) => m.name === field);
  assert.ok(member, `map definition has ${field}`);
  return sizeOf(type(member.type_id).type_id!);
}

Deno.test("the object's maps are exactly the ABI's, with its types, key/value sizes and capacities", () => {
  const maps = datasecVars(".maps").map(({ variable }) => variable);
  assert.deepEqual(maps.map((m) => m.name).sort(), PINNED_MAPS.map((m) => m.name).sort());
  for (const spec of PINNED_MAPS) {
    const def = resolve(maps.find((m) => m.name === spec.name)!.type_id!);
    assert.deepEqual(
      {
        name: spec.name,
        type: mapUint(def, "type"),
        keySize: mapTypeSize(def, "key"),
        valueSize: mapTypeSize(def, "value"),
        maxEntries: mapUint(def, "max_entries"),
      },
      spec,
    );
  }
  assert.equal(COUNTERS_MAP.maxEntries, COUNTER_COUNT);
});

Deno.test("the object's only read-only global is the capture filter, at offset 0 of .rodata", () => {
  const vars = datasecVars(".rodata");
  assert.equal(vars.length, 1);
  assert.equal(vars[0].variable.name, FILTER_VARIABLE);
  assert.equal(vars[0].offset, 0);
  assert.equal(vars[0].size, CAPTURE_FILTER.size);
  assert.equal(resolve(vars[0].variable.type_id!).name, CAPTURE_FILTER.name);
});

Deno.test("the object has the XDP and tc programs the agent attaches", () => {
  named("FUNC", PROGRAM_XDP);
  named("FUNC", PROGRAM_TC);
});
