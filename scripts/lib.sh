# Shared by scripts/bootstrap.sh and scripts/bootstrap_zoo.sh, which source it (it is not run
# on its own). Sets ROOT (the repo root). The sourcing script sets VENV (the environment to
# create or update) and TAG_LOG (the prefix of its messages, e.g. "bootstrap").
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ns_log() {
    echo "[$TAG_LOG] $*" >&2
}

# ns_make_venv NOTE: create $VENV with $PYTHON (default python3) and upgrade its pip, unless
# it already has a python; NOTE follows the "creating" message.
ns_make_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        ns_log "creating $VENV$1"
        "${PYTHON:-python3}" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2 || true
    fi
}

# ns_install_unless_importable MODULES MESSAGE PIP_ARGS...: pip install PIP_ARGS into $VENV,
# saying MESSAGE, unless its python imports MODULES (e.g. "torch, torchvision").
ns_install_unless_importable() {
    local modules="$1" message="$2"
    shift 2
    if ! "$VENV/bin/python" -c "import $modules" >/dev/null 2>&1; then
        ns_log "$message"
        "$VENV/bin/python" -m pip install --quiet "$@" >&2
    fi
}

# The stamp of an install: the hash of pyproject.toml (a changed file means reinstall).
ns_pyproject_hash() {
    sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1
}

# ns_install_stamped WANT MESSAGE PIP_ARGS...: pip install PIP_ARGS into $VENV, saying
# MESSAGE, unless $VENV/.netscale-installed holds WANT; then WANT is written there.
ns_install_stamped() {
    local want="$1" message="$2" stamp="$VENV/.netscale-installed"
    shift 2
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        ns_log "$message"
        "$VENV/bin/python" -m pip install --quiet "$@" >&2
        echo "$want" > "$stamp"
    fi
}
