#!/usr/bin/env bash
# Builds a pinned kustomize into .tools/bin from the Go module proxy, so the manifest tests render the
# overlays with the real tool. Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

# v5.8.2 is the newest release whose go.mod accepts the Go 1.26 on the machines (v5.8.3 wants 1.27).
KUSTOMIZE_VERSION=v5.8.2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/.tools/bin/kustomize"

if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "$KUSTOMIZE_VERSION"; then
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "install-kustomize: Go is needed to build kustomize" >&2; exit 1; }
printf '\033[1m==> %s\033[0m\n' "building kustomize $KUSTOMIZE_VERSION into .tools/bin" >&2
mkdir -p "$root/.tools/bin"
GOBIN="$root/.tools/bin" CGO_ENABLED=0 GOTOOLCHAIN=local go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
