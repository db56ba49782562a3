"""The reference for bench/import_tensorboard.sh: tensorboard's own EventAccumulator (what a
user's script would call) reading every scalar of the first N runs of a folder of runs."""
import sys
import time
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

root, n = Path(sys.argv[1]), int(sys.argv[2])
runs = sorted(p for p in root.iterdir() if p.is_dir())[:n]
t = time.perf_counter()
count = 0
for r in runs:
    ea = EventAccumulator(str(r), size_guidance={"scalars": 0})
    ea.Reload()
    for tag in ea.Tags()["scalars"]:
        count += len(ea.Scalars(tag))
dt = time.perf_counter() - t
print(f"tensorboard EventAccumulator: {len(runs)} runs, {count} scalars in {dt:.2f} s ({dt / len(runs) * 1e3:.1f} ms a run)")
