#!/usr/bin/env bash
# netscale's main job (see README): bootstraps .venv/ if needed, makes sure Fashion-MNIST is
# there (installs the Debian package as root with apt; NETSCALE_NO_APT=1 opts out), then runs
# the quickstart (3 seeds; it ends with the verdict in a few lines, and writes it as JSON to
# studies/quickstart/verdict.json).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/bootstrap.sh
if [ "$#" -gt 0 ]; then
    exec .venv/bin/netscale "$@"
fi
./scripts/ensure_data.sh
status=0
.venv/bin/netscale quickstart || status=$?
echo "To use 'netscale' directly: source .venv/bin/activate (then e.g. netscale models, netscale report studies/quickstart)"
exit "$status"
