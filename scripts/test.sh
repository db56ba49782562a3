#!/usr/bin/env bash
# The test command: installs what the tests need (scripts/setup.sh: the torch wheel that the
# training crate links, Debian's bible-kjv and chromium), starts a single-node Slurm where
# it can (root; the Slurm tests skip, saying so, where it cannot), then builds and runs every
# test of the workspace, then builds the Python package and runs its pytest suite. Tests that read ../shared/data skip, saying so, where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bash scripts/slurm-local.sh start || echo "test: no local Slurm; the Slurm executor's test will skip" >&2
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo test --workspace --release --locked 2>&1
bash scripts/python-test.sh 2>&1
