#!/usr/bin/env bash
# The Python package's tests: builds python/ (PyO3 + maturin; the extension never links
# libtorch) into the virtual environment .venv that scripts/setup.sh made with torch (the
# recorder's tests train with torch, under torchrun, and with transformers.Trainer), adds
# what the tests need (maturin, pytest, numpy, pandas, transformers and accelerate), and runs the pytest
# suite (the importers' tests also need wandb and tensorboard, used offline). Called by scripts/test.sh after the Rust tests (which build the `isoflop` binaries
# the suite compares with and drives).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  scripts/setup.sh
fi
if ! "$venv/bin/python" -c "import maturin, pytest, numpy, pandas, transformers, accelerate, wandb, tensorboard" 2>/dev/null; then
  echo "python-test: adding maturin, pytest, numpy, pandas, transformers, accelerate, wandb, tensorboard to $venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "maturin>=1.5,<2" pytest numpy pandas "transformers>=4.40,<5" "accelerate>=0.26" "wandb>=0.16,<1" "tensorboard>=2.14,<3"
fi
# Built with the venv's maturin (on PATH for pip), not an isolated build environment (no
# download per run).
export PATH="$PWD/$venv/bin:$PATH"
"$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./python
"$venv/bin/python" -m pytest python/tests -q -p no:cacheprovider
