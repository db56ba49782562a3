#!/usr/bin/env bash
# `isoflop import` on FILES TensorBoard event files of SCALARS scalars each (default 1,000 x
# 10,000: train/loss and train/lr at 5,000 steps, as a trainer logs them), timed and with its
# peak memory; then on a tenth of them, to show memory does not grow with the number of
# files; and, side by side, tensorboard's own EventAccumulator (the reference a user's script
# would use) on REF of the same runs, as ms a run. Writes under a temporary folder.
# Usage: bench/import_tensorboard.sh [FILES] [SCALARS] [REF]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-1000}
scalars=${2:-10000}
ref=${3:-20}
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build -q --release -p isoflop --bin isoflop
cargo build -q --release -p isoflop-core --example write_events
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
target/release/examples/write_events "$tmp/tb" "$files" "$scalars"

echo "== $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
echo "== $files event files, $(du -sh "$tmp/tb" | cut -f1) in all, $scalars scalars each"
measure() { # name, source folder, out
  /usr/bin/time -f "%e %M" -o "$tmp/time" target/release/isoflop import "$2" --out "$3" --tokens-per-step 65536 >/dev/null
  read -r secs kb < "$tmp/time"
  echo "isoflop import, $1: $secs s wall, peak memory $((kb / 1024)) MiB"
}
# Warm the page cache once, so both measure parsing rather than the disk.
cat "$tmp"/tb/*/events* > /dev/null
measure "all $files files" "$tmp/tb" "$tmp/out-all"
rm -rf "$tmp/out-all"
# A tenth of the runs, moved into a folder of their own.
mkdir -p "$tmp/tenth"
for d in $(ls "$tmp/tb" | head -n $((files / 10))); do mv "$tmp/tb/$d" "$tmp/tenth/"; done
measure "a tenth ($((files / 10)) files)" "$tmp/tenth" "$tmp/out-tenth"
if .venv/bin/python -c "import tensorboard" 2>/dev/null; then
  .venv/bin/python bench/import_tensorboard.py "$tmp/tenth" "$ref"
  /usr/bin/time -f "%e" -o "$tmp/time1" target/release/isoflop import $(ls -d "$tmp"/tenth/* | head -n "$ref") --out "$tmp/out-ref" --tokens-per-step 65536 >/dev/null
  echo "isoflop import on the same $ref runs: $(cat "$tmp/time1") s wall (ms a run: $(python3 -c "print(round($(cat "$tmp/time1") / $ref * 1e3, 1))"))"
else
  echo "tensorboard is not installed in .venv (scripts/python-test.sh installs it): no reference"
fi
