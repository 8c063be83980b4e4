#!/usr/bin/env bash
# Create .venv-lava: Python 3.10 with lava-nc 0.10.0 (numpy < 2) for the Lava backend.
# Idempotent: does nothing when the environment already matches requirements-lava.txt.
# Installs nothing of the main environment; the backend's runner reads artifacts with the
# repository's plain numpy + json modules.
#   LAVA_PYTHON=/path/to/python3.10  use this interpreter
#   LAVA_VENV=path                   environment folder (default .venv-lava)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${LAVA_VENV:-.venv-lava}"
REQ="requirements-lava.txt"
STAMP="$VENV/.installed"

# Prints the path of a working Python 3.10 interpreter.
find_python() {
    local exe
    if [ -n "${LAVA_PYTHON:-}" ]; then
        "$LAVA_PYTHON" -c 'import sys; print(sys.executable)' 2>/dev/null; return
    fi
    if exe="$(python3.10 -c 'import sys; print(sys.executable)' 2>/dev/null)"; then echo "$exe"; return 0; fi
    if command -v pyenv >/dev/null 2>&1; then
        if exe="$(PYENV_VERSION=3.10.13 python3.10 -c 'import sys; print(sys.executable)' 2>/dev/null)"; then
            echo "$exe"; return 0
        fi
        for exe in "$(pyenv root)"/versions/3.10*/bin/python3.10; do
            if [ -x "$exe" ]; then echo "$exe"; return 0; fi
        done
    fi
    return 1
}

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && cmp -s "$REQ" "$STAMP" \
    && "$VENV/bin/python" -c "import lava.proc.lif.process" >/dev/null 2>&1; then
    echo "Lava environment ready ($VENV)"
    exit 0
fi

if ! PY="$(find_python)"; then
    echo "error: Python 3.10 not found; lava-nc 0.10.0 needs Python >=3.10,<3.11." >&2
    echo "  install it (e.g. 'pyenv install 3.10.13', or 'apt-get install python3.10 python3.10-venv')" >&2
    echo "  or point LAVA_PYTHON at a python3.10 interpreter, then run 'make lava' again" >&2
    exit 1
fi
VERSION="$($PY -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$VERSION" != "3.10" ]; then
    echo "error: $PY is Python $VERSION; lava-nc 0.10.0 needs Python 3.10 (set LAVA_PYTHON)" >&2
    exit 1
fi

start=$(date +%s)
if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "3.10" ]; then
    rm -rf "$VENV"
fi
[ -x "$VENV/bin/python" ] || $PY -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r "$REQ"
# lava-dl (netx loader, for checking `export --format netx`) without its torch requirement:
# PyPI has only CUDA builds of torch for Python 3.10, and the netx loader does not need it.
"$VENV/bin/python" -m pip install -q --no-deps lava-dl==0.6.0
"$VENV/bin/python" -c "import numpy, lava.proc.lif.process; from lava.magma.core.run_configs import Loihi2SimCfg; assert numpy.__version__ < '2'"
cp "$REQ" "$STAMP"
echo "Lava environment ready ($VENV, lava-nc 0.10.0, $(( $(date +%s) - start )) s)"
