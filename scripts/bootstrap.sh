#!/usr/bin/env bash
# Create or update .venv/ at the repo root so that netscale and its tests run.
# On a machine without torch, the CPU build of torch is installed first, in its own pip step,
# so that no multi-GB CUDA build is pulled in by a bare "torch" requirement.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
TORCH_CPU_VERSION="${NETSCALE_TORCH_VERSION:-2.13.0}"
STAMP="$VENV/.netscale-installed"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[bootstrap] creating $VENV" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2 || true
fi

if ! "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    echo "[bootstrap] installing the CPU build of torch $TORCH_CPU_VERSION (own step)" >&2
    "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_CPU_VERSION" >&2
fi

# Re-install netscale (editable, with dev extras) when pyproject.toml changed.
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "[bootstrap] installing netscale and its dependencies" >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[dev]" >&2
    echo "$WANT" > "$STAMP"
fi
