#!/usr/bin/env bash
# Run netscale's checks: ruff, mypy --strict (packages in pyproject's [tool.mypy]), the test
# suite in .venv/, then the zoo tests (tests/zoo: timm and torchvision) in .venv-zoo/.
# Bootstraps both environments if needed (.venv-zoo on first use: a few GB, minutes).
#   ./test.sh            everything
#   ./test.sh ARGS...    the main suite only, with pytest ARGS
#   ./test.sh --zoo [ARGS...]   the zoo tests only
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
run_zoo() {
    ./scripts/bootstrap_zoo.sh
    NETSCALE_ZOO_TESTS=1 PYTHONPATH="$PWD/src" .venv-zoo/bin/python -m pytest -q "$@"
}
if [ "${1:-}" = "--zoo" ]; then
    shift
    run_zoo "${@:-tests/zoo}"
    exit
fi
./scripts/bootstrap.sh dev
.venv/bin/ruff check src tests benchmarks
.venv/bin/mypy   # --strict on all of src/netscale (config: pyproject.toml)
if [ "$#" -gt 0 ]; then
    exec .venv/bin/python -m pytest -q "$@"
fi
.venv/bin/python -m pytest -q
run_zoo tests/zoo
