#!/usr/bin/env bash
# Create or update .venv-zoo/ at the repo root: the environment of the zoo tests (tests/zoo),
# with timm, torchvision and fvcore beside netscale. torch and torchvision are installed
# first, in their own pip step and as a matching pair (a torchvision wheel built for another
# torch fails to import: "operator torchvision::nms does not exist").
# Versions: NETSCALE_ZOO_TORCH_VERSION / NETSCALE_ZOO_TORCHVISION_VERSION.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
VENV="$ROOT/.venv-zoo"
TAG_LOG=bootstrap-zoo
TORCH_VERSION="${NETSCALE_ZOO_TORCH_VERSION:-2.14.1}"
TORCHVISION_VERSION="${NETSCALE_ZOO_TORCHVISION_VERSION:-0.29.1}"

ns_make_venv " (torch + torchvision + timm: a few GB, minutes)"
ns_install_unless_importable "torch, torchvision" \
    "installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION (own step)" \
    "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

# netscale with the zoo extra (timm), pytest, and fvcore (the zoo-wide activation reference)
ns_install_stamped "$(ns_pyproject_hash)" "installing netscale[zoo], pytest and fvcore" \
    -e "$ROOT[zoo]" pytest fvcore
