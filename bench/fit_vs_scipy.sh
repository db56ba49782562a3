#!/usr/bin/env bash
# Approach 3 speed, side by side with the scipy reference in one run, same data: Epoch's
# 245 points with the 5 highest losses dropped; isoflop's default solver (variable
# projection, no starts) and its L-BFGS from the paper's 4,500-start grid, which scipy runs.
# Usage: bench/fit_vs_scipy.sh   (needs ../shared/bench and ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=../shared
data=$shared/data/epoch_chinchilla_svg_extracted_data.csv
[ -f "$data" ] || { echo "bench: $data is absent" >&2; exit 1; }
if ! .venv-bench/bin/python -c "import numpy, scipy, pandas" 2>/dev/null; then
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q --disable-pip-version-check numpy scipy pandas
fi
scripts/setup.sh >&2
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --locked -p isoflop >&2
bin=target/release/isoflop
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.3f}')"; }

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# The Approach 3 kernel is chosen at run time: AVX-512F, else AVX2+FMA, else portable.
if grep -qw avx512f /proc/cpuinfo; then kernel=AVX-512; elif grep -qw avx2 /proc/cpuinfo; then kernel=AVX2+FMA; else kernel=portable; fi
echo "== cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) (family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | xargs)); objective kernel: $kernel"
# best_of3 OUT ENV... -- ARGS: the best wall time of three `isoflop fit DATA ARGS` runs with
# the environment ENV (stdout to OUT), in seconds.
best_of3() {
  local out=$1; shift; local env=(); while [ "$1" != -- ]; do env+=("$1"); shift; done; shift
  local best=1e9 t0 t1
  for rep in 1 2 3; do
    t0=$(now); env "${env[@]}" "$bin" fit "$data" --approach 3 --drop-top 5 --boot 0 "$@" > "$out"; t1=$(now)
    best=$(python3 -c "print(min($t1 - $t0, $best))")
  done
  python3 -c "print(f'{$best:.3f}')"
}
for threads in 1 2; do
  best=$(best_of3 /tmp/isoflop-bench-vp.txt RAYON_NUM_THREADS=$threads -- --solver vpnls)
  echo "isoflop variable projection (--solver vpnls, the default), $threads thread(s): best of 3 = ${best}s"
  eval "vp_$threads=$best"
done
grep -E "objective" /tmp/isoflop-bench-vp.txt
"$bin" fit "$data" --approach 3 --drop-top 5 --boot 0 --solver vpnls --json | python3 -c "
import json, sys
d = json.load(sys.stdin)['approach3']['fitted']['diagnostics']
print(f\"  isoflop vpnls: projections = {d['projections']}, L-BFGS evaluations = {d['evaluations']}\")"
for threads in 1 2; do
  best=$(best_of3 /tmp/isoflop-bench-fit.txt RAYON_NUM_THREADS=$threads -- --solver lbfgs)
  echo "isoflop 4500-start fit, $threads thread(s): best of 3 = ${best}s"
  eval "ours_$threads=$best"
done
grep -E "objective" /tmp/isoflop-bench-fit.txt
if [ "$kernel" = AVX-512 ]; then
  best=$(best_of3 /dev/null ISOFLOP_KERNEL=avx2 -- --solver lbfgs)
  echo "isoflop 4500-start fit with the AVX2+FMA kernel instead (ISOFLOP_KERNEL=avx2), 2 threads: best of 3 = ${best}s"
fi
"$bin" fit "$data" --approach 3 --drop-top 5 --boot 0 --solver lbfgs --json | python3 -c "
import json, sys
d = json.load(sys.stdin)['approach3']['fitted']['diagnostics']
print(f\"  isoflop L-BFGS: iterations = {d['iterations']}, evaluations = {d['evaluations']}\")"
t0=$(now); "$bin" fit "$data" --approach 3 --drop-top 5 --boot 4000 --solver lbfgs > /tmp/isoflop-bench-boot.txt; t1=$(now)
echo "isoflop 4500-start fit + 4000-resample bootstrap, 2 threads: $(secs "$t0" "$t1")s"
grep -E "alpha|beta  |intervals" /tmp/isoflop-bench-boot.txt | head -4

for mode in default tight; do
  flag=""; [ $mode = tight ] && flag="--tight"
  t0=$(now); .venv-bench/bin/python "$shared/bench/approach3_scipy.py" --csv "$data" --exclude-top 5 --paper-grid --boot 0 $flag > /tmp/scipy-$mode.txt; t1=$(now)
  s=$(secs "$t0" "$t1")
  wall=$(grep -oE "wall time: [0-9.]+ s" /tmp/scipy-$mode.txt | head -1 | grep -oE "[0-9.]+")
  echo "scipy L-BFGS-B ($mode tolerances), 1 process: fit ${wall}s (process ${s}s)"
  grep -E "final objective" /tmp/scipy-$mode.txt
  echo "  ratio scipy/isoflop L-BFGS: $(python3 -c "print(f'{$wall/$ours_1:.0f}x (1 thread vs 1 process), {$wall/$ours_2:.0f}x (isoflop on 2 threads)')")"
  echo "  ratio scipy/isoflop vpnls: $(python3 -c "print(f'{$wall/$vp_1:.0f}x (1 thread vs 1 process), {$wall/$vp_2:.0f}x (isoflop on 2 threads)')")"
done
