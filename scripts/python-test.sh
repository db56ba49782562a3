#!/usr/bin/env bash
# The Python package's tests: builds python/ (PyO3 + maturin; the wheel never loads
# libtorch) into the virtual environment .venv-py and runs its pytest suite. Called by
# scripts/test.sh after the Rust tests (which build the `isoflop` binary the suite compares
# with).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-py
if ! "$venv/bin/python" -c "import maturin, pytest, numpy, pandas" 2>/dev/null; then
  echo "python-test: creating $venv with maturin, pytest, numpy, pandas" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "maturin>=1.5,<2" pytest numpy pandas
fi
# Built with the venv's maturin (on PATH for pip), not an isolated build environment (no
# download per run).
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./python
"$venv/bin/python" -m pytest python/tests -q -p no:cacheprovider
