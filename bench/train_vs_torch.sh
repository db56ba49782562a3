#!/usr/bin/env bash
# Training throughput, side by side with ../shared/bench/torch_gpt_bench.py in one run:
# identical shapes (4 layers, d_model 128, 4 heads, context 128, batch 16, vocab 256),
# threads (2), data (the default corpus's bytes), AdamW, fp32, CPU. Both time the steps after
# 3 warm-up steps. Two interleaved rounds each.
# Usage: bench/train_vs_torch.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-30}
scripts/setup.sh >&2
export PATH="$PWD/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --locked -p isoflop >&2
bin=target/release/isoflop
data=$(ls "${XDG_CACHE_HOME:-$HOME/.cache}"/isoflop/bible-kjv.txt 2>/dev/null || true)
if [ -z "$data" ]; then "$bin" train --params 2e5 --tokens 1000 --out "$(mktemp -d)/warm" --quiet >/dev/null; data="${XDG_CACHE_HOME:-$HOME/.cache}/isoflop/bible-kjv.txt"; fi
echo "== $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); data $data"
total=$(( (steps + 3) * 16 * 128 ))
for round in 1 2; do
  .venv/bin/python ../shared/bench/torch_gpt_bench.py --layers 4 --d-model 128 --heads 4 --ctx 128 --batch 16 --vocab 256 --steps "$steps" --data "$data" --threads 2 | tee /tmp/torch-bench-$round.txt
  out=$(mktemp -d)/run
  "$bin" train --layers 4 --d-model 128 --heads 4 --context 128 --batch 16 --tokens $total --data "$data" --out "$out" \
    --threads 2 --lr 1e-3 --grad-clip 0 --eval-every 0 --checkpoint-every 0 --log-every 1 --quiet > /dev/null
  python3 - "$out/curve.csv" <<'PY' | tee /tmp/isoflop-bench-$round.txt
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
a, b = rows[2], rows[-1]   # after step 3 .. last step
tok = int(b["tokens"]) - int(a["tokens"]); sec = float(b["secs"]) - float(a["secs"])
print(f"RESULT isoflop params={rows[0]['params']} steps={len(rows) - 3}: {1000 * sec / (len(rows) - 3):.1f} ms/step, {tok / sec:.0f} tokens/s")
PY
done
python3 - <<'PY'
import re
t = [float(re.search(r"([0-9]+) tokens/s", open(f"/tmp/torch-bench-{i}.txt").read()).group(1)) for i in (1, 2)]
o = [float(re.search(r"([0-9]+) tokens/s", open(f"/tmp/isoflop-bench-{i}.txt").read()).group(1)) for i in (1, 2)]
print(f"tokens/s  PyTorch {t}  isoflop {o}  ratio isoflop/PyTorch {sum(o) / sum(t):.3f}")
PY
