#!/usr/bin/env bash
# Recorder.log's overhead on the reference trainer's step at its smallest size
# (bench/recorder_overhead.py), in the project's .venv with torch.
# Usage: bench/recorder_overhead.sh [STEPS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/pip install -q --disable-pip-version-check "maturin>=1.5,<2" >&2
.venv/bin/pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps ./python >&2
# Any bytes do for a timing: a generated text.
data=$(mktemp)
python3 -c "print(''.join(f'verse {i % 31} of chapter {i % 7} says {i % 11}.\n' for i in range(20000)))" > "$data"
echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
.venv/bin/python bench/recorder_overhead.py --data "$data" --steps "${1:-300}" --rounds "${2:-5}"
