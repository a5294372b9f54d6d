#!/usr/bin/env bash
# netscale's main job (see README): bootstraps .venv/ if needed, then runs the quickstart.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/bootstrap.sh
if [ "$#" -gt 0 ]; then
    exec .venv/bin/netscale "$@"
fi
status=0
.venv/bin/netscale quickstart || status=$?
echo "To use 'netscale' directly: source .venv/bin/activate (then e.g. netscale models, netscale report studies/quickstart)"
exit "$status"
