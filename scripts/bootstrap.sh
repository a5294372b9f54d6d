#!/usr/bin/env bash
# Create or update .venv/ at the repo root so that netscale and its tests run.
# On a machine without torch, the CPU build of torch is installed first, in its own pip step,
# so that no multi-GB CUDA build is pulled in by a bare "torch" requirement.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VENV="$ROOT/.venv"
TAG_LOG=bootstrap
TORCH_CPU_VERSION="${NETSCALE_TORCH_VERSION:-2.13.0}"

ns_make_venv ""
ns_install_unless_importable torch \
    "installing the CPU build of torch $TORCH_CPU_VERSION (own step)" \
    "torch==$TORCH_CPU_VERSION"

# Re-install netscale (editable) when pyproject.toml changed. `bootstrap.sh` alone installs
# what netscale needs to run (./run.sh); `bootstrap.sh dev` adds the test tools, Ray and ONNX
# (./test.sh). A dev install also serves ./run.sh.
HASH="$(ns_pyproject_hash)"
if [ "${1:-}" = "dev" ]; then TAG=dev; SPEC="$ROOT[dev]"; else TAG=base; SPEC="$ROOT"; fi
HAVE="$(cat "$VENV/.netscale-installed" 2>/dev/null || true)"
if [ "$TAG" = base ] && [ "$HAVE" = "$HASH dev" ]; then TAG=dev; fi
ns_install_stamped "$HASH $TAG" "installing netscale and its dependencies ($TAG)" -e "$SPEC"
