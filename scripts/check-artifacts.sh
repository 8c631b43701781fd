#!/usr/bin/env bash
# Rebuilds the committed artifacts (wasm/huginn_fp.wasm, bpf/*.bpf.o) into a scratch folder and fails
# if any differs from the committed bytes, so a reviewer can trust that the binaries match the sources.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
bash "$root/scripts/build-wasm.sh" "$scratch/huginn_fp.wasm"
if cmp -s "$scratch/huginn_fp.wasm" "$root/wasm/huginn_fp.wasm"; then
  echo "check:artifacts: wasm/huginn_fp.wasm reproduces byte for byte"
else
  echo "check:artifacts: wasm/huginn_fp.wasm differs from a fresh build; run 'deno task build:wasm' and commit" >&2
  status=1
fi
mkdir -p "$scratch/bpf"
bash "$root/scripts/build-bpf.sh" "$scratch/bpf"
for obj in "$scratch"/bpf/*.bpf.o; do
  name=bpf/$(basename "$obj")
  if cmp -s "$obj" "$root/$name"; then
    echo "check:artifacts: $name reproduces byte for byte"
  else
    echo "check:artifacts: $name differs from a fresh build; run 'deno task build:bpf' and commit" >&2
    status=1
  fi
done
exit $status
