#!/usr/bin/env bash
# Make Fashion-MNIST available for the quickstart (./run.sh calls this before it).
#
# Found (netscale looks in $NETSCALE_DATA, ~/.cache/netscale/data, ./data, /usr/share/datasets):
# nothing to do. Missing, running as root with apt-get: installs the Debian/Ubuntu package
# dataset-fashion-mnist, saying so (NETSCALE_NO_APT=1 opts out). Otherwise: prints the one
# command to get it; the quickstart then falls back to scikit-learn's digits, labelled a
# SMOKE TEST whose accuracy verdict is not meaningful. Never fails the run.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${NETSCALE_PY:-$ROOT/.venv/bin/python}"
CMD="sudo apt-get install dataset-fashion-mnist"

have_data() {
    "$PY" -c 'import sys
from netscale.study.quickstart import default_dataset
sys.exit(0 if default_dataset() == "fashion-mnist" else 1)' >/dev/null 2>&1
}

if have_data; then
    exit 0
fi
if [ "${NETSCALE_NO_APT:-0}" != "1" ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "[data] Fashion-MNIST not found: installing the package dataset-fashion-mnist" \
         "(apt-get update && apt-get install -y dataset-fashion-mnist; NETSCALE_NO_APT=1 skips this)" >&2
    if apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y dataset-fashion-mnist >&2 \
            && have_data; then
        echo "[data] installed Fashion-MNIST (/usr/share/datasets/fashion-mnist)" >&2
        exit 0
    fi
    echo "[data] installing dataset-fashion-mnist failed (see above)" >&2
fi
echo "[data] Fashion-MNIST not found: the quickstart falls back to scikit-learn's digits," \
     "a SMOKE TEST whose accuracy verdict is not meaningful. Get the real data with: $CMD" >&2
exit 0
