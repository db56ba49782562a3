#!/usr/bin/env bash
# The main job on the embedded default data: fit all approaches to the Chinchilla points
# that ship in data/, save the laws, and predict the optimal model for Gopher's budget.
# Outputs land in isoflop-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --locked -p isoflop >&2
bin=target/release/isoflop
out=isoflop-out
mkdir -p "$out"
"$bin" fit data/chinchilla_points_kyo_takano.csv --budgets chinchilla --out "$out/law.json" | tee "$out/fit.txt"
"$bin" fit data/chinchilla_points_kyo_takano.csv --budgets chinchilla --json > "$out/fit.json"
echo
echo "Figures and report:"
"$bin" plot data/chinchilla_points_kyo_takano.csv --budgets chinchilla --target-flops 5.76e23 --out "$out"
echo
echo "Optimal model for 5.76e23 FLOPs (Gopher's budget):"
"$bin" allocate --flops 5.76e23 --law "$out/law.json" | tee "$out/allocation.txt"
