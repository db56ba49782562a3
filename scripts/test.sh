#!/usr/bin/env bash
# The test command: installs what the tests need (scripts/setup.sh: the torch wheel that the
# training crate links, Debian's bible-kjv and chromium), starts a single-node Slurm where
# it can (root; the Slurm tests skip, saying so, where it cannot), then builds and runs every
# test of the workspace, checks the libraries' rustdoc, then builds the Python package and runs its pytest suite. Tests that read ../shared/data skip, saying so, where it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
bash scripts/slurm-local.sh start || echo "test: no local Slurm; the Slurm executor's test will skip" >&2
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo test --workspace --release --locked 2>&1
# The rustdoc of the library crates builds without a warning: no link to a moved or private item.
RUSTDOCFLAGS="-D warnings" cargo doc --release --locked --no-deps -p isoflop-core -p isoflop-fit \
  -p isoflop-plot -p isoflop-sweep -p isoflop-study -p isoflop-train 2>&1
bash scripts/python-test.sh 2>&1
