"""What several test files share: the project's root, the isoflop binaries under test, a
run's curve, and a two-layer GPT-2 of width 32 with a seeded dataset of 64 byte sequences for
the tests that train with transformers.Trainer."""

import csv
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def binary(name="isoflop"):
    """The binary `name` under test (ISOFLOP_BIN_DIR, else target/release); skips the test
    where it is absent."""
    b = Path(os.environ.get("ISOFLOP_BIN_DIR", ROOT / "target" / "release")) / name
    if not b.exists():
        pytest.skip(f"skipped: the binary {b} is absent")
    return str(b)


def curve(run_dir: Path):
    """A run's curve.csv as a list of rows (dicts of text)."""
    with open(run_dir / "curve.csv") as f:
        return list(csv.DictReader(f))


def tiny_gpt2():
    """(transformers, the config, the model, a Dataset class of 64 sequences of 32 tokens);
    skips the test where torch or transformers is absent."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=256, n_positions=32, n_embd=32, n_layer=2, n_head=2)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(cfg)
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, 256, (64, 32), generator=g)

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(seqs)

        def __getitem__(self, i):
            return {"input_ids": seqs[i], "labels": seqs[i]}

    return transformers, cfg, model, Data
