"""Approach 3 from Python, side by side in one run: `isoflop.fit` (this package) against the
`isoflop` command line on the same data, scipy's L-BFGS-B reference
(../shared/bench/approach3_scipy.py) and the PyPI `chinchilla` package
(../shared/bench/kyo_chinchilla_fit.py), on Epoch's 240 points and the paper's 4,500-start
grid. Run by bench/python_fit.sh."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import isoflop

root = Path(__file__).resolve().parents[1]
shared = root.parent / "shared"
data = shared / "data" / "epoch_chinchilla_svg_extracted_data.csv"
cli = root / "target" / "release" / "isoflop"


def best(f, n=3):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


import pandas as pd

df = pd.read_csv(data)
t_py, fit = best(lambda: isoflop.fit(df, drop_top=5, boot=0, approaches=[3]))
a3 = fit.to_dict()["approach3"]["fitted"]
print(f"isoflop.fit (Python, DataFrame in): best of 3 = {t_py:.3f} s, objective {a3['objective']:.9e}")
t_cli, _ = best(lambda: subprocess.run([str(cli), "fit", str(data), "--approach", "3", "--drop-top", "5", "--boot", "0"], capture_output=True, check=True))
print(f"isoflop fit (command line, process included): best of 3 = {t_cli:.3f} s")
print(f"  Python / command line: {t_py / t_cli:.2f}x")
if "--no-references" not in sys.argv:
    o = subprocess.run([sys.executable, str(shared / "bench" / "approach3_scipy.py"), "--csv", str(data), "--exclude-top", "5", "--paper-grid", "--boot", "0"], capture_output=True, text=True)
    m = re.search(r"wall time: ([0-9.]+) s", o.stdout)
    obj = re.search(r"final objective = ([0-9.e-]+)", o.stdout)
    if m:
        t = float(m.group(1))
        print(f"scipy L-BFGS-B (default tolerances, 1 process): {t:.1f} s, objective {obj.group(1) if obj else '?'}: isoflop.fit is {t / t_py:.0f}x faster")
    else:
        print("scipy reference did not report a time:", o.stderr[-500:])
    o = subprocess.run([sys.executable, str(shared / "bench" / "kyo_chinchilla_fit.py"), "par"], capture_output=True, text=True)
    m = re.search(r"RESULT chinchilla 0\.2\.0: (.*) ([0-9.]+) s", o.stdout)
    if m:
        t = float(m.group(2))
        print(f"PyPI chinchilla 0.2.0 (2 processes): {t:.1f} s, {m.group(1)}: isoflop.fit is {t / t_py:.0f}x faster")
    else:
        print("chinchilla package did not report a time:", (o.stderr or o.stdout)[-500:])
print(f"machine: {os.cpu_count()} cores")
