"""The Python package against the command line and against bad input. Tests that read
../shared/data skip, saying so, where it is absent; tests that compare with the `isoflop`
binary find it in target/release (or $ISOFLOP_BIN) and skip without it."""

import json
import math
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import isoflop

ROOT = Path(__file__).resolve().parents[2]
EPOCH = ROOT.parent / "shared" / "data" / "epoch_chinchilla_svg_extracted_data.csv"


def cli():
    b = Path(os.environ.get("ISOFLOP_BIN", ROOT / "target" / "release" / "isoflop"))
    if not b.exists():
        pytest.skip(f"skipped: the isoflop binary {b} is absent")
    return str(b)


def epoch():
    if not EPOCH.exists():
        pytest.skip(f"skipped: {EPOCH} is absent (tests that read ../shared skip without it)")
    pd = pytest.importorskip("pandas")
    return pd.read_csv(EPOCH)


def run(*args):
    o = subprocess.run([cli(), *map(str, args)], capture_output=True, text=True)
    assert o.returncode == 0, o.stderr
    return o.stdout


def synthetic():
    """A 6 x 6 grid of runs from L = 1.8 + 480/N^0.35 + 2100/D^0.37, as a dict of arrays."""
    n, d = np.meshgrid(1e7 * 10 ** (0.5 * np.arange(6)), 1e9 * 10 ** (0.5 * np.arange(6)))
    n, d = n.ravel(), d.ravel()
    return {"params": n, "tokens": d, "loss": 1.8 + 480 / n**0.35 + 2100 / d**0.37}


def test_the_epoch_fit_equals_the_command_lines_to_every_digit(tmp_path):
    df = epoch()
    f = isoflop.fit(df, drop_top=5, boot=100, budgets="chinchilla", seed=0)
    ours = f.to_dict()
    theirs = json.loads(run("fit", EPOCH, "--drop-top", 5, "--boot", 100, "--budgets", "chinchilla", "--seed", 0, "--json"))
    for k in ("approach2", "approach3"):
        assert ours[k] == theirs[k], k
    law = f.approach3.law
    assert (round(law.E, 4), round(law.alpha, 4), round(law.beta, 4)) == (1.8172, 0.3473, 0.3672)
    # The allocation at Gopher's budget equals the command line's from its own law file.
    cli_law = tmp_path / "cli_law.json"
    run("fit", EPOCH, "--drop-top", 5, "--boot", 100, "--budgets", "chinchilla", "--seed", 0, "--out", cli_law)
    theirs = json.loads(run("allocate", "--flops", 5.76e23, "--law", cli_law, "--json"))["allocations"]
    ours = f.allocate(flops=5.76e23)
    rows = ours.to_dict("records") if hasattr(ours, "to_dict") else ours
    for a, b in zip(rows, theirs):
        assert a["approach"] == b["approach"]
        assert a["params"] == b["params"] and a["tokens"] == b["tokens"]
        assert a["params_lo"] == b["intervals"]["params"]["lo"]


def test_a_law_saved_in_python_allocates_the_same_from_the_command_line_and_back(tmp_path):
    f = isoflop.fit(synthetic(), boot=50, approaches=[3], seed=1)
    p = tmp_path / "law.json"
    f.save(p)
    theirs = json.loads(run("allocate", "--flops", 1e22, "--law", p, "--json"))["allocations"][0]
    ours = isoflop.Law.load(p).allocate(flops=1e22)
    row = (ours.to_dict("records") if hasattr(ours, "to_dict") else ours)[0]
    assert row["params"] == theirs["params"] and row["loss"] == theirs["loss"]
    # A law the command line wrote, loaded in Python.
    table = tmp_path / "runs.csv"
    s = synthetic()
    table.write_text("params,tokens,loss\n" + "".join(f"{a!r},{b!r},{c!r}\n" for a, b, c in zip(s["params"].tolist(), s["tokens"].tolist(), s["loss"].tolist())))
    cli_law = tmp_path / "cli.json"
    run("fit", table, "--approach", 3, "--boot", 0, "--out", cli_law)
    l = isoflop.Law.load(cli_law)
    theirs = json.loads(run("allocate", "--params", 1e9, "--law", cli_law, "--json"))["allocations"][0]
    row = l.allocate(params=1e9)
    row = (row.to_dict("records") if hasattr(row, "to_dict") else row)[0]
    assert row["flops"] == theirs["flops"]
    assert abs(l.alpha - 0.35) < 1e-3 and abs(l.beta - 0.37) < 1e-3


@pytest.mark.parametrize("bad, says", [(float("nan"), "NaN"), ("abc", "not a number"), (-2.0, "positive")])
def test_a_bad_cell_in_a_dataframe_names_its_row_and_column(bad, says):
    pd = pytest.importorskip("pandas")
    s = synthetic()
    df = pd.DataFrame(s, index=[f"r{i}" for i in range(len(s["loss"]))])
    df["loss"] = df["loss"].astype(object)
    df.iloc[3, df.columns.get_loc("loss")] = bad
    with pytest.raises(isoflop.InputError) as e:
        isoflop.fit(df, boot=0)
    msg = str(e.value)
    assert "row 3" in msg and "'r3'" in msg and "'loss'" in msg and says in msg, msg
    assert isinstance(e.value, ValueError)


def test_a_file_is_named_with_its_line_and_a_missing_column_lists_the_names(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("params,tokens,loss\n1e6,2e7,3\n1e6,abc,3\n")
    with pytest.raises(isoflop.InputError, match=r"t\.csv:3.*'tokens'"):
        isoflop.fit(p, boot=0)
    with pytest.raises(isoflop.InputError, match="no column for loss"):
        isoflop.fit({"params": [1.0, 2.0], "tokens": [3.0, 4.0]}, boot=0)


def test_predictions_are_vectorised_and_presets_allocate_as_published():
    law = isoflop.Law.preset("chinchilla-unrounded")
    n, d = np.array([1e9, 7e10]), np.array([2e10, 1.4e12])
    got = law.predict_loss(params=n, tokens=d)
    want = 1.6934 + 406.4 / n**0.33917 + 410.7 / d**0.28491
    assert np.allclose(got, want, rtol=1e-12)
    a = law.allocate(flops=5.76e23)
    row = (a.to_dict("records") if hasattr(a, "to_dict") else a)[0]
    assert abs(row["params"] / 40e9 - 1) < 0.03  # Hoffmann et al. Figure 4: about 40B
    with pytest.raises(isoflop.InputError, match="unknown preset"):
        isoflop.Law.preset("gpt5")


def test_figures_are_valid_svg_and_show_in_a_notebook():
    df = epoch()
    f = isoflop.fit(df, drop_top=5, boot=50, budgets="chinchilla", seed=0)
    figs = f.figures(target_flops=5.76e23)
    assert set(figs) == {"projections", "isoloss", "isoflop_slices"}
    for name, fig in figs.items():
        root = ET.fromstring(fig._repr_svg_())
        assert root.tag.endswith("svg"), name
    html = f._repr_html_()
    assert "Approach 3" in html and "0.51" in html


def test_convergence_and_skipped_approaches_are_reported_not_raised():
    f = isoflop.fit(synthetic(), boot=0)
    # No training curves: Approach 1 is skipped, with its reason, and the rest is fitted.
    assert "training curve" in f.to_dict()["approach1"]["skipped"]
    assert f.approach1 is None
    a3 = f.approach3
    assert a3.converged is True
    assert a3.diagnostics.converged_starts > 0 and a3.diagnostics.starts == 4500


def test_ctrl_c_stops_a_long_bootstrap_with_keyboard_interrupt():
    import signal
    import sys
    import time

    code = (
        "import sys, numpy as np, isoflop\n"
        "n, d = np.meshgrid(1e7 * 10 ** (0.5 * np.arange(6)), 1e9 * 10 ** (0.5 * np.arange(6)))\n"
        "n, d = n.ravel(), d.ravel()\n"
        "print('fitting', flush=True)\n"
        "try:\n"
        "    isoflop.fit({'params': n, 'tokens': d, 'loss': 1.8 + 480 / n**0.35 + 2100 / d**0.37}, boot=1000000)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "    sys.exit(3)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "fitting"
    time.sleep(1.0)
    sent = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    # A million resamples take minutes; stopping within a few seconds means it was cancelled.
    assert time.monotonic() - sent < 10
    assert p.returncode == 3 and "interrupted" in out
