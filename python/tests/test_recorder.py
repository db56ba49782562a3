"""isoflop.Recorder, the Hugging Face callback and the distributed reference trainer: the
records they write read like `isoflop train`'s, leases hold, exceptions, Ctrl-C and SIGTERM
give their three outcomes, resumes drop rows and never duplicate them, and a sweep runs the
reference trainer under torchrun (locally and under the local Slurm), resuming a killed and
a preempted run to the curves of uninterrupted ones."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import isoflop
from helpers import ROOT, binary, curve, tiny_gpt2

def run(*args, ok=True):
    o = subprocess.run([binary(), *map(str, args)], capture_output=True, text=True)
    if ok:
        assert o.returncode == 0, o.stderr
    return o


def corpus(d: Path) -> Path:
    p = d / "corpus.txt"
    p.write_text("".join(f"verse {i % 31} of chapter {i % 7} says {i % 11}.\n" for i in range(6000)))
    return p


def summary(run_dir: Path):
    return json.loads((run_dir / "summary.json").read_text())


def test_importing_isoflop_imports_neither_torch_nor_transformers():
    code = "import sys, isoflop; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    o = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert o.returncode == 0 and o.stdout.strip() == "[]", (o.stdout, o.stderr)


def test_a_loop_recording_what_isoflop_train_logged_writes_the_same_record(tmp_path):
    data = corpus(tmp_path)
    ours = tmp_path / "ours" / "r1"
    run("train", "--layers", "2", "--d-model", "32", "--heads", "2", "--context", "32", "--batch", "4",
        "--tokens", "12800", "--data", data, "--out", ours, "--run", "r1", "--eval-every", "0")
    rows = curve(ours)
    mine = tmp_path / "mine" / "r1"
    with isoflop.Recorder(mine, run="r1", params=int(rows[0]["params"]), config={"by": "test"}) as rec:
        for r in rows:
            assert rec.log(step=int(r["step"]), tokens=int(r["tokens"]), loss=float(r["loss"]),
                           lr=float(r["lr"])) is None
    a, b = summary(ours), summary(mine)
    for k in ("run", "status", "steps", "params", "tokens", "flops", "final_loss", "final_eval_loss", "transient"):
        assert a[k] == b[k], (k, a[k], b[k])
    # The same table through the one reader, and the same fit.
    ta, tb = isoflop.read_table(ours), isoflop.read_table(mine)
    assert ta["loss"].tolist() == tb["loss"].tolist() and ta["tokens"].tolist() == tb["tokens"].tolist()
    assert ta["final_loss"].tolist() == tb["final_loss"].tolist()
    assert list(ta.columns) == list(tb.columns)


def test_a_second_recorder_on_a_run_is_held_and_a_script_exits_75(tmp_path):
    out = tmp_path / "r"
    with isoflop.Recorder(out, params=10) as rec:
        rec.log(step=1, tokens=10, loss=3.0, lr=1e-3)
        with pytest.raises(isoflop.RunHeld) as e:
            with isoflop.Recorder(out, params=10):
                pass
        assert e.value.code == 75 and "held" in str(e.value)
        script = f"import isoflop\nwith isoflop.Recorder({str(out)!r}, params=10) as r:\n    r.log(step=1, tokens=1, loss=1.0)\n"
        o = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert o.returncode == 75, o.stderr
    assert summary(out)["status"] == "finished"


def test_an_exception_a_keyboard_interrupt_and_a_sigterm_give_their_outcomes(tmp_path):
    out = tmp_path / "exc"
    with pytest.raises(RuntimeError):
        with isoflop.Recorder(out, params=10) as rec:
            rec.log(step=1, tokens=10, loss=3.0, lr=1e-3)
            raise RuntimeError("CUDA out of memory\nsecond line")
    s = summary(out)
    assert (s["status"], s["transient"], s["reason"]) == ("failed", False, "RuntimeError: CUDA out of memory")
    out = tmp_path / "kbd"
    with pytest.raises(KeyboardInterrupt):
        with isoflop.Recorder(out, params=10) as rec:
            rec.log(step=1, tokens=10, loss=3.0, lr=1e-3)
            raise KeyboardInterrupt
    s = summary(out)
    assert (s["status"], s["transient"]) == ("failed", True) and "interrupted" in s["reason"]
    # SIGTERM to a script in its loop.
    out = tmp_path / "term"
    script = (
        "import isoflop, time\n"
        f"with isoflop.Recorder({str(out)!r}, params=10) as r:\n"
        "    for s in range(1, 100000):\n"
        "        r.log(step=s, tokens=s, loss=3.0, lr=1e-3)\n"
        "        if s == 3: print('ready', flush=True)\n"
        "        time.sleep(0.01)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    s = summary(out)
    assert (s["status"], s["transient"]) == ("failed", True) and "SIGTERM" in s["reason"], s
    # A transient run is resumed: reopening it and logging from an earlier step.
    with isoflop.Recorder(out, params=10) as rec:
        assert rec.resume_step is not None and rec.resume_step >= 3
        for s in range(2, 6):
            rec.log(step=s, tokens=s, loss=2.0, lr=1e-3)
    steps = [int(r["step"]) for r in curve(out)]
    assert steps == [1, 2, 3, 4, 5], steps
    assert summary(out)["status"] == "finished"


def test_divergence_is_recorded_by_the_trainers_rule(tmp_path):
    out = tmp_path / "div"
    with isoflop.Recorder(out, params=10) as rec:
        for s in range(1, 31):
            assert rec.log(step=s, tokens=s, loss=2.0, lr=1e-3) is None
        why = rec.log(step=31, tokens=31, loss=float("nan"), lr=1e-3)
        assert why and "NaN" in why
        assert rec.log(step=32, tokens=32, loss=2.0) == why  # later calls do nothing
    s = summary(out)
    assert (s["status"], s["failed_at_step"]) == ("diverged", 31)


def test_only_global_rank_0_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    out = tmp_path / "rank1"
    with isoflop.Recorder(out, params=10) as rec:
        rec.log(step=1, tokens=1, loss=1.0)
        assert rec.resume_step is None
    assert not out.exists()


def test_a_transformers_trainer_run_is_recorded_with_the_trainers_own_token_count(tmp_path):
    transformers, cfg, model, Data = tiny_gpt2()
    from isoflop.integrations.hf import IsoflopCallback

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"), max_steps=30, per_device_train_batch_size=4, logging_steps=5,
        report_to=[], save_strategy="no", use_cpu=True, include_num_input_tokens_seen=True,
        learning_rate=1e-3, disable_tqdm=True)
    out = tmp_path / "runs" / "gpt2-tiny"
    cb = IsoflopCallback(out)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Data(), callbacks=[cb])
    trainer.train()
    s = summary(out)
    assert s["status"] == "finished" and s["steps"] == 30
    assert s["tokens"] == trainer.state.num_input_tokens_seen == 30 * 4 * 32
    total = sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert s["params"] == total
    cfgj = json.loads((out / "config.json").read_text())
    assert cfgj["config"]["params_no_embed"] == total - 256 * 32 - 32 * 32
    t = isoflop.read_table(out.parent)
    assert len(t) == 6 and t["tokens"].tolist()[-1] == 30 * 4 * 32
    logged = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert [float(r["loss"]) for r in curve(out)] == pytest.approx(logged)


# -- the reference trainer under torchrun, in a sweep ------------------------------------

def torchrun():
    pytest.importorskip("torch")
    exe = Path(sys.executable).parent / "torchrun"
    if not exe.exists():
        pytest.skip("skipped: torchrun is not beside this Python")
    return str(exe)


def ddp_sweep(d: Path, extra_slurm: str = "") -> Path:
    data = corpus(d)
    f = d / "sweep.toml"
    template = (f"exec {torchrun()} --standalone --nproc_per_node 2 -m isoflop.examples.train_ddp "
                "--layers {layers} --d-model {d_model} --heads {heads} --context {context} --batch {batch} "
                "--steps {steps} --lr {lr} --seed {seed} --data {data} --out {out} --checkpoint-every 20")
    run("plan", "--budgets", "1.5e11", "--sizes-per-budget", "3", "--spread", "4", "--context", "32",
        "--batch", "8", "--data", data, "--out", f, "--command", template)
    if extra_slurm:
        text = f.read_text().replace("[[runs]]", extra_slurm + "\n[[runs]]", 1)
        f.write_text(text)
    return f


def ids(f: Path):
    return [l.split('"')[1] for l in f.read_text().splitlines() if l.startswith("id = ")]


def wait_for(cond, limit, what):
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < limit, f"{what} did not happen in {limit} s"
        time.sleep(0.2)


def losses(run_dir: Path):
    return [(int(r["step"]), float(r["loss"])) for r in curve(run_dir)]


def assert_same_curves(a: Path, b: Path):
    la, lb = losses(a), losses(b)
    assert [s for s, _ in la] == [s for s, _ in lb]
    for (s, x), (_, y) in zip(la, lb):
        assert abs(x - y) < 1e-5, (s, x, y)


def test_a_torchrun_sweep_resumes_a_killed_and_a_preempted_run_to_uninterrupted_curves(tmp_path):
    env = dict(os.environ, PATH=f"{Path(binary()).parent}:{os.environ['PATH']}")
    ref = tmp_path / "ref"
    ref.mkdir()
    fr = ddp_sweep(ref)
    o = subprocess.run([binary(), "sweep", fr, "--jobs", "1"], capture_output=True, text=True, env=env)
    assert o.returncode == 0, o.stderr
    for i in ids(fr):
        assert summary(ref / "runs" / i)["status"] == "finished"
    work = tmp_path / "work"
    work.mkdir()
    fw = ddp_sweep(work)
    first, second = ids(fw)[:2]
    sweep = subprocess.Popen([binary(), "sweep", fw, "--jobs", "1"], stderr=subprocess.PIPE, text=True, env=env)
    # The first run: once it has a checkpoint, SIGKILL its trainer (torchrun, the lease's holder is rank 0).
    ck = lambda i: (work / "runs" / i / "ddp_checkpoint.pt").exists()
    wait_for(lambda: ck(first), 120, "a checkpoint of the first run")
    lease = (work / "runs" / first / ".lease").read_text().split()
    os.kill(int(lease[1]), signal.SIGKILL)
    # The second: SIGTERM to torchrun (as Slurm's preemption, or a task's --signal passed on).
    wait_for(lambda: ck(second), 120, "a checkpoint of the second run")
    holder = int((work / "runs" / second / ".lease").read_text().split()[1])
    parent = int(Path(f"/proc/{holder}/stat").read_text().rsplit(")", 1)[1].split()[1])
    os.kill(parent, signal.SIGTERM)
    err = sweep.communicate(timeout=300)[1]
    assert sweep.returncode == 1, err
    s2 = summary(work / "runs" / second)
    assert s2["transient"] and "SIGTERM" in s2["reason"], s2
    st = run("status", fw).stdout
    assert st.count("the next sweep retries it") == 2, st
    o = subprocess.run([binary(), "sweep", fw, "--jobs", "1"], capture_output=True, text=True, env=env)
    assert o.returncode == 0, o.stderr
    for i in ids(fw):
        assert summary(work / "runs" / i)["status"] == "finished"
        assert_same_curves(ref / "runs" / i, work / "runs" / i)
    t = isoflop.read_table(work / "runs")
    assert sorted(set(t["run"])) == sorted(ids(fw))
    # collect writes the same rows the folder reads as.
    table = Path(run("collect", fw).stdout.strip())
    assert isoflop.read_table(table)["loss"].tolist() == t["loss"].tolist()


def slurm_up():
    o = subprocess.run(["bash", str(ROOT / "scripts" / "slurm-local.sh"), "start"], capture_output=True, text=True)
    if o.returncode != 0:
        pytest.skip(f"skipped: a local Slurm could not start: {o.stderr.strip().splitlines()[-1:]}")


def test_the_torchrun_sweep_runs_under_slurm_with_its_resources(tmp_path):
    slurm_up()
    d = tmp_path / "slurm"
    d.mkdir()
    f = ddp_sweep(d, '[slurm]\npartition = "debug"\ncpus_per_task = 2\nmem = "2G"\ntime = "0:20:00"\n')
    o = run("sweep", f, "--executor", "slurm")
    job = o.stdout.split("array job ")[1].split()[0]
    show = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    for want in ("Partition=debug", "CPUs/Task=2", "MinMemoryNode=2G", "TimeLimit=00:20:00"):
        assert want in show, (want, show)
    wait_for(lambda: run("status", f).stdout.count(" finished") == len(ids(f)), 600, "the Slurm sweep")
    ref = tmp_path / "ref"
    ref.mkdir()
    fr = ddp_sweep(ref)
    env = dict(os.environ, PATH=f"{Path(binary()).parent}:{os.environ['PATH']}")
    assert subprocess.run([binary(), "sweep", fr, "--jobs", "1"], env=env).returncode == 0
    for i in ids(f):
        assert_same_curves(ref / "runs" / i, d / "runs" / i)


def test_a_law_file_no_fit_can_give_is_refused_by_law_load(tmp_path):
    p = tmp_path / "neg.json"
    p.write_text(json.dumps({"source": "by hand", "approach3": {"estimate": {
        "E": 1.8, "A": 482.0, "B": 2085.0, "alpha": -0.3, "beta": 0.37}, "samples": []}}))
    with pytest.raises(isoflop.InputError) as e:
        isoflop.Law.load(p)
    assert "neg.json" in str(e.value) and "approach3.estimate.alpha" in str(e.value)
    good = tmp_path / "epoch.json"
    isoflop.Law.preset("epoch").save(good)
    assert isoflop.Law.load(good).alpha == 0.3478
