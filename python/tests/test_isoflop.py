"""The Python package against the command line and against bad input. Tests that read
../shared/data skip, saying so, where it is absent; tests that compare with the `isoflop`
binary find it in target/release (or $ISOFLOP_BIN) and skip without it."""

import json
import re
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


def test_settings_no_fit_can_use_are_refused_as_the_command_line_refuses_them():
    # One check of fit settings (isoflop_fit's FitSettings::check) serves both.
    for kwargs, says in [
        (dict(delta=0.0), "delta (the Huber threshold) must be positive, got 0"),
        (dict(approaches=[4]), "approach 4 is not 1, 2 or 3"),
        (dict(budget_tol=-1.0), "budget tolerance must be positive, got -1"),
    ]:
        with pytest.raises(isoflop.InputError, match=re.escape(says)):
            isoflop.fit(synthetic(), boot=0, **kwargs)


def test_other_law_forms_are_fitted_compared_and_drawn():
    # Runs drawn from Kaplan et al.'s form at 5 budgets x 6 sizes: that form describes them
    # exactly, on the runs it was fitted to and on the largest budget held out of its refit.
    n, d = [], []
    for b in range(5):
        c = 1e17 * 10.0**b
        for k in range(6):
            n.append((c / 120.0) ** 0.5 * 10 ** (-0.75 + 0.3 * k))
            d.append(c / (6 * n[-1]))
    n, d = np.array(n), np.array(d)
    loss = ((3e12 / n) ** (0.09 / 0.11) + 2e13 / d) ** 0.11
    f = isoflop.fit({"params": n, "tokens": d, "loss": loss}, boot=0, approaches=[3],
                    laws=["chinchilla", "kaplan"])
    r = f.to_dict()
    assert [s["form"] for s in r["comparison"]] == ["kaplan", "chinchilla"]
    held = r["held_out"]["fitted"]
    assert held["held_runs"] == 6 and held["scores"][0]["form"] == "kaplan"
    assert held["scores"][0]["mean_abs_rel_error"] < 1e-3
    figs = f.figures()
    assert "law_forms" in figs and "repetition" not in figs
    with pytest.raises(isoflop.InputError, match="law form 'kaplna' is unknown"):
        isoflop.fit({"params": n, "tokens": d, "loss": loss}, boot=0, laws=["kaplna"])


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
    # The default solver (variable projection) polishes at most 4 points, none from a start.
    assert 1 <= a3.diagnostics.converged_starts <= a3.diagnostics.starts <= 4
    assert a3.diagnostics.projections > 2500
    assert isoflop.fit(synthetic(), boot=0, solver="lbfgs").approach3.diagnostics.starts == 4500


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


def test_a_folder_of_runs_is_read_by_the_command_lines_reader(tmp_path):
    """Run folders as a sweep (or an external trainer) writes them: curve.csv and summary.json."""
    law = lambda n, d: 1.8 + 480 / n**0.35 + 2100 / d**0.37
    runs = tmp_path / "runs"
    for i, n in enumerate([1e6, 3e6, 1e7, 3e7]):
        for j, d_end in enumerate([1e8, 4e8, 1.6e9]):
            rid = f"r{i}{j}"
            (runs / rid).mkdir(parents=True)
            lines = ["run,step,params,tokens,flops,loss"]
            for k in range(1, 11):
                d = d_end * k / 10
                lines.append(f"{rid},{k},{n:.0f},{d:.0f},{6 * n * d!r},{law(n, d)!r}")
            (runs / rid / "curve.csv").write_text("\n".join(lines) + "\n")
            (runs / rid / "summary.json").write_text(json.dumps({
                "run": rid, "status": "finished", "reason": None, "failed_at_step": None,
                "steps": 10, "params": int(n), "tokens": int(d_end), "flops": 6 * n * d_end,
                "final_loss": law(n, d_end), "final_eval_loss": None, "secs": 1.0, "tokens_per_sec": 1.0,
            }))
    # One unfinished run (no summary) is left out, as on the command line.
    (runs / "r99").mkdir()
    (runs / "r99" / "curve.csv").write_text("run,step,params,tokens,flops,loss\nr99,1,5,5,150,9.0\n")
    f = isoflop.fit(runs, boot=0, approaches=[3])
    theirs = json.loads(run("fit", runs, "--approach", 3, "--boot", 0, "--json"))
    assert f.to_dict()["approach3"] == theirs["approach3"]
    law3 = f.approach3.law
    assert abs(law3.alpha - 0.35) < 0.01 and abs(law3.beta - 0.37) < 0.01, law3
    with pytest.raises(isoflop.InputError, match="no such file or folder"):
        isoflop.fit(tmp_path / "absent", boot=0)
    (tmp_path / "empty" / "r1").mkdir(parents=True)
    (tmp_path / "empty" / "r1" / "curve.csv").write_text("run,step,params,tokens,flops,loss\n")
    with pytest.raises(isoflop.InputError, match=r"empty: no finished run here .*left out: r1 \(unfinished"):
        isoflop.fit(tmp_path / "empty", boot=0)


def test_a_laws_intervals_are_the_fits_and_a_presets_are_as_published():
    s = synthetic()
    s["loss"] = s["loss"] * (1 + 0.01 * np.random.default_rng(0).standard_normal(len(s["loss"])))
    f = isoflop.fit(s, boot=60, approaches=[3], seed=2)
    got = f.approach3.law.intervals()
    assert got["source"] == "60 bootstrap resamples"
    fitted = f.approach3.intervals
    for k in ("E", "A", "B", "alpha", "beta"):
        # Bit for bit: the law JSON's samples are read back exactly (serde_json's
        # float_roundtrip; without it a value could come back one ulp off).
        assert got["intervals"][k] == getattr(fitted, k).to_dict(), k
        assert got["intervals"][k]["lo"] < got["intervals"][k]["hi"], k
        assert got["intervals"][k]["lo"] <= getattr(f.approach3.law, k) <= got["intervals"][k]["hi"], k
    assert "(" in repr(f.approach3.law) and "60 bootstrap resamples" in repr(f.approach3.law)
    # Besiroglu et al. 2024: E 1.82 (1.77, 1.87), alpha 0.35 (0.32, 0.37), beta 0.37 (0.33, 0.42).
    epoch = isoflop.Law.preset("epoch").intervals()["intervals"]
    assert (epoch["E"]["lo"], epoch["E"]["hi"]) == (1.769, 1.871)
    assert (epoch["alpha"]["lo"], epoch["beta"]["hi"]) == (0.317, 0.415)
    assert isoflop.Law.preset("chinchilla").intervals() is None


def test_every_public_name_has_a_docstring_and_a_stub():
    import inspect

    stubs = (Path(isoflop.__file__).parent / "__init__.pyi").read_text()
    names = [n for n in dir(isoflop) if not n.startswith("_") and n not in ("annotations",)]
    missing = []
    for n in names:
        obj = getattr(isoflop, n)
        if inspect.ismodule(obj) or getattr(obj, "__module__", "isoflop") != "isoflop":
            continue
        if not inspect.getdoc(obj):
            missing.append(n)
        if f"def {n}" not in stubs and f"class {n}" not in stubs:
            missing.append(f"{n} (no stub)")
        elif inspect.isfunction(obj):
            # The stub's signature names every parameter of the function's.
            stub = stubs[stubs.index(f"def {n}("):].split(")", 1)[0]
            missing += [f"{n}({p}) (not in the stub)" for p in inspect.signature(obj).parameters
                        if f"{p}:" not in stub and f"{p}=" not in stub and f" {p}," not in stub]
        if inspect.isclass(obj):
            for m, v in vars(obj).items():
                if m.startswith("_"):
                    continue
                f = v.fget if isinstance(v, property) else getattr(v, "__func__", v)
                if not inspect.getdoc(f):
                    missing.append(f"{n}.{m}")
    assert not missing, missing


def test_each_figure_renders_in_headless_chromium(tmp_path):
    chromium = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None)
    if chromium is None:
        pytest.skip("skipped: Debian's chromium is not installed (scripts/setup.sh installs it)")
    f = isoflop.fit(synthetic(), boot=20, approaches=[2, 3], budgets=None, seed=0)
    figs = {k: v for k, v in f.figures(target_flops=1e21).items()}
    assert figs, "no figure drawn"
    for name, fig in figs.items():
        fig.save(tmp_path / f"{name}.svg")
    imgs = "".join(f'<img class="figure" src="{name}.svg">' for name in figs)
    script = (
        "<script>window.addEventListener('load',function(){var i=[].slice.call(document.querySelectorAll('img.figure'));"
        "document.body.setAttribute('data-loaded',i.filter(function(x){return x.complete&&x.naturalWidth>0;}).length+'/'+i.length);});</script>"
    )
    (tmp_path / "figs.html").write_text(f"<!doctype html><html><body>{imgs}{script}</body></html>")
    o = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--virtual-time-budget=5000",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", f"file://{tmp_path / 'figs.html'}"],
        capture_output=True, text=True, timeout=120,
    )
    n = len(figs)
    assert f'data-loaded="{n}/{n}"' in o.stdout, (o.stdout[:300], o.stderr[-1500:])


def test_warnings_and_the_design_check_are_the_command_lines():
    df = epoch()
    f = isoflop.fit(df, drop_top=5, boot=0, budgets="chinchilla")
    o = subprocess.run([cli(), "fit", EPOCH, "--drop-top", "5", "--boot", "0", "--budgets", "chinchilla"],
                       capture_output=True, text=True)
    assert o.returncode == 0, o.stderr
    # The command line also warns about the file's text columns (the table, not the fit).
    printed = [l[len("warning: "):] for l in o.stderr.splitlines()
               if l.startswith("warning: ") and not l.startswith("warning: column ")]
    assert printed and f.warnings == printed
    theirs = json.loads(run("fit", EPOCH, "--drop-top", 5, "--boot", 0, "--budgets", "chinchilla", "--json"))
    check = f.to_dict()["design_check"]
    assert check == theirs["design_check"]
    # The law's a is Approach 3's; Approach 1 (no curves here) is not checked.
    assert check["law_a"] == f.approach3.to_dict()["params_exponent"]
    assert check["approach1_a"] is None and math.isfinite(check["approach2_a"])


def test_boot_by_size_is_the_command_lines_and_bad_units_are_refused(tmp_path):
    df = epoch()
    f = isoflop.fit(df, drop_top=5, boot=50, budgets="chinchilla", boot_by="size", approaches=[2])
    theirs = json.loads(run("fit", EPOCH, "--drop-top", 5, "--boot", 50, "--budgets", "chinchilla",
                            "--approach", 2, "--boot-by", "size", "--json"))
    assert f.to_dict()["approach2"] == theirs["approach2"]
    runs = isoflop.fit(df, drop_top=5, boot=50, budgets="chinchilla", approaches=[2]).to_dict()
    assert runs["approach2"]["fitted"]["intervals"] != theirs["approach2"]["fitted"]["intervals"]
    with pytest.raises(isoflop.InputError, match="boot_by.*run or size"):
        isoflop.fit(synthetic(), boot_by="trunk")


def test_no_keywords_are_the_command_lines_defaults_and_a_bad_one_is_named(tmp_path):
    # The defaults live once, on the Rust side (FitSpec): a fit given no options is the
    # command line's given none, settings and results alike.
    p = tmp_path / "grid.csv"
    g = synthetic()
    p.write_text("params,tokens,loss\n" + "".join(
        f"{float(n)!r},{float(d)!r},{float(l)!r}\n" for n, d, l in zip(g["params"], g["tokens"], g["loss"])))
    mine = isoflop.fit(p).to_dict()
    theirs = json.loads(run("fit", p, "--json"))
    assert mine["settings"] == theirs["settings"]
    assert all(mine["settings"][a]["resamples"] == 1000 for a in ("envelope", "isoflop", "parametric"))
    assert mine["approach3"] == theirs["approach3"]
    with pytest.raises(isoflop.InputError, match="loss_unit: unknown variant furlongs, expected nats or bits"):
        isoflop.fit(p, loss_unit="furlongs")


def test_the_vpnls_solver_is_the_default_and_reaches_the_grids_optimum():
    df = epoch()
    vp = isoflop.fit(df, drop_top=5, boot=0, approaches=[3]).to_dict()["approach3"]["fitted"]
    theirs = json.loads(run("fit", EPOCH, "--drop-top", 5, "--boot", 0, "--approach", 3, "--solver", "vpnls", "--json"))
    assert vp == theirs["approach3"]["fitted"]
    grid = isoflop.fit(df, drop_top=5, boot=0, approaches=[3], solver="lbfgs").to_dict()["approach3"]["fitted"]
    assert abs(vp["objective"] - grid["objective"]) < 1e-9 * grid["objective"]
    assert vp["diagnostics"]["starts"] <= 4 and grid["diagnostics"]["starts"] == 4500
    with pytest.raises(isoflop.InputError, match="solver: unknown variant newton"):
        isoflop.fit(df, solver="newton")
