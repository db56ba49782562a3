#!/usr/bin/env bash
# Approach 3 on big tables (issue 10, item 14): random (N, D) from a known law,
# L = (1.8 + 480/N^0.34 + 2100/D^0.37)(1 + 0.01 z), the paper's 4,500-start grid.
# Side by side in one run: the screened procedure (the default above 20,000 points: every
# start on a seeded 4,096-point subsample, the distinct optima polished on all points, an
# m-out-of-n bootstrap of 20,000-point resamples) and the full procedure (--screen off,
# every start on every point), on 1e5 points; the screened one alone on 1e6 (the full one
# did not finish there in 10 minutes before this change).
# Usage: bench/big_table.sh [--no-full]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --locked -p isoflop >&2
bin=$PWD/target/release/isoflop
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp" <<'PY'
import random, sys
for n, name in [(100_000, "big1e5.csv"), (1_000_000, "big1e6.csv")]:
    r = random.Random(7)
    with open(f"{sys.argv[1]}/{name}", "w") as f:
        f.write("params,tokens,loss\n")
        for _ in range(n):
            N = 10 ** r.uniform(6, 10); D = 10 ** r.uniform(8, 12)
            L = (1.8 + 480 / N ** 0.34 + 2100 / D ** 0.37) * (1 + 0.01 * r.gauss(0, 1))
            f.write(f"{N:.6g},{D:.6g},{L:.6g}\n")
PY
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # label, file, extra args...
  local label=$1 file=$2; shift 2
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" fit "$tmp/$file" --approach 3 "$@" > "$tmp/out.txt" 2> "$tmp/err.txt"
  t1=$(date +%s.%N)
  printf '%-44s %7.1f s   %s\n' "$label" "$(python3 -c "print($t1 - $t0)")" \
    "$(grep -oE 'objective [0-9.e+-]+' "$tmp/out.txt")"
  grep -E '^  (E|alpha|beta) ' "$tmp/out.txt" | sed 's/^/      /'
}
run "1e5 points, screened, boot 1000" big1e5.csv
run "1e5 points, screened, boot 0" big1e5.csv --boot 0
if [ "${1:-}" != --no-full ]; then
  run "1e5 points, full procedure (--screen off), boot 0" big1e5.csv --screen off --boot 0
fi
run "1e6 points, screened, boot 1000" big1e6.csv
run "1e6 points, screened, boot 0" big1e6.csv --boot 0
