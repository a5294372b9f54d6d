#!/usr/bin/env bash
# Run netscale's checks: ruff, then the test suite. Bootstraps .venv/ if needed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
./scripts/bootstrap.sh
.venv/bin/ruff check src tests benchmarks
exec .venv/bin/python -m pytest -q "$@"
