"""A distributed reference trainer: a small GPT (the shapes ``isoflop plan`` gives) trained
with DistributedDataParallel under torchrun (gloo on CPU, nccl on GPU), recording through
:class:`isoflop.Recorder`, checkpointing and resuming. torch is needed only to run it.

    torchrun --standalone --nproc_per_node 2 -m isoflop.examples.train_ddp \\
        --layers 2 --d-model 64 --heads 2 --context 32 --batch 8 --steps 200 --out runs/r1

A sweep runs it through its ``command`` template (``exec`` it, so a signal reaches it):

    command = "exec torchrun --standalone --nproc_per_node 2 -m isoflop.examples.train_ddp --layers {layers} --d-model {d_model} --heads {heads} --context {context} --batch {batch} --steps {steps} --lr {lr} --seed {seed} --data {data} --out {out}"

The model is nanoGPT's pre-LayerNorm decoder with learned positions, a 4x GELU MLP and an
untied head; the data byte-level text (vocabulary 256). ``--batch`` is the global batch,
split over the ranks; each step's batch depends only on (seed, step), and each rank takes
its rows of it, so a run resumed from its checkpoint continues the curve of an uninterrupted
one. SIGTERM (what torchrun passes on, and what Slurm sends at a time limit) and SIGUSR1 stop
it at the next step: rank 0 writes a checkpoint and the run is recorded as a transient stop,
which the next sweep resumes.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from typing import List, Optional

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from ..recorder import Recorder

CHECKPOINT = "ddp_checkpoint.pt"


class Block(nn.Module):
    def __init__(self, d: int, heads: int, layers: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.fc_proj = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).contiguous().view(b, t, c))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, layers: int, d: int, heads: int, vocab: int, context: int) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(context, d)
        self.blocks = nn.ModuleList(Block(d, heads, layers) for _ in range(layers))
        self.lnf = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        # GPT-2's initialisation: N(0, 0.02), the residual projections N(0, 0.02/sqrt(2L)).
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for b in self.blocks:
            for lin in (b.proj, b.fc_proj):
                nn.init.normal_(lin.weight, std=0.02 / math.sqrt(2 * layers))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for blk in self.blocks:
            x = blk(x)
        logits = self.head(self.lnf(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def corpus(path: Optional[str]) -> torch.Tensor:
    """The corpus as bytes (a text file), or a nanoGPT-style ``.bin`` of u16 tokens."""
    if not path:
        print("error: --data FILE is needed (a text file, or a .bin of u16 tokens)", file=sys.stderr)
        raise SystemExit(2)
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith(".bin"):
        return torch.frombuffer(bytearray(raw), dtype=torch.int16).to(torch.int64) & 0xFFFF
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(torch.int64)


def batch_at(data: torch.Tensor, seed: int, step: int, batch: int, context: int):
    """The global batch of `step`: rows drawn by a generator seeded from (seed, step) only."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, len(data) - context - 1, (batch,), generator=g)
    x = torch.stack([data[s:s + context] for s in starts.tolist()])
    y = torch.stack([data[s + 1:s + 1 + context] for s in starts.tolist()])
    return x, y


def lr_at(step: int, steps: int, peak: float, warmup: int, floor: float = 0.1) -> float:
    """Linear warm-up, then a cosine to ``floor`` x peak (isoflop's default schedule)."""
    if step < warmup:
        return peak * (step + 1) / warmup
    span = max(2, steps - warmup) - 1
    p = min(1.0, (step - warmup) / span)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m isoflop.examples.train_ddp", description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--d-model", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--context", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16, help="global batch (sequences per step)")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--run", default=None)
    ap.add_argument("--log-every", type=int, default=5)
    ap.add_argument("--checkpoint-every", type=int, default=50)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("nccl" if a.device.startswith("cuda") else "gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    if a.batch % world:
        raise SystemExit(f"error: --batch {a.batch} does not split over {world} ranks")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if a.device.startswith("cuda") else "cpu")
    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    model = Gpt(a.layers, a.d_model, a.heads, a.vocab, a.context).to(device)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    start = 0
    ckpt = os.path.join(a.out, CHECKPOINT)
    if os.path.exists(ckpt):
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = int(state["step"])
    ddp = nn.parallel.DistributedDataParallel(model) if distributed else model
    data = corpus(a.data)
    stop = {"signal": 0}

    def on_signal(signum, frame):
        stop["signal"] = signum

    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, on_signal)
    warmup = max(1, min(100, a.steps // 10))
    tokens_per_step = a.batch * a.context
    config = {k: v for k, v in vars(a).items()}
    config.update({"world_size": world, "trainer": "isoflop.examples.train_ddp"})
    with Recorder(a.out, run=a.run, params=params, config=config, graceful=True) as rec:
        step = start
        while step < a.steps:
            lr = lr_at(step, a.steps, a.lr, warmup)
            for g in opt.param_groups:
                g["lr"] = lr
            x, y = batch_at(data, a.seed, step, a.batch, a.context)
            per = a.batch // world
            x, y = x[rank * per:(rank + 1) * per].to(device), y[rank * per:(rank + 1) * per].to(device)
            loss = ddp(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            # The loss of the global batch: the mean over ranks.
            l = loss.detach().clone()
            # Rank 0's Recorder catches the signals there; the other ranks' handler, here.
            asked = stop["signal"] or (rec.stop_requested or 0)
            flag = torch.tensor([float(asked != 0)], device=device)
            if distributed:
                dist.all_reduce(l)
                l /= world
                dist.all_reduce(flag)  # every rank stops at the same step
            if step % a.log_every == 0 or step == a.steps:
                rec.log(step=step, tokens=step * tokens_per_step, loss=float(l), lr=lr)
            stopping = flag.item() > 0
            if rank == 0 and (stopping or step % a.checkpoint_every == 0) and step < a.steps:
                rec.flush()  # the curve first, so it is never behind the checkpoint
                tmp = ckpt + ".tmp"
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, tmp)
                os.replace(tmp, ckpt)
            if stopping:
                stop["signal"] = asked or signal.SIGTERM
                if rank == 0:
                    rec.stop_requested = rec.stop_requested or stop["signal"]
                break
        if rank == 0 and step >= a.steps and os.path.exists(ckpt):
            os.remove(ckpt)
    if distributed:
        dist.destroy_process_group()
    if step < a.steps:
        print(f"stopped at step {step}; checkpoint saved; the next sweep resumes it", file=sys.stderr)
        return 128 + (stop["signal"] or signal.SIGTERM)
    return 0


if __name__ == "__main__":
    sys.exit(main())
