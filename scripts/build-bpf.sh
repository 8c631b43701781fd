#!/usr/bin/env bash
# Compiles every bpf/*.bpf.c into the committed bpf/*.bpf.o, reproducibly: fixed flags, no host paths
# in the debug info (BTF needs -g, and DWARF would otherwise record the clone's location).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
outdir=${1:-$root/bpf}
command -v clang >/dev/null || { echo "build:bpf: clang not found; install clang and libbpf-dev" >&2; exit 1; }
cd "$root/bpf"
shopt -s nullglob
for src in *.bpf.c; do
  obj="$outdir/${src%.c}.o"
  clang -O2 -g -target bpf -D__TARGET_ARCH_x86 \
    -I/usr/include/x86_64-linux-gnu -I. \
    -fdebug-prefix-map="$root"=/huginn -fdebug-compilation-dir=/huginn/bpf \
    -Wall -Werror -c "$src" -o "$obj.tmp"
  # Strip DWARF but keep BTF and BTF.ext: libbpf needs them, nothing else reads the line tables.
  llvm-strip -g "$obj.tmp"
  mv "$obj.tmp" "$obj"
  echo "build:bpf: wrote ${obj#$root/} ($(stat -c %s "$obj") bytes)" >&2
done
