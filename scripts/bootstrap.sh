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

# Re-install netscale (editable) when pyproject.toml changed. `bootstrap.sh` alone installs
# what netscale needs to run (./run.sh); `bootstrap.sh dev` adds the test tools, Ray and ONNX
# (./test.sh). A dev install also serves ./run.sh.
HASH="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
HAVE="$(cat "$STAMP" 2>/dev/null || true)"
if [ "${1:-}" = "dev" ]; then TAG=dev; SPEC="$ROOT[dev]"; else TAG=base; SPEC="$ROOT"; fi
case "$HAVE" in
    "$HASH dev") NEED=0 ;;
    "$HASH base") if [ "$TAG" = base ]; then NEED=0; else NEED=1; fi ;;
    *) NEED=1 ;;
esac
if [ "$NEED" = 1 ]; then
    echo "[bootstrap] installing netscale and its dependencies ($TAG)" >&2
    "$VENV/bin/python" -m pip install --quiet -e "$SPEC" >&2
    echo "$HASH $TAG" > "$STAMP"
fi
