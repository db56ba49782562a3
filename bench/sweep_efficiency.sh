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
#    A fourth design, 9 budgets over the same range as the small one (0.59x), is trained too.
#    With SEEDS=K each design is trained at seeds 0 to K - 1 (`plan --seeds K`) and each
#    seed is fitted alone, then the widths averaged: one seed's widths move by about 0.1.
# Usage: [SEEDS=K] bench/sweep_efficiency.sh [quality|efficiency] (default: both, one seed).
# Results stay in bench/out/sweep_efficiency/ (a rerun resumes: finished runs are kept).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >&2
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --locked -p isoflop >&2
bin=$PWD/target/release/isoflop
out=$PWD/bench/out/sweep_efficiency
mkdir -p "$out"
what=${1:-both}
seeds=${SEEDS:-1}
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
  echo "== 2. efficiency: the default study's cosine design against the wsd design, at $seeds seed(s)"
  each=(--sizes-per-budget 5 --spread 8 --seeds "$seeds")
  plan e-cosine.toml --budgets 5e11,1.2e12,3e12,7e12 "${each[@]}"
  plan e-wsd.toml --design wsd --budgets 3e11,5e11,8e11,1.2e12,2e12,3e12,5e12,7e12 "${each[@]}"
  plan e-wsd-small.toml --design wsd --budgets 3e11,5e11,8e11,1.2e12,2e12,3e12,4e12 "${each[@]}"
  plan e-wsd-9.toml --design wsd --budgets 3e11,4e11,6e11,8e11,1.2e12,1.6e12,2.4e12,3.2e12,4e12 "${each[@]}"
  for f in e-cosine e-wsd e-wsd-small e-wsd-9; do
    t0=$(date +%s)
    "$bin" run --sweep "$out/$f.toml" --out "$out/$f-study" > "$out/$f-study.txt" 2> "$out/$f-study.log" \
      || { tail -5 "$out/$f-study.log"; exit 1; }
    echo "  $f: $(( $(date +%s) - t0 )) s"
  done
  # Each seed's runs fitted alone (a replicate's ids end in -s1, -s2, ...), resampling runs
  # (the paper's bootstrap) and model sizes (a wsd study's branches of one trunk are not
  # independent runs); then each width's mean over the seeds.
  python3 - "$out" "$bin" "$seeds" <<'PY'
import csv, json, os, re, subprocess, sys
out, bin_, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def fit(path, unit):
    r = json.loads(subprocess.run([bin_, "fit", path, "--json", "--boot-by", unit],
                                  capture_output=True, text=True, check=True).stdout)
    res = []
    for k in ("approach1", "approach2", "approach3"):
        a = r[k].get("fitted")
        if not a:
            res.append(None); continue
        iv = a["intervals"]["params_exponent"]
        e = a["frontier"]["params_exponent"] if "frontier" in a else a["params_exponent"]
        res.append((e, iv["lo"], iv["hi"]))
    return res
def replicate(run):
    m = re.search(r"-s(\d+)$", run)
    return int(m.group(1)) if m else 0
for f in ("e-cosine", "e-wsd", "e-wsd-small", "e-wsd-9"):
    text = open(os.path.join(out, f + ".toml")).read()
    spent = re.search(r"([0-9.e+]+) FLOPs spent for ([0-9.e+]+)", text)
    print(f"  {f:<11} {float(spent.group(1)) / seeds:.3e} FLOPs spent for {float(spent.group(2)) / seeds:.3e} represented, per seed")
    rows = list(csv.DictReader(open(os.path.join(out, f + "-study", "runs.csv"))))
    for unit in ("run", "size"):
        widths = []
        for k in range(seeds):
            path = os.path.join(out, f"{f}-study", f"seed-{k}.csv")
            with open(path, "w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
                w.writeheader()
                w.writerows(r for r in rows if replicate(r["run"]) == k)
            res = fit(path, unit)
            widths.append([x and x[2] - x[1] for x in res])
            parts = [f"A{i + 1} -" if x is None else f"A{i + 1} a={x[0]:.3f} [{x[1]:.3f}, {x[2]:.3f}] (width {x[2] - x[1]:.3f})" for i, x in enumerate(res)]
            print(f"    seed {k}, resampling {unit}s: " + "; ".join(parts))
        means = [None if any(w[i] is None for w in widths) else sum(w[i] for w in widths) / seeds for i in range(3)]
        print(f"    mean width over {seeds} seed(s), resampling {unit}s: " + " / ".join("-" if m is None else f"{m:.3f}" for m in means))
PY
fi
