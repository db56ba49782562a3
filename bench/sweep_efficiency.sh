#!/usr/bin/env bash
# Cheaper studies (issue 12), side by side in one run on the default corpus (byte-level KJV):
# 1. Branch quality: 3 sizes x 3 horizons, each point trained three ways: a dedicated cosine
#    run, a wsd cooldown branch (1-sqrt, the last 20%) of a constant-rate trunk, and the same
#    with a linear cooldown. Final held-out losses and their differences.
# 2. Efficiency: the cosine IsoFLOP design of the default study before this change (4
#    budgets x 5 sizes, 3e11 to 7e12), the wsd design of today's default (8 budgets x 5 sizes
#    on one size ladder, branched from shared trunks), and a smaller wsd design (7 budgets,
#    3e11 to 4e12) that spends under 0.6x the cosine design's FLOPs: FLOPs spent, and the
#    exponent a (N_opt grows as C^a) of each approach with its 95% bootstrap interval,
#    resampling runs (the paper's bootstrap) and resampling model sizes (--boot-by size).
# Usage: bench/sweep_efficiency.sh [quality|efficiency] (default: both). Results stay in
# bench/out/sweep_efficiency/ (a rerun resumes: finished runs are kept).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --locked -p isoflop >&2
bin=$PWD/target/release/isoflop
out=$PWD/bench/out/sweep_efficiency
mkdir -p "$out"
what=${1:-both}
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"

plan() { # file, args...
  local f=$1; shift
  "$bin" plan --out "$out/$f" --results "${f%.toml}" --force "$@" 2>&1 | grep -v '^note' | sed 's/^/  /'
}

if [[ $what == both || $what == quality ]]; then
  echo "== 1. branch quality: 3 sizes x 3 horizons (5, 20, 80 tokens per parameter)"
  sizes=(--sizes 3e4..1.2e5 --n-sizes 3 --horizons 3)
  plan q-cosine.toml "${sizes[@]}"
  plan q-wsd.toml --design wsd "${sizes[@]}"
  plan q-linear.toml --design wsd --cooldown-shape linear "${sizes[@]}"
  for f in q-cosine q-wsd q-linear; do
    t0=$(date +%s)
    "$bin" sweep "$out/$f.toml" --jobs 2 2> "$out/$f.log" || { tail -5 "$out/$f.log"; exit 1; }
    echo "  $f: $(( $(date +%s) - t0 )) s; $(tail -1 "$out/$f.log" | cut -c1-120)"
  done
  python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def finals(name):
    d = os.path.join(out, name)
    r = {}
    for run in os.listdir(d):
        s = os.path.join(d, run, "summary.json")
        c = os.path.join(d, run, "config.json")
        if not os.path.exists(s) or run.endswith("-trunk"):
            continue
        s, c = json.load(open(s)), json.load(open(c))
        r[run] = (s["params"], c["tokens"], s["final_eval_loss"])
    return r
cos, wsd, lin = finals("q-cosine"), finals("q-wsd"), finals("q-linear")
print(f"  {'run':<18} {'N':>8} {'D':>10} {'cosine':>8} {'wsd 1-sqrt':>10} {'diff':>7} {'wsd linear':>10} {'diff':>7}")
ds, dl = [], []
for k in sorted(cos, key=lambda k: (cos[k][0], cos[k][1])):
    n, d, lc = cos[k]
    lw, ll = wsd[k][2], lin[k][2]
    ds.append(lw - lc); dl.append(ll - lc)
    print(f"  {k:<18} {n:>8} {d:>10} {lc:>8.4f} {lw:>10.4f} {lw - lc:>+7.4f} {ll:>10.4f} {ll - lc:>+7.4f}")
m = lambda v: sum(v) / len(v)
print(f"  mean difference from cosine: 1-sqrt {m(ds):+.4f} (max |.| {max(map(abs, ds)):.4f}), linear {m(dl):+.4f} (max |.| {max(map(abs, dl)):.4f}) nats")
PY
fi

if [[ $what == both || $what == efficiency ]]; then
  echo "== 2. efficiency: the default study's cosine design against the wsd design"
  plan e-cosine.toml --budgets 5e11,1.2e12,3e12,7e12 --sizes-per-budget 5 --spread 8
  plan e-wsd.toml --design wsd --budgets 3e11,5e11,8e11,1.2e12,2e12,3e12,5e12,7e12 --sizes-per-budget 5 --spread 8
  plan e-wsd-small.toml --design wsd --budgets 3e11,5e11,8e11,1.2e12,2e12,3e12,4e12 --sizes-per-budget 5 --spread 8
  for f in e-cosine e-wsd e-wsd-small; do
    t0=$(date +%s)
    "$bin" run --sweep "$out/$f.toml" --out "$out/$f-study" > "$out/$f-study.txt" 2> "$out/$f-study.log" \
      || { tail -5 "$out/$f-study.log"; exit 1; }
    echo "  $f: $(( $(date +%s) - t0 )) s"
    # The same runs with the bootstrap resampling model sizes (a wsd study's branches of one
    # trunk are not independent runs).
    "$bin" fit "$out/$f-study/runs.csv" --boot-by size --json > "$out/$f-study/fit-by-size.json" 2>/dev/null
  done
  python3 - "$out" <<'PY'
import json, os, re, sys
out = sys.argv[1]
for f in ("e-cosine", "e-wsd", "e-wsd-small"):
    text = open(os.path.join(out, f + ".toml")).read()
    spent = re.search(r"([0-9.e+]+) FLOPs spent for ([0-9.e+]+)", text)
    print(f"  {f:<11} {float(spent.group(1)):.3e} FLOPs spent for {float(spent.group(2)):.3e} represented")
    for fit, unit in (("fit.json", "runs"), ("fit-by-size.json", "sizes")):
        r = json.load(open(os.path.join(out, f + "-study", fit)))
        parts = []
        for k, name in (("approach1", "A1"), ("approach2", "A2"), ("approach3", "A3")):
            a = r[k].get("fitted")
            if not a:
                parts.append(f"{name} -"); continue
            iv = a["intervals"]["params_exponent"]
            e = a["frontier"]["params_exponent"] if "frontier" in a else a["params_exponent"]
            parts.append(f"{name} a={e:.3f} [{iv['lo']:.3f}, {iv['hi']:.3f}] (width {iv['hi'] - iv['lo']:.3f})")
        print(f"    resampling {unit:<5}: " + "; ".join(parts))
PY
fi
