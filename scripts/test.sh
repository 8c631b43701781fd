#!/usr/bin/env bash
# The README's test command: installs what is missing, then runs the whole suite (see tools/test.ts).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=setup.sh
source "$root/scripts/setup.sh"
cd "$root"
exec deno task test "$@"
