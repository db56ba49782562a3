//! Hostile sweep files, killed and failing trainers, ambiguous and degenerate tables, bad
//! options, a plot folder that holds other files, and one reader of runs: each test is named
//! after what it guards. These use a stand-in external trainer (a shell script), so they need
//! no libtorch; the tests that need isoflop's own trainer are in `train_faults.rs`.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{fake_trainer, isoflop, law, stderr, stdout, table};

fn tmpdir(name: &str) -> PathBuf {
    common::tmpdir("hard", name)
}

fn fake_plan(dir: &Path, budgets: &str, extra: &[&str]) -> PathBuf {
    common::fake_plan(dir, budgets, extra)
}

fn ids(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("id = \""))
        .map(|s| s.trim_end_matches('"').to_string())
        .collect()
}

/// Replaces the first run id of the sweep file with `new` (as TOML writes it).
fn rename_first(file: &Path, new: &str) -> String {
    let old = ids(file)[0].clone();
    let text = std::fs::read_to_string(file).unwrap();
    let quoted = toml_string(new);
    std::fs::write(
        file,
        text.replacen(&format!("id = \"{old}\""), &format!("id = {quoted}"), 1),
    )
    .unwrap();
    old
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn command_template_values_are_quoted_for_sh() {
    let d = tmpdir("quote");
    // The results folder's name holds a space: {out} must stay one argument.
    let f = fake_plan(&d, "1e12", &["--results", "my results"]);
    let hostile = "x$(touch PWNED)y";
    rename_first(&f, hostile);
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!d.join("PWNED").exists() && !Path::new("PWNED").exists());
    let run = d.join("my results").join(hostile);
    assert!(run.join("summary.json").exists(), "{}", stderr(&o));
    assert!(!d.join("my").exists());
}

#[test]
fn an_unknown_placeholder_is_refused_when_planning_and_when_sweeping() {
    let d = tmpdir("placeholder");
    let o = isoflop(&[
        "plan",
        "--budgets",
        "1e12",
        "--out",
        d.join("s.toml").to_str().unwrap(),
        "--command",
        "train.py --out {out} --what {bogus}",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("{bogus}") && !d.join("s.toml").exists(),
        "{}",
        stderr(&o)
    );
    let f = fake_plan(&d, "1e12", &[]);
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replace("{tokens}", "{tokenz}")).unwrap();
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("{tokenz}") && stderr(&o).contains("sweep.toml"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("runs").exists());
}

#[test]
fn run_ids_that_are_paths_or_options_are_refused() {
    for (i, bad) in ["../../escaped", "a/b", "..", "-rf", "tab\there"]
        .iter()
        .enumerate()
    {
        let d = tmpdir(&format!("ids{i}"));
        let f = fake_plan(&d, "1e12", &[]);
        rename_first(&f, bad);
        let o = isoflop(&["sweep", f.to_str().unwrap()]);
        assert_eq!(code(&o), 2, "{bad:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("run id"), "{}", stderr(&o));
        assert!(!d.join("runs").exists(), "{bad:?}: something was written");
        assert!(!d
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("escaped")
            .exists());
    }
}

#[test]
fn data_and_results_resolve_against_the_sweep_files_folder() {
    let d = tmpdir("paths");
    let study = d.join("study");
    std::fs::create_dir_all(&study).unwrap();
    std::fs::write(study.join("corpus.txt"), "some text").unwrap();
    // A trainer that needs its data: it fails unless {data} names an existing file.
    let script = fake_trainer(&study);
    let template = format!(
        "test -f {{data}} && exec sh {} {{out}} {{id}} {{params}} {{tokens}}",
        script.display()
    );
    let f = study.join("sweep.toml");
    let o = isoflop(&[
        "plan",
        "--budgets",
        "1e12",
        "--out",
        f.to_str().unwrap(),
        "--data",
        "corpus.txt",
        "--command",
        &template,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Started from another folder, with a relative path to the sweep file.
    let o = std::process::Command::new(common::bin())
        .args(["sweep", "study/sweep.toml"])
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_dir(study.join("runs"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().join("summary.json").exists())
            .count(),
        ids(&f).len()
    );
}

#[test]
fn a_trainer_killed_by_a_signal_is_retried_by_the_next_sweep() {
    let d = tmpdir("killed");
    let f = fake_plan(&d, "1e12", &[]);
    let victim = ids(&f)[2].clone();
    std::fs::write(d.join(format!("kill-once-{victim}")), "").unwrap();
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let last = stderr(&o).lines().last().unwrap().to_string();
    assert!(
        last.contains("1 run(s) failed") && last.contains(&victim),
        "{last}"
    );
    let st = stdout(&isoflop(&["status", f.to_str().unwrap()]));
    let line = st.lines().find(|l| l.starts_with(&victim)).unwrap();
    assert!(
        line.contains("signal 9") && line.contains("retries"),
        "{line}"
    );
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 runs trained"), "{}", stderr(&o));
    let st = stdout(&isoflop(&["status", f.to_str().unwrap()]));
    assert_eq!(st.matches("finished").count(), ids(&f).len(), "{st}");
    // The failed attempt's summary is kept beside the logs.
    assert!(d
        .join("runs/logs")
        .join(format!("{victim}.failed-1.json"))
        .exists());
}

#[test]
fn a_sweep_waits_for_a_run_another_process_holds_and_trains_it_if_the_holder_dies() {
    use std::io::BufRead;
    let d = tmpdir("held");
    let f = fake_plan(&d, "1e12", &[]);
    let all = ids(&f);
    let victim = all[1].clone();
    // A live process on this host holds the run's lease; it dies without finishing the run,
    // as a trainer of a killed sweep may still be dying when the next sweep starts.
    let mut holder = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let dir = d.join("runs").join(&victim);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(isoflop_core::lease::LEASE_FILE),
        format!("{} {}\n", isoflop_core::lease::host(), holder.id()),
    )
    .unwrap();
    let mut sweep = std::process::Command::new(common::bin())
        .args(["sweep", f.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(sweep.stderr.take().unwrap()).lines();
    let mut e = String::new();
    let waiting = format!("run {victim} is being trained by another process; waiting for it");
    for l in lines.by_ref() {
        let l = l.unwrap();
        e.push_str(&l);
        e.push('\n');
        if l.contains(&waiting) {
            break;
        }
    }
    if !e.contains(&waiting) {
        let _ = holder.kill();
        panic!("no line saying it waits: {e}");
    }
    // While the holder lives the sweep neither trains the run nor returns.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let calls = std::fs::read_to_string(d.join("calls.log")).unwrap_or_default();
    assert!(!calls.lines().any(|l| l == victim), "{calls}");
    assert!(sweep.try_wait().unwrap().is_none(), "it returned: {e}");
    holder.kill().unwrap();
    holder.wait().unwrap();
    for l in lines {
        e.push_str(&l.unwrap());
        e.push('\n');
    }
    assert!(sweep.wait().unwrap().success(), "{e}");
    // Then it trained the run itself, once, and every other run.
    assert!(e.contains(&format!("{} runs trained", all.len())), "{e}");
    let calls = std::fs::read_to_string(d.join("calls.log")).unwrap();
    assert_eq!(calls.lines().filter(|l| *l == victim).count(), 1, "{calls}");
    let st = stdout(&isoflop(&["status", f.to_str().unwrap()]));
    assert_eq!(st.matches("finished").count(), all.len(), "{st}");
}

#[test]
fn a_run_failed_on_its_own_terms_stays_failed_unless_retry_failed() {
    let d = tmpdir("diverged");
    let f = fake_plan(&d, "1e12", &[]);
    let bad = ids(&f)[0].clone();
    std::fs::write(d.join(format!("diverge-{bad}")), "").unwrap();
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let calls = || {
        std::fs::read_to_string(d.join("calls.log"))
            .unwrap()
            .lines()
            .filter(|l| *l == bad)
            .count()
    };
    assert_eq!(calls(), 1);
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        calls(),
        1,
        "a diverged run was trained again without --retry-failed"
    );
    std::fs::remove_file(d.join(format!("diverge-{bad}"))).unwrap();
    let o = isoflop(&["sweep", f.to_str().unwrap(), "--retry-failed"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(calls(), 2);
    let kept: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.join("runs/logs").join(format!("{bad}.failed-1.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(kept["status"], "diverged");
}

#[test]
fn status_says_a_run_without_a_checkpoint_restarts_from_step_0() {
    let d = tmpdir("status");
    let f = fake_plan(&d, "1e12", &[]);
    let id = ids(&f)[0].clone();
    let run = d.join("runs").join(&id);
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("curve.csv"), format!("run,step,params,tokens,flops,loss,lr,secs,eval_loss\n{id},40,1000,2000,12000000,3.0,0.001,1.5,\n")).unwrap();
    let st = stdout(&isoflop(&["status", f.to_str().unwrap()]));
    let line = st.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("unfinished at step 40") && line.contains("restart from step 0"),
        "{line}"
    );
    assert!(!line.contains("resumes"), "{line}");
}

#[test]
fn the_same_finished_sweep_fits_the_same_through_the_folder_collect_and_run() {
    let d = tmpdir("onereader");
    let f = fake_plan(&d, "1e12,3e12,1e13", &[]);
    let out = d.join("out");
    let o = isoflop(&[
        "run",
        "--sweep",
        f.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--boot",
        "40",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let strip = |mut v: serde_json::Value| {
        let m = v.as_object_mut().unwrap();
        m.remove("source");
        m.remove("notes");
        v
    };
    let from_run =
        strip(serde_json::from_slice(&std::fs::read(out.join("fit.json")).unwrap()).unwrap());
    let fit = |table: &Path| {
        let o = isoflop(&["fit", table.to_str().unwrap(), "--json", "--boot", "40"]);
        assert!(o.status.success(), "{}", stderr(&o));
        strip(serde_json::from_slice(&o.stdout).unwrap())
    };
    let from_folder = fit(&d.join("runs"));
    let from_csv = fit(&out.join("runs.csv"));
    assert!(
        from_run["approach2"]["fitted"].is_object(),
        "{}",
        from_run["approach2"]
    );
    assert!(from_run["approach3"]["fitted"].is_object());
    assert_eq!(from_folder, from_csv);
    assert_eq!(from_folder, from_run);
    // The folder reader knew each run's budget (the sweep's plan index) and final loss.
    let o = isoflop(&[
        "collect",
        f.to_str().unwrap(),
        "--out",
        d.join("c.csv").to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(d.join("c.csv")).unwrap();
    let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    assert!(
        row[6].parse::<f64>().unwrap() > 0.0 && row[7].parse::<f64>().unwrap() > 0.0,
        "{row:?}"
    );
}

#[test]
fn bad_options_are_one_line_errors_with_exit_code_2() {
    let d = tmpdir("options");
    let mut rows = Vec::new();
    for n in [1e6, 2e6, 4e6, 8e6] {
        for t in [1e7, 3e7, 1e8] {
            rows.push((n, t, law(n, t)));
        }
    }
    let p = table(&d, "ok.csv", &rows);
    let s = d.join("s.toml");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["allocate", "--flops", "1e22", "--level", "1.5"],
            "--level",
        ),
        (
            vec!["allocate", "--flops", "1e22", "--level", "0"],
            "--level",
        ),
        (vec!["sweep", "x.toml", "--jobs", "0"], "--jobs"),
        (
            vec![
                "plan",
                "--budgets",
                "1e12",
                "--spread",
                "0.5",
                "--out",
                s.to_str().unwrap(),
            ],
            "--spread",
        ),
        (
            vec![
                "plan",
                "--budgets",
                "1e12,3e12,1e12",
                "--out",
                s.to_str().unwrap(),
            ],
            "twice",
        ),
        (
            vec!["plan", "--budgets", "1e40", "--out", s.to_str().unwrap()],
            "1e40",
        ),
        (
            vec![
                "plan",
                "--budgets",
                "1e12",
                "--seeds",
                "0",
                "--out",
                s.to_str().unwrap(),
            ],
            "--seeds must be at least 1",
        ),
        (
            vec!["fit", p.to_str().unwrap(), "--delta", "0"],
            "delta (the Huber threshold) must be positive, got 0",
        ),
        (
            vec![
                "run",
                "--budget-minutes",
                "0.2",
                "--out",
                s.to_str().unwrap(),
            ],
            "--budget-minutes 0.2: the smallest study",
        ),
        (
            vec!["run", "--budget-minutes", "0", "--out", s.to_str().unwrap()],
            "--budget-minutes must be a positive number of minutes, got 0",
        ),
    ];
    for (args, says) in cases {
        let o = isoflop(&args);
        let e = stderr(&o);
        assert_eq!(code(&o), 2, "{args:?}: {e}");
        assert!(e.lines().next().unwrap().contains(says), "{args:?}: {e}");
        assert!(
            !e.contains("hint: Approach 2"),
            "{args:?}: an unrelated hint: {e}"
        );
        assert!(!s.exists());
    }
}

#[test]
fn plot_refuses_a_folder_of_other_files_and_leaves_no_stale_figure() {
    let d = tmpdir("plot");
    let mut rows = Vec::new();
    for n in [1e6, 2e6, 4e6, 8e6] {
        for t in [1e7, 3e7, 1e8] {
            rows.push((n, t, law(n, t) * (1.0 + 0.002 * ((n * t).ln().sin()))));
        }
    }
    let p = table(&d, "ok.csv", &rows);
    let figs = d.join("figs");
    std::fs::create_dir_all(&figs).unwrap();
    std::fs::write(figs.join("thesis.tex"), "mine").unwrap();
    let o = isoflop(&[
        "plot",
        p.to_str().unwrap(),
        "--out",
        figs.to_str().unwrap(),
        "--boot",
        "0",
    ]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("thesis.tex") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(&figs).unwrap().count(), 1);
    // A figure an earlier plot drew and this one cannot is removed: a table of training
    // curves draws Figure 1, one of final points cannot.
    std::fs::remove_file(figs.join("thesis.tex")).unwrap();
    let mut curves = String::from("run,step,params,tokens,loss\n");
    for (k, (n, t, _)) in rows.iter().enumerate() {
        for s in 1..=4 {
            let ts = t * s as f64 / 4.0;
            curves += &format!("r{k},{s},{n},{ts},{}\n", law(*n, ts));
        }
    }
    let c = d.join("curves.csv");
    std::fs::write(&c, curves).unwrap();
    let o = isoflop(&[
        "plot",
        c.to_str().unwrap(),
        "--out",
        figs.to_str().unwrap(),
        "--boot",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        figs.join("fig1_training_curves.svg").exists(),
        "{}",
        stderr(&o)
    );
    let o = isoflop(&[
        "plot",
        p.to_str().unwrap(),
        "--out",
        figs.to_str().unwrap(),
        "--boot",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !figs.join("fig1_training_curves.svg").exists(),
        "{}",
        stderr(&o)
    );
    // With --force it writes beside other files.
    std::fs::write(figs.join("thesis.tex"), "mine").unwrap();
    let o = isoflop(&[
        "plot",
        p.to_str().unwrap(),
        "--out",
        figs.to_str().unwrap(),
        "--boot",
        "0",
        "--force",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(figs.join("thesis.tex")).unwrap(),
        "mine"
    );
}
