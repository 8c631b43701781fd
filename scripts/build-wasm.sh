#!/usr/bin/env bash
# Builds wasm/huginn_fp.wasm with Debian's rustc/cargo (the only toolchain here with a wasm32 std).
# Reproducible: fixed profile, no incremental state, source paths remapped so the clone's location
# never reaches the binary.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/wasm/huginn_fp.wasm}
cargo=/usr/bin/cargo
[ -x "$cargo" ] || { echo "build:wasm: $cargo not found; install Debian's cargo and libstd-rust-dev-wasm32" >&2; exit 1; }
target_dir=$(mktemp -d)
trap 'rm -rf "$target_dir"' EXIT
cd "$root/wasm"
CARGO_HOME=${CARGO_HOME:-$target_dir/cargo-home} \
RUSTC=/usr/bin/rustc \
RUSTFLAGS="--remap-path-prefix=$root=/huginn --remap-path-prefix=$HOME=/home -C target-cpu=generic" \
  "$cargo" build --quiet --offline --release --locked --target wasm32-unknown-unknown --target-dir "$target_dir"
cp "$target_dir/wasm32-unknown-unknown/release/huginn_fp.wasm" "$out"
echo "build:wasm: wrote ${out#$root/} ($(stat -c %s "$out") bytes)" >&2
