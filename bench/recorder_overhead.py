"""Recorder.log's cost against the reference trainer's step at its smallest size (the
smallest model `isoflop plan` gives: 1 layer, d_model 32; context 64, batch 16; one process,
one thread). Times the same steps three ways, interleaved, in one process: the step alone,
the step plus Recorder.log every step, and plus Recorder.log every 5 steps (the reference
trainer's default). Prints each mean step time and the overhead as a ratio."""

import argparse
import statistics
import sys
import tempfile
import time

import torch

from isoflop import Recorder
from isoflop.examples.train_ddp import Gpt, batch_at, corpus, lr_at

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--steps", type=int, default=300)
ap.add_argument("--rounds", type=int, default=5)
a = ap.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)
data = corpus(a.data)
model = Gpt(1, 32, 1, 256, 64)
opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
params = sum(p.numel() for p in model.parameters())


def steps(n, rec, every):
    t0 = time.perf_counter()
    for s in range(n):
        x, y = batch_at(data, 0, s, 16, 64)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        l = float(loss.detach())
        if rec is not None and (s + 1) % every == 0:
            rec.log(step=s + 1, tokens=(s + 1) * 1024, loss=l, lr=lr_at(s, n, 2e-3, 10))
    return (time.perf_counter() - t0) / n


steps(30, None, 1)  # warm-up
times = {"none": [], "every 1": [], "every 5": []}
for r in range(a.rounds):
    times["none"].append(steps(a.steps, None, 1))
    for every in (1, 5):
        with tempfile.TemporaryDirectory() as d, Recorder(f"{d}/run", params=params) as rec:
            times[f"every {every}"].append(steps(a.steps, rec, every))
base = statistics.median(times["none"])
print(f"== reference trainer, {params} parameters, {a.steps} steps x {a.rounds} rounds, median step time")
for k, v in times.items():
    m = statistics.median(v)
    print(f"RESULT {k:>8}: {1e3 * m:.3f} ms/step, {m / base:.4f}x the step alone")

# The call alone, without training: what each log adds to a step, with less noise than the
# difference of two timed loops.
with tempfile.TemporaryDirectory() as d, Recorder(f"{d}/run", params=params) as rec:
    n = 20000
    t0 = time.perf_counter()
    for s in range(n):
        rec.log(step=s + 1, tokens=(s + 1) * 1024, loss=3.0, lr=1e-3)
    per = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    rec.flush()
    flush = time.perf_counter() - t0
print(f"RESULT one log call: {1e6 * per:.1f} us = {per / base:.4f} of a step (every 5 steps: {per / 5 / base:.4f})")
print(f"RESULT rewriting the curve of {n} rows (every 5 s): {1e3 * flush:.1f} ms = {flush / 5:.4f} of the time")
