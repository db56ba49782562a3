//! The careless and hostile inputs of issue 25, each test named after what it guards:
//! messages that stay short, cells no model can have, runs left out and named, laws no fit
//! can give, options that ask for threads without end (memory: `fit_input.rs`), plan ids, leases around
//! external trainers, files isoflop did not write, results folders, links and formats. These
//! use a stand-in external trainer (a shell script) and need no libtorch; the trainer's own
//! cases (an impossible model, `--threads`, Ctrl-C) are in `train_faults.rs`.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{isoflop, law, stderr, stdout};

fn tmpdir(name: &str) -> PathBuf {
    common::tmpdir("hostile", name)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fittable table: 4 sizes x 3 token counts of a known law, in `params,tokens,loss`.
fn good_table(dir: &Path) -> PathBuf {
    let mut t = String::from("params,tokens,loss\n");
    for n in [1e6, 2e6, 4e6, 8e6] {
        for d in [2e7, 6e7, 2e8] {
            t += &format!("{n},{d},{}\n", law(n, d));
        }
    }
    let p = dir.join("runs.csv");
    std::fs::write(&p, t).unwrap();
    p
}

/// A finished fake-trainer sweep of three budgets (15 runs) in `dir`; its sweep file.
fn finished_sweep(dir: &Path) -> PathBuf {
    let file = planned(dir, "1e12,3e12,1e13");
    let o = isoflop(&["sweep", s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
    file
}

/// A fake-trainer plan of `budgets` x 5 sizes in `dir`.
fn planned(dir: &Path, budgets: &str) -> PathBuf {
    common::fake_plan(dir, budgets, &[])
}

fn ids(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("id = \""))
        .map(|s| s.trim_end_matches('"').to_string())
        .collect()
}

#[test]
fn error_text_is_bounded_for_a_ten_megabyte_header() {
    let d = tmpdir("bounded");
    let p = d.join("wide.csv");
    // 5 million columns named `x`, one data row: every one a duplicate of the first.
    let mut t = "x,".repeat(5_000_000);
    t.push_str("\n1\n");
    std::fs::write(&p, t).unwrap();
    let o = isoflop(&["fit", s(&p)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.len() < 2_000, "{} bytes of error", err.len());
    assert!(err.contains("twice") && err.contains("more"), "{err}");
    // A cell of a megabyte is quoted cut, with the count of the rest.
    let p = d.join("cell.csv");
    std::fs::write(
        &p,
        format!(
            "params,tokens,loss\n1e6,1e8,{}\n",
            "9".repeat(1 << 20) + "x"
        ),
    )
    .unwrap();
    let o = isoflop(&["fit", s(&p)]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.len() < 2_000 && err.contains("more characters"),
        "{} bytes: {}",
        err.len(),
        &err[..err.len().min(300)]
    );
}

#[test]
fn a_cell_no_model_can_have_is_refused_naming_its_line_and_column() {
    let d = tmpdir("absurd");
    let good = std::fs::read_to_string(good_table(&d)).unwrap();
    for (row, column, what) in [
        ("1e308,6e7,3.0", "params", "parameters outside"),
        ("0.5,6e7,3.0", "params", "parameters outside"),
        ("1e6,1e17,3.0", "tokens", "tokens outside"),
        ("1e6,6e7,1e-320", "loss", "below 1e-3"),
    ] {
        let mut lines: Vec<&str> = good.lines().collect();
        lines.insert(4, row); // line 5 of the file
        let p = d.join("bad.csv");
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        let o = isoflop(&["fit", s(&p), "--boot", "0"]);
        assert_eq!(code(&o), 2, "{row}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("bad.csv:5")
                && err.contains(&format!("column '{column}'"))
                && err.contains(what),
            "{row}: {err}"
        );
    }
    // Tokens derived from FLOPs name the FLOPs column.
    let p = d.join("flops.csv");
    std::fs::write(&p, "params,flops,loss\n1e6,6e40,3.0\n2e6,6e15,2.9\n").unwrap();
    let err = stderr(&isoflop(&["fit", s(&p)]));
    assert!(
        err.contains("flops.csv:2") && err.contains("column 'flops'"),
        "{err}"
    );
}

#[test]
fn a_finished_run_without_its_curve_is_named_in_fit_collect_and_status() {
    let d = tmpdir("nocurve");
    let file = finished_sweep(&d);
    let gone = ids(&file)[2].clone();
    std::fs::remove_file(d.join("runs").join(&gone).join("curve.csv")).unwrap();
    let o = isoflop(&["fit", s(&d.join("runs")), "--boot", "0"]);
    let all = stdout(&o) + &stderr(&o);
    assert!(
        all.contains(&format!("{gone} (finished, but its curve.csv is missing)")),
        "{all}"
    );
    let st = stdout(&isoflop(&["status", s(&file)]));
    let line = st.lines().find(|l| l.starts_with(&gone)).unwrap();
    assert!(line.contains("left out of fits"), "{st}");
    let o = isoflop(&["collect", s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("{gone} (finished, but its curve.csv is missing")),
        "{}",
        stderr(&o)
    );
}

#[test]
fn impossible_laws_are_refused_naming_the_file_and_the_field() {
    let d = tmpdir("laws");
    let law_file = |name: &str, body: &str| {
        let p = d.join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let a3 = |e: f64, a: f64, alpha: f64, beta: f64| {
        format!(
            r#"{{"source": "by hand", "approach1": null, "approach2": null, "approach3": {{"estimate": {{"E": {e}, "A": {a}, "B": 2085.43, "alpha": {alpha}, "beta": {beta}}}, "samples": []}}}}"#
        )
    };
    for (name, body, field) in [
        (
            "neg-alpha.json",
            a3(1.8, 482.0, -0.35, 0.37),
            "approach3.estimate.alpha = -0.35",
        ),
        (
            "zero.json",
            a3(1.8, 482.0, 0.0, 0.0),
            "approach3.estimate.alpha = 0",
        ),
        (
            "neg-e.json",
            a3(-1.0, 482.0, 0.35, 0.37),
            "approach3.estimate.E = -1",
        ),
        (
            "neg-a.json",
            a3(1.8, -482.0, 0.35, 0.37),
            "approach3.estimate.A = -482",
        ),
    ] {
        let p = law_file(name, &body);
        let o = isoflop(&["allocate", "--flops", "1e21", "--law", s(&p)]);
        assert_eq!(code(&o), 2, "{name}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(err.contains(name) && err.contains(field), "{name}: {err}");
        assert!(!stdout(&o).contains("NaN"), "{}", stdout(&o));
    }
    // A law file of a newer format is refused with the version named.
    let p = law_file(
        "future.json",
        &a3(1.8, 482.0, 0.35, 0.37).replacen('{', r#"{"format": 99, "#, 1),
    );
    let err = stderr(&isoflop(&["allocate", "--flops", "1e21", "--law", s(&p)]));
    assert!(
        err.contains("future.json") && err.contains("format 99"),
        "{err}"
    );
    // What `fit --out` writes carries the format and reads back.
    let out = d.join("law.json");
    let o = isoflop(&["fit", s(&good_table(&d)), "--boot", "0", "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["format"], 1);
    assert!(isoflop(&["allocate", "--flops", "1e21", "--law", s(&out)])
        .status
        .success());
}

#[test]
fn repeated_budgets_are_refused_by_fit_as_by_plan() {
    let d = tmpdir("budgets");
    let o = isoflop(&["fit", s(&good_table(&d)), "--budgets", "6e18,6e18,1e19"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--budgets: lists 6e18 twice"),
        "{}",
        stderr(&o)
    );
    let o = isoflop(&[
        "plan",
        "--budgets",
        "6e18,6e18,1e19",
        "--out",
        s(&d.join("p.toml")),
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("--budgets: lists 6e18 twice"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn plan_ids_are_unique_by_construction_and_the_plan_reads_back() {
    let d = tmpdir("ids");
    for design in ["cosine", "wsd"] {
        let f = d.join(format!("{design}.toml"));
        let o = isoflop(&[
            "plan",
            "--design",
            design,
            "--sizes",
            "0.2e6..2e6",
            "--horizons",
            "300",
            "--out",
            s(&f),
        ]);
        assert!(o.status.success(), "{design}: {}", stderr(&o));
        let ids = ids(&f);
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "{design}: repeated ids");
        assert!(ids.len() >= 4 * 300, "{design}: {} runs", ids.len());
        // More digits where three collide: some id's token count carries at least four.
        let digits = |i: &String| {
            i.rsplit("-d")
                .next()
                .map_or(0, |t| t.chars().filter(|c| c.is_ascii_digit()).count())
        };
        assert!(ids.iter().any(|i| digits(i) >= 4), "{:?}", &ids[..5]);
        let o = isoflop(&["status", s(&f)]);
        assert!(o.status.success(), "{design}: {}", stderr(&o));
    }
}

#[test]
fn two_sweeps_with_an_external_trainer_start_each_run_once() {
    let d = tmpdir("twice");
    let file = planned(&d, "1e12");
    // A slower trainer, so the two sweeps overlap: each start is logged before it sleeps.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("command = \"exec sh", "command = \"sleep 0.5; exec sh"),
    )
    .unwrap();
    let start = || {
        std::process::Command::new(common::bin())
            .args(["sweep", s(&file), "--jobs", "2"])
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        stderr(&a),
        stderr(&b)
    );
    let calls = std::fs::read_to_string(d.join("calls.log")).unwrap();
    let mut started: Vec<&str> = calls.lines().collect();
    started.sort();
    let mut planned = ids(&file);
    planned.sort();
    assert_eq!(started, planned, "each run started once");
}

#[test]
fn run_collect_fit_and_plot_refuse_files_isoflop_did_not_write() {
    let d = tmpdir("foreign");
    let file = finished_sweep(&d);
    let out = d.join("study");
    std::fs::create_dir_all(&out).unwrap();
    // `run --sweep S --out DIR` with the user's law.json there.
    std::fs::write(out.join("law.json"), "my own notes").unwrap();
    let o = isoflop(&["run", "--sweep", s(&file), "--out", s(&out), "--boot", "0"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("law.json") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("law.json")).unwrap(),
        "my own notes"
    );
    // `run --out DIR` with the user's sweep.toml: refused before any planning.
    let mine = d.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("sweep.toml"), "# my sweep\n").unwrap();
    let o = isoflop(&["run", "--quick", "--out", s(&mine)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(mine.join("sweep.toml")).unwrap(),
        "# my sweep\n"
    );
    // With --force, and then again without it: its own files are replaced freely.
    let o = isoflop(&[
        "run",
        "--sweep",
        s(&file),
        "--out",
        s(&out),
        "--boot",
        "0",
        "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = isoflop(&["run", "--sweep", s(&file), "--out", s(&out), "--boot", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // collect --out onto the user's file.
    let table = d.join("table.csv");
    std::fs::write(&table, "keep me").unwrap();
    let o = isoflop(&["collect", s(&file), "--out", s(&table)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&table).unwrap(), "keep me");
    // fit --out onto the user's file.
    let o = isoflop(&[
        "fit",
        s(&out.join("runs.csv")),
        "--boot",
        "0",
        "--out",
        s(&table),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&table).unwrap(), "keep me");
    // plot --out holding a report.html of the user's (a plot's file name, not a plot's file).
    let figs = d.join("figs");
    std::fs::create_dir_all(&figs).unwrap();
    std::fs::write(figs.join("report.html"), "<p>mine</p>").unwrap();
    let o = isoflop(&[
        "plot",
        s(&out.join("runs.csv")),
        "--boot",
        "0",
        "--out",
        s(&figs),
    ]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(figs.join("report.html")).unwrap(),
        "<p>mine</p>"
    );
    // A folder a plot wrote is written again without --force.
    let figs2 = d.join("figs2");
    for _ in 0..2 {
        let o = isoflop(&[
            "plot",
            s(&out.join("runs.csv")),
            "--boot",
            "0",
            "--out",
            s(&figs2),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

#[test]
fn threads_and_jobs_far_above_the_cores_are_refused() {
    let d = tmpdir("threads");
    let file = planned(&d, "1e12");
    for opt in ["--threads", "--jobs"] {
        let o = isoflop(&["sweep", s(&file), opt, "100000"]);
        assert_eq!(code(&o), 2, "{opt}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("{opt} 100000")) && stderr(&o).contains("cores"),
            "{}",
            stderr(&o)
        );
    }
    assert!(!d.join("calls.log").exists(), "a run was started");
}

#[test]
fn an_unreadable_summary_is_named_and_not_retrained() {
    let d = tmpdir("summary");
    let file = finished_sweep(&d);
    let id = ids(&file)[1].clone();
    let summary = d.join("runs").join(&id).join("summary.json");
    let text = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(&summary, &text[..text.len() / 2]).unwrap();
    let st = stdout(&isoflop(&["status", s(&file)]));
    let line = st.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("unreadable")
            && line.contains("summary.json")
            && line.contains("EOF")
            && line.contains("not retrained"),
        "{line}"
    );
    let calls = std::fs::read_to_string(d.join("calls.log")).unwrap();
    let o = isoflop(&["sweep", s(&file)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(d.join("calls.log")).unwrap(),
        calls,
        "retrained"
    );
    let o = isoflop(&["fit", s(&d.join("runs")), "--boot", "0"]);
    let all = stdout(&o) + &stderr(&o);
    assert!(
        all.contains(&format!("{id} (its summary.json cannot be read")),
        "{all}"
    );
    // --retry-failed moves it aside and trains the run again.
    let o = isoflop(&["sweep", s(&file), "--retry-failed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(d.join("calls.log")).unwrap().len() > calls.len());
}

#[test]
fn a_results_folder_that_is_a_system_folder_or_holds_other_files_is_refused() {
    let d = tmpdir("results");
    let file = planned(&d, "1e12");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("results = \"runs\"", "results = \"/\"")).unwrap();
    let o = isoflop(&["status", s(&file)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("system folder"), "{}", stderr(&o));
    let o = isoflop(&["sweep", s(&file)]);
    assert_eq!(code(&o), 2);
    // A folder of the user's own files.
    std::fs::write(&file, &text).unwrap();
    std::fs::create_dir_all(d.join("runs")).unwrap();
    std::fs::write(d.join("runs").join("thesis.tex"), "chapter 1").unwrap();
    let o = isoflop(&["sweep", s(&file)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("thesis.tex"), "{}", stderr(&o));
    assert!(!d.join("calls.log").exists());
}

#[test]
fn a_placeholder_inside_quotes_warns_naming_it() {
    let d = tmpdir("quoted");
    let o = isoflop(&[
        "plan",
        "--budgets",
        "1e12",
        "--out",
        s(&d.join("p.toml")),
        "--command",
        "train --out \"{out}\" --id {id}",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("{out} inside double quotes") && !err.contains("{id} inside"),
        "{err}"
    );
    let o = isoflop(&["sweep", s(&d.join("p.toml")), "--threads", "100000"]);
    assert!(
        stderr(&o).contains("{out} inside double quotes"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_run_folder_linking_outside_the_results_folder_is_refused() {
    let d = tmpdir("symlink");
    let file = planned(&d, "1e12");
    let id = ids(&file)[0].clone();
    let elsewhere = d.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(d.join("runs")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, d.join("runs").join(&id)).unwrap();
    let o = isoflop(&["sweep", s(&file)]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&id) && stderr(&o).contains("outside"),
        "{}",
        stderr(&o)
    );
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "wrote outside"
    );
    // The reader of run folders refuses it too.
    std::fs::write(
        elsewhere.join("curve.csv"),
        "run,step,params,tokens,flops,loss\n",
    )
    .unwrap();
    let o = isoflop(&["fit", s(&d.join("runs"))]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("outside"), "{}", stderr(&o));
}

#[test]
fn the_figures_extension_chooses_its_format_or_is_refused() {
    let d = tmpdir("figext");
    let t = good_table(&d);
    let fig = d.join("backtest.txt");
    let o = isoflop(&[
        "validate",
        s(&t),
        "--backtest",
        "--figure",
        s(&fig),
        "--boot",
        "0",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains(".svg or a .png"), "{}", stderr(&o));
    assert!(!fig.exists());
}

#[test]
fn the_mixed_table_warning_counts_every_value() {
    let d = tmpdir("mixed");
    // 22 labs, each with two runs of different losses (so `source` labels experiments).
    let mut t = String::from("params,tokens,loss,source\n");
    let mut k = 0;
    for n in [1e6, 2e6, 4e6, 8e6] {
        for m in 0..11 {
            let dd = 2e7 * 1.2f64.powi(m);
            t += &format!("{n},{dd},{},lab-{}\n", law(n, dd), k % 22);
            k += 1;
        }
    }
    let p = d.join("mixed.csv");
    std::fs::write(&p, t).unwrap();
    let err = stderr(&isoflop(&["fit", s(&p), "--boot", "0"]));
    assert!(
        err.contains("column 'source' holds 22 different values (lab-0, lab-1, lab-2, lab-3, lab-4, and 17 more)"),
        "{err}"
    );
}
