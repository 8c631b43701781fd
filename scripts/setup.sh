#!/usr/bin/env bash
# Installs what the project needs on Debian 12, idempotently: the apt packages for building the artifacts,
# running the eBPF agent and the reference tools the tests compare against, and a pinned Deno from npm.
# Sourced by start.sh and test.sh; safe to run again (it only installs what is missing).
set -euo pipefail

DENO_VERSION=2.9.6
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

APT_PACKAGES=(
  ca-certificates curl openssl xxd iproute2 procps python3 util-linux
  # WASM build: Debian's rustc/cargo ship the wasm32 standard library.
  rustc cargo libstd-rust-dev-wasm32 lld-14
  # BPF build and load.
  clang llvm libbpf1 libbpf-dev bpftool
  # Reference tools and real clients used by the tests and benchmarks.
  p0f tshark tcpdump nghttp2-client nginx-light wrk
)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Deno comes from the npm registry, so npm is needed; any Node.js that ships one will do.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]} (run as root, or install them with apt-get)"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer for it.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

deno_bin="$root/.tools/node_modules/.bin/deno"
if ! [ -x "$deno_bin" ] || [ "$("$deno_bin" --version 2>/dev/null | head -n1 | cut -d' ' -f2)" != "$DENO_VERSION" ]; then
  say "installing Deno $DENO_VERSION from the npm registry into .tools/"
  mkdir -p "$root/.tools"
  npm install --silent --no-audit --no-fund --prefix "$root/.tools" "deno@$DENO_VERSION" >&2
fi
# kustomize renders the manifests in the tests; it is built from the Go module proxy with the machine's Go.
bash "$root/scripts/install-kustomize.sh"
export PATH="$root/.tools/node_modules/.bin:$root/.tools/bin:$PATH"
export DENO_NO_UPDATE_CHECK=1
