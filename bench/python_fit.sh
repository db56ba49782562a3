#!/usr/bin/env bash
# bench/python_fit.py in a virtual environment with the package and the references
# (numpy, scipy, pandas, the PyPI chinchilla 0.2.0). Usage: bench/python_fit.sh [--no-references]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --locked -p isoflop >&2
venv=.venv-bench-py
if ! "$venv/bin/python" -c "import maturin, numpy, scipy, pandas, chinchilla" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "maturin>=1.5,<2" numpy scipy pandas "chinchilla==0.2.0"
fi
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./python
echo "== cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$venv/bin/python" bench/python_fit.py "$@"
