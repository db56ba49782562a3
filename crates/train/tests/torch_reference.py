#!/usr/bin/env python3
"""PyTorch reference for isoflop's trainer: the same GPT, fed isoflop's initial weights and
batches, trained with torch.optim.AdamW and clip_grad_norm_ at isoflop's learning rates.
Prints the losses of each step as a JSON list.

    python torch_reference.py DIR    # DIR holds manifest.json, weights.bin, batches.json
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

d = sys.argv[1]
man = json.load(open(os.path.join(d, "manifest.json")))
cfg = man["config"]
L, C, H, T, V = cfg["layers"], cfg["d_model"], cfg["heads"], cfg["context"], cfg["vocab"]
torch.set_num_threads(1)


class Block(nn.Module):
    def __init__(s):
        super().__init__()
        s.ln1, s.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        s.qkv, s.proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        s.fc, s.fc_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)
        s.register_buffer("mask", torch.full((T, T), float("-inf")).triu(1))

    def forward(s, x):
        b, t, c = x.shape
        q, k, v = s.qkv(s.ln1(x)).split(c, 2)
        q, k, v = [z.view(b, t, H, c // H).transpose(1, 2) for z in (q, k, v)]  # (B, H, T, hs)
        a = (q @ k.transpose(-2, -1)) / math.sqrt(c // H) + s.mask[:t, :t]
        y = a.softmax(-1) @ v
        x = x + s.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + s.fc_proj(F.gelu(s.fc(s.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s):
        super().__init__()
        s.wte, s.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
        s.blocks = nn.ModuleList([Block() for _ in range(L)])
        s.lnf, s.head = nn.LayerNorm(C), nn.Linear(C, V, bias=False)

    def forward(s, idx):
        x = s.wte(idx) + s.wpe(torch.arange(idx.shape[1]))
        for blk in s.blocks:
            x = blk(x)
        return s.head(s.lnf(x))


m = GPT()
raw = open(os.path.join(d, "weights.bin"), "rb").read()
state = {}
off = 0
for ent in man["tensors"]:
    n = math.prod(ent["shape"])
    state[ent["name"]] = torch.frombuffer(bytearray(raw[off:off + 4 * n]), dtype=torch.float32).view(ent["shape"]).clone()
    off += 4 * n
missing = m.load_state_dict(state, strict=False)
assert not missing.unexpected_keys and all(k.endswith("mask") for k in missing.missing_keys), missing

named = dict(m.named_parameters())
decay = [p for n, p in named.items() if n in man["decay"]]
no_decay = [p for n, p in named.items() if n not in man["decay"]]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                         {"params": no_decay, "weight_decay": 0.0}],
                        lr=1.0, betas=tuple(cfg["betas"]), eps=cfg["eps"])
batches = json.load(open(os.path.join(d, "batches.json")))
losses = []
for step, (x, y, lr) in enumerate(zip(batches["x"], batches["y"], batches["lr"])):
    for g in opt.param_groups:
        g["lr"] = lr
    x = torch.tensor(x).view(-1, T)
    y = torch.tensor(y).view(-1, T)
    loss = F.cross_entropy(m(x).view(-1, V), y.view(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg["grad_clip"] > 0:
        torch.nn.utils.clip_grad_norm_(m.parameters(), cfg["grad_clip"])
    opt.step()
    losses.append(loss.item())
print(json.dumps(losses))
