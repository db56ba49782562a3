#!/usr/bin/env bash
# The main job: `isoflop run` on the embedded defaults. Plans the default IsoFLOP study on
# the default corpus (the King James Bible from Debian's bible-kjv), trains it on this
# machine (about 8 minutes on 2 cores; pass --quick for under 2), fits all three
# approaches, and writes the runs, fits, figures and report.html to isoflop-out/.
# Rerunning resumes: finished runs are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --locked -p isoflop >&2
exec target/release/isoflop run "$@"
