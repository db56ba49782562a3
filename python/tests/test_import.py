"""isoflop.import_runs and isoflop.count on files written by the real libraries: wandb in
offline mode (never the network), torch.utils.tensorboard's SummaryWriter (read back by
tensorboard's own EventAccumulator as well), a transformers.Trainer's trainer_state.json;
byte-level faults in a real event file; parameter counts against transformers models built
on the meta device; and a round trip: runs trained by `isoflop train`, logged to TensorBoard
and W&B by this test, imported back and fitted to the law of the run folders."""

import json
import subprocess
from pathlib import Path

import pytest

import isoflop
from helpers import binary, curve, tiny_gpt2

def wandb_offline(monkeypatch, tmp_path):
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    return wandb


def log_wandb(wandb, root: Path, name: str, params: int, rows, max_steps=None):
    config = {"params": params}
    if max_steps is not None:
        config["max_steps"] = max_steps
    r = wandb.init(project="isoflop-test", name=name, dir=str(root), config=config, mode="offline")
    for step, tokens, loss, lr in rows:
        wandb.log({"train/loss": loss, "tokens": tokens, "lr": lr}, step=step)
    r.finish()
    # finish() can return before wandb's service has written the whole datastore (seen once
    # in about fifteen runs: a file of the header alone); shutting the service down flushes it.
    wandb.teardown()


def test_a_wandb_offline_run_imports_as_logged_and_an_unfinished_one_is_unfinished(tmp_path, monkeypatch):
    wandb = wandb_offline(monkeypatch, tmp_path)
    rows = [(s, 1024 * s, 4.0 / (1 + 0.01 * s) + 1e-9 * s, 1e-3 * (1 - s / 200)) for s in range(10, 201, 10)]
    log_wandb(wandb, tmp_path / "wb", "small-run", 123456, rows, max_steps=200)
    log_wandb(wandb, tmp_path / "wb", "cut-run", 654321, rows[:5], max_steps=200)
    out = tmp_path / "runs"
    rep = isoflop.import_runs(tmp_path / "wb", out=out)
    by = {r["written_as"]: r for r in rep["runs"]}
    assert set(by) == {"small-run", "cut-run"}, rep
    assert by["small-run"]["finished"] and not by["cut-run"]["finished"]
    got = [(int(r["step"]), float(r["tokens"]), float(r["loss"]), float(r["lr"])) for r in curve(out / "small-run")]
    assert got == [(s, float(t), l, lr) for s, t, l, lr in rows]  # exactly: W&B keeps float64
    assert curve(out / "small-run")[0]["params"] == "123456"
    assert (out / "small-run" / "summary.json").exists() and not (out / "cut-run" / "summary.json").exists()
    assert any("unfinished" in w for w in rep["warnings"])


def write_tensorboard(logdir: Path, rows, new_style=False):
    tb = pytest.importorskip("torch.utils.tensorboard")
    w = tb.SummaryWriter(str(logdir))
    w.add_scalar("params", 1000, 0)
    for step, tokens, loss in rows:
        w.add_scalar("train/loss", loss, step, new_style=new_style)
        w.add_scalar("train/tokens", tokens, step, new_style=new_style)
    w.close()
    return next(logdir.glob("events.out.tfevents.*"))


def test_summarywriter_files_in_both_forms_import_as_logged_and_as_tensorboard_reads_them(tmp_path):
    np = pytest.importorskip("numpy")
    rows = [(s, 512 * s, 3.0 + 1.0 / s) for s in range(1, 41)]
    write_tensorboard(tmp_path / "tb" / "old", rows)
    write_tensorboard(tmp_path / "tb" / "new", rows, new_style=True)
    out = tmp_path / "runs"
    rep = isoflop.import_runs(tmp_path / "tb", out=out, loss_key="train/loss", tokens_key="train/tokens")
    assert sorted(r["written_as"] for r in rep["runs"]) == ["new", "old"]
    want = [(s, float(np.float32(t)), float(np.float32(l))) for s, t, l in rows]
    for name in ("old", "new"):
        got = [(int(r["step"]), float(r["tokens"]), float(r["loss"])) for r in curve(out / name)]
        assert got == want, name
    # tensorboard's own reader sees the same scalars in the old form.
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    ea = EventAccumulator(str(tmp_path / "tb" / "old"))
    ea.Reload()
    theirs = [(e.step, e.value) for e in ea.Scalars("train/loss")]
    assert theirs == [(s, l) for s, _, l in want]


def test_a_real_event_file_with_a_flipped_bit_or_cut_short(tmp_path):
    rows = [(s, 512 * s, 3.0 + 1.0 / s) for s in range(1, 41)]
    f = write_tensorboard(tmp_path / "tb" / "run", rows)
    data = bytearray(f.read_bytes())
    good = bytes(data)
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(isoflop.InputError, match=r"events\.out\.tfevents.*: byte \d+ \(record \d+\): the record's (data|length) fails its checksum"):
        isoflop.import_runs(tmp_path / "tb", out=tmp_path / "runs")
    assert not (tmp_path / "runs" / "run").exists()
    f.write_bytes(good[:-7])
    rep = isoflop.import_runs(tmp_path / "tb", out=tmp_path / "runs")
    assert any("cut short" in w for w in rep["warnings"]), rep
    assert rep["runs"][0]["rows"] >= 39


def test_a_trainers_trainer_state_imports_its_log_history(tmp_path):
    transformers, cfg, model, Data = tiny_gpt2()

    out_dir = tmp_path / "hf" / "gpt2-tiny"
    args = transformers.TrainingArguments(
        output_dir=str(out_dir), max_steps=20, per_device_train_batch_size=4, logging_steps=2,
        report_to=[], save_strategy="steps", save_steps=10, eval_strategy="steps", eval_steps=10,
        use_cpu=True, include_num_input_tokens_seen=True, learning_rate=1e-3, disable_tqdm=True)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Data(), eval_dataset=Data())
    trainer.train()
    history = trainer.state.log_history
    count = isoflop.count(_write(tmp_path / "config.json", cfg.to_dict()))
    rep = isoflop.import_runs(out_dir, out=tmp_path / "runs", model_config=tmp_path / "config.json")
    (r,) = rep["runs"]
    assert r["written_as"] == "gpt2-tiny" and r["finished"]
    rows = curve(tmp_path / "runs" / "gpt2-tiny")
    logged = [h for h in history if "loss" in h]
    assert [float(x["loss"]) for x in rows] == [h["loss"] for h in logged]
    assert [float(x["tokens"]) for x in rows] == [float(h["num_input_tokens_seen"]) for h in logged]
    assert [float(x["lr"]) for x in rows] == [h["learning_rate"] for h in logged]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    assert r["final_loss"] == evals[-1]  # the held-out loss at the end
    total = sum(p.numel() for p in model.parameters())
    assert int(rows[0]["params"]) == total == count["count"]["params"]["total"]
    # The checkpoint at step 10 of 20, alone, is an unfinished run.
    rep = isoflop.import_runs(out_dir / "checkpoint-10" / "trainer_state.json", out=tmp_path / "half", params=total)
    assert not rep["runs"][0]["finished"]


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


CONFIGS = {
    # (config, published total, published active): GPT-2 small (Radford et al. 2019),
    # Llama-2-7B (Touvron et al. 2023), Mistral-7B (Jiang et al. 2023), Mixtral-8x7B
    # (Jiang et al. 2024), Qwen1.5-MoE-A2.7B.
    "gpt2": ({"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257,
              "n_positions": 1024}, 124e6, None),
    "llama": ({"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
               "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
               "vocab_size": 32000, "max_position_embeddings": 4096}, 6.74e9, None),
    "mistral": ({"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336,
                 "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                 "vocab_size": 32000, "max_position_embeddings": 32768}, 7.24e9, None),
    "mixtral": ({"model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336,
                 "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
                 "vocab_size": 32000, "max_position_embeddings": 32768, "num_local_experts": 8,
                 "num_experts_per_tok": 2}, 46.7e9, 12.9e9),
    # Qwen1.5-MoE-A2.7B (Qwen team 2024): 14.3B in all, 2.7B active; shared experts.
    "qwen2_moe": ({"model_type": "qwen2_moe", "hidden_size": 2048, "intermediate_size": 5632,
                   "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
                   "num_experts": 60, "num_experts_per_tok": 4, "num_hidden_layers": 24,
                   "num_attention_heads": 16, "num_key_value_heads": 16, "vocab_size": 151936,
                   "max_position_embeddings": 8192, "tie_word_embeddings": False}, 14.3e9, 2.7e9),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_count_equals_transformers_on_the_meta_device_and_the_published_totals(tmp_path, name):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config, published, active = CONFIGS[name]
    path = _write(tmp_path / "config.json", config)
    ours = isoflop.count(path)["count"]["params"]
    cfg = transformers.AutoConfig.for_model(**config)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(cfg)
    total = sum(p.numel() for p in model.parameters())  # tied weights once
    assert ours["total"] == total
    assert abs(ours["total"] / published - 1) < 0.005
    emb = model.get_input_embeddings().weight.numel()
    head = 0 if cfg.tie_word_embeddings else model.get_output_embeddings().weight.numel()
    pos = model.transformer.wpe.weight.numel() if name == "gpt2" else 0
    assert ours["non_embedding"] == total - emb - head - pos
    if active is not None:
        layer = model.model.layers[0]
        moe = getattr(layer, "block_sparse_moe", None) or layer.mlp
        per_expert = sum(p.numel() for p in moe.experts[0].parameters())
        idle = cfg.num_hidden_layers * (len(moe.experts) - cfg.num_experts_per_tok) * per_expert
        assert ours["active"] == total - idle
        assert abs(ours["active"] / active - 1) < 0.005


def test_isoflop_train_runs_logged_to_tensorboard_and_wandb_fit_as_their_run_folders(tmp_path, monkeypatch):
    pytest.importorskip("torch.utils.tensorboard")
    wandb = wandb_offline(monkeypatch, tmp_path)
    from torch.utils.tensorboard import SummaryWriter
    text = "".join(f"verse {i % 31} of chapter {i % 7} says {i % 11}.\n" for i in range(6000))
    (tmp_path / "corpus.txt").write_text(text)
    runs = tmp_path / "runs"
    for d in (16, 32, 48):
        for tokens in (6400, 12800, 25600):
            o = subprocess.run([binary(), "train", "--layers", "2", "--d-model", str(d), "--heads", "2",
                                "--context", "32", "--batch", "4", "--tokens", str(tokens),
                                "--data", str(tmp_path / "corpus.txt"), "--eval-every", "0",
                                "--out", str(runs / f"d{d}-t{tokens}")], capture_output=True, text=True)
            assert o.returncode == 0, o.stderr
    for run in sorted(runs.iterdir()):
        rows = curve(run)
        params = int(rows[0]["params"])
        w = SummaryWriter(str(tmp_path / "tb" / run.name))
        w.add_scalar("params", params, 0)
        for r in rows:
            w.add_scalar("train/loss", float(r["loss"]), int(r["step"]))
            w.add_scalar("tokens", float(r["tokens"]), int(r["step"]))
        w.close()
        log_wandb(wandb, tmp_path / "wb", run.name, params,
                  [(int(r["step"]), int(r["tokens"]), float(r["loss"]), float(r["lr"])) for r in rows])
    isoflop.import_runs(tmp_path / "tb", out=tmp_path / "from-tb")
    isoflop.import_runs(tmp_path / "wb", out=tmp_path / "from-wb")
    fits = {}
    for name in ("runs", "from-tb", "from-wb"):
        o = subprocess.run([binary(), "fit", str(tmp_path / name), "--approach", "3", "--boot", "0", "--json"],
                           capture_output=True, text=True)
        assert o.returncode == 0, o.stderr
        fits[name] = json.loads(o.stdout)["approach3"]["fitted"]["law"]
    # W&B keeps every digit: the same law exactly; TensorBoard keeps f32 losses.
    assert fits["from-wb"] == fits["runs"]
    for k, v in fits["runs"].items():
        assert fits["from-tb"][k] == pytest.approx(v, rel=1e-3), k


def test_a_damaged_wandb_datastore_is_named_by_byte(tmp_path, monkeypatch):
    wandb = wandb_offline(monkeypatch, tmp_path)
    log_wandb(wandb, tmp_path / "wb", "r", 1000, [(s, 100 * s, 3.0 - 0.01 * s, 1e-3) for s in range(1, 30)])
    (store,) = (tmp_path / "wb").rglob("run-*.wandb")
    data = bytearray(store.read_bytes())
    data[len(data) // 2] ^= 0x40
    store.write_bytes(bytes(data))
    with pytest.raises(isoflop.InputError, match=r"run-.*\.wandb: byte \d+: "):
        isoflop.import_runs(tmp_path / "wb", out=tmp_path / "runs")
    assert not any((tmp_path / "runs").glob("*/curve.csv"))


def test_python_fit_takes_the_convention_and_the_unit_as_the_command_line_does(tmp_path):
    rows = ["params,params_no_embed,tokens,flops,flops_kaplan,loss"]
    for n in (1e7, 2e7, 5e7, 1e8, 2e8, 5e8):
        for d in (1e9, 3e9, 1e10, 3e10):
            ne = 0.8 * n
            rows.append(f"{n},{ne},{d},{6 * n * d},{6 * ne * d * 1.1},{1.69 + 406.4 / ne ** 0.34 + 410.7 / d ** 0.28}")
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    f = isoflop.fit(str(path), approaches=[3], boot=0, params_column="params_no_embed",
                    flops_column="flops_kaplan", bytes_per_token=4)
    d = f.to_dict()
    assert d["counted"]["params"] == "params_no_embed" and d["counted"]["loss_unit"] == "bits per byte"
    o = subprocess.run([binary(), "fit", str(path), "--approach", "3", "--boot", "0", "--json",
                        "--params-column", "params_no_embed", "--flops-column", "flops_kaplan",
                        "--bytes-per-token", "4"], capture_output=True, text=True)
    assert o.returncode == 0, o.stderr
    cli = json.loads(o.stdout)
    assert d["approach3"]["fitted"]["law"] == cli["approach3"]["fitted"]["law"]
    law = cli["approach3"]["fitted"]["law"]
    assert law["alpha"] == pytest.approx(0.34, abs=1e-6)
    assert law["E"] == pytest.approx(1.69 / 0.6931471805599453 / 4, rel=1e-6)
    # The figures read the table as the fit did, and name the unit.
    svg = f.figures()["isoloss"].svg
    assert "bits per byte" in svg
