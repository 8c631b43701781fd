#!/usr/bin/env bash
# The README's start command: installs what is missing, then starts the local stack (see tools/start.ts).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=setup.sh
source "$root/scripts/setup.sh"
cd "$root"
exec deno task start "$@"
