#!/usr/bin/env bash
# Create or update .venv-zoo/ at the repo root: the environment of the zoo tests (tests/zoo),
# with timm, torchvision and fvcore beside netscale. torch and torchvision are installed
# first, in their own pip step and as a matching pair (a torchvision wheel built for another
# torch fails to import: "operator torchvision::nms does not exist").
# Versions: NETSCALE_ZOO_TORCH_VERSION / NETSCALE_ZOO_TORCHVISION_VERSION.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-zoo"
PY="${PYTHON:-python3}"
TORCH_VERSION="${NETSCALE_ZOO_TORCH_VERSION:-2.14.1}"
TORCHVISION_VERSION="${NETSCALE_ZOO_TORCHVISION_VERSION:-0.29.1}"
STAMP="$VENV/.netscale-installed"

if [ ! -x "$VENV/bin/python" ]; then
    echo "[bootstrap-zoo] creating $VENV (torch + torchvision + timm: a few GB, minutes)" >&2
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2 || true
fi

if ! "$VENV/bin/python" -c "import torch, torchvision" >/dev/null 2>&1; then
    echo "[bootstrap-zoo] installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION" \
         "(own step)" >&2
    "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" \
        "torchvision==$TORCHVISION_VERSION" >&2
fi

# netscale with the zoo extra (timm), pytest, and fvcore (the zoo-wide activation reference)
WANT="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
    echo "[bootstrap-zoo] installing netscale[zoo], pytest and fvcore" >&2
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[zoo]" pytest fvcore >&2
    echo "$WANT" > "$STAMP"
fi
