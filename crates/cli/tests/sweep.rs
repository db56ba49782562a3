//! Sweeps end to end: SIGKILL at random moments then restart equals an uninterrupted sweep;
//! two sweeps on one folder never train a run twice; a crashing run is marked failed and the
//! rest go on; an external trainer's runs are dispatched and collected like our own; and a
//! real single-node Slurm runs the job array (skipped, saying so, where Slurm cannot start).
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{bin, corpus, isoflop, losses};

fn tmpdir(name: &str) -> PathBuf {
    common::tmpdir("sweep", name)
}

/// A small IsoFLOP plan: two budgets, a few tiny models, about a second each.
fn plan(dir: &Path, extra: &[&str]) -> PathBuf {
    let data = corpus(dir);
    let file = dir.join("sweep.toml");
    let mut args = vec![
        "plan",
        "--budgets",
        "1.5e11,3e11",
        "--sizes-per-budget",
        "3",
        "--spread",
        "4",
        "--context",
        "32",
        "--batch",
        "8",
        "--out",
        file.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = isoflop(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    file
}

fn run_ids(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .filter_map(|l| l.strip_prefix("id = \""))
        .map(|s| s.trim_end_matches('"').to_string())
        .collect()
}

fn curve(results: &Path, id: &str) -> Vec<(u64, f64)> {
    losses(&results.join(id))
}

fn trained(o: &Output) -> usize {
    let e = String::from_utf8_lossy(&o.stderr);
    e.lines()
        .find_map(|l| {
            l.split(" runs trained")
                .next()
                .and_then(|n| n.trim().parse().ok())
                .filter(|_| l.contains("runs trained"))
        })
        .unwrap_or_else(|| panic!("no summary line in {e}"))
}

#[test]
fn sigkill_at_random_moments_then_restart_equals_an_uninterrupted_sweep() {
    let a = tmpdir("kill-a");
    let fa = plan(&a, &[]);
    let o = isoflop(&["sweep", fa.to_str().unwrap(), "--jobs", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids = run_ids(&fa);
    assert!(ids.len() >= 4, "{ids:?}");
    let b = tmpdir("kill-b");
    let fb = plan(&b, &[]);
    let mut finished_before: Vec<(String, std::time::SystemTime)> = Vec::new();
    for round in 0..3u64 {
        let mut child = Command::new(bin())
            .args(["sweep", fb.to_str().unwrap(), "--jobs", "2"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        std::thread::sleep(Duration::from_millis(300 + (nanos + round * 7907) % 1500));
        child.kill().unwrap(); // SIGKILL: its trainers die with it (PR_SET_PDEATHSIG)
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // Runs that had finished before this round were not touched by it.
        for (id, t) in &finished_before {
            let now = std::fs::metadata(b.join("runs").join(id).join("summary.json"))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(&now, t, "round {round}: finished run {id} was rewritten");
        }
        finished_before = ids
            .iter()
            .filter_map(|id| {
                std::fs::metadata(b.join("runs").join(id).join("summary.json"))
                    .ok()
                    .map(|m| (id.clone(), m.modified().unwrap()))
            })
            .collect();
        // No temporary file is ever left where a reader would take it for a result.
        for id in &ids {
            if let Ok(rd) = std::fs::read_dir(b.join("runs").join(id)) {
                for e in rd.flatten() {
                    let n = e.file_name().to_string_lossy().into_owned();
                    assert!(
                        [
                            "config.json",
                            "curve.csv",
                            "summary.json",
                            "checkpoint.ot",
                            "checkpoint.json",
                            "checkpoint.prev.ot",
                            "checkpoint.prev.json",
                            "progress.json",
                            ".lease"
                        ]
                        .contains(&n.as_str())
                            || n.contains(".tmp"),
                        "{n}"
                    );
                }
            }
        }
    }
    let o = isoflop(&["sweep", fb.to_str().unwrap(), "--jobs", "2"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for id in &ids {
        assert!(
            b.join("runs").join(id).join("curve.csv").exists(),
            "{id} has no curve after the last sweep:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let (ca, cb) = (curve(&a.join("runs"), id), curve(&b.join("runs"), id));
        assert_eq!(ca.len(), cb.len(), "{id}");
        for ((s1, l1), (s2, l2)) in ca.iter().zip(&cb) {
            assert_eq!(s1, s2);
            assert!((l1 - l2).abs() < 1e-5, "{id} step {s1}: {l1} vs {l2}");
        }
    }
    // A second pass finds nothing to do.
    let o = isoflop(&["sweep", fb.to_str().unwrap(), "--jobs", "2"]);
    assert_eq!(trained(&o), 0);
}

#[test]
fn two_sweeps_on_one_folder_never_train_a_run_twice() {
    let d = tmpdir("two");
    let f = plan(&d, &[]);
    let n = run_ids(&f).len();
    let spawn = || {
        Command::new(bin())
            .args(["sweep", f.to_str().unwrap(), "--jobs", "2"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (p1, p2) = (spawn(), spawn());
    let (o1, o2) = (
        p1.wait_with_output().unwrap(),
        p2.wait_with_output().unwrap(),
    );
    assert!(
        o1.status.success() && o2.status.success(),
        "first: {:?}\n{}\nsecond: {:?}\n{}",
        o1.status,
        String::from_utf8_lossy(&o1.stderr),
        o2.status,
        String::from_utf8_lossy(&o2.stderr)
    );
    assert_eq!(
        trained(&o1) + trained(&o2),
        n,
        "{}\n{}",
        String::from_utf8_lossy(&o1.stderr),
        String::from_utf8_lossy(&o2.stderr)
    );
    let o = isoflop(&["status", f.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout)
            .matches("finished")
            .count(),
        n
    );
}

#[test]
fn a_crashing_run_is_marked_failed_and_the_rest_go_on() {
    let d = tmpdir("crash");
    // An external command: our own trainer, except that one run crashes.
    let f = plan(&d, &[]);
    let ids = run_ids(&f);
    let bad = ids[1].clone();
    let template = format!(
        "if [ {{id}} = {bad} ]; then echo 'CUDA out of memory (simulated)' >&2; exit 3; fi; exec {} train --layers {{layers}} --d-model {{d_model}} --heads {{heads}} --tokens {{tokens}} --batch {{batch}} --context {{context}} --data {{data}} --run {{id}} --resume --quiet --threads 1 --out {{out}}",
        bin()
    );
    let text = std::fs::read_to_string(&f).unwrap().replacen(
        "[defaults]",
        &format!("command = {template:?}\n\n[defaults]"),
        1,
    );
    std::fs::write(&f, text).unwrap();
    let o = isoflop(&["sweep", f.to_str().unwrap(), "--jobs", "2"]);
    // The sweep went on with the others, then says, last and with exit code 1, what failed.
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(trained(&o), ids.len() - 1);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let last = err.lines().last().unwrap();
    assert!(
        last.contains("1 run(s) failed") && last.contains(&bad) && last.contains("summary.json"),
        "{err}"
    );
    let st =
        String::from_utf8_lossy(&isoflop(&["status", f.to_str().unwrap()]).stdout).into_owned();
    let line = st.lines().find(|l| l.starts_with(&bad)).unwrap();
    // Exit status 3 is no verdict on the run: the next sweep retries it.
    assert!(
        line.contains("failed")
            && line.contains("out of memory")
            && line.contains("the next sweep retries it"),
        "{line}"
    );
    let o = isoflop(&["collect", f.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("{bad} (unfinished)")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The table holds the finished runs' curves and not the crashed one.
    let table = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let t = isoflop_core::RunTable::read(&table).unwrap();
    let runs: Vec<String> = t.final_rows().into_iter().filter_map(|r| r.run).collect();
    assert_eq!(runs.len(), ids.len() - 1);
    assert!(!runs.contains(&bad));
}

#[test]
fn an_external_trainer_is_dispatched_and_collected() {
    // A stand-in for a user's trainer (another framework): it writes the three run-record
    // files for a made-up loss curve, from the placeholders it is given.
    let d = tmpdir("external");
    let script = d.join("fake_trainer.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
# usage: fake_trainer.sh OUT ID PARAMS TOKENS
out=$1; id=$2; n=$3; d=$4
mkdir -p "$out"
echo '{"note": "written by an external trainer"}' > "$out/config.json"
{
  echo "run,step,params,tokens,flops,loss"
  for s in 1 2 3 4; do
    t=$((d * s / 4))
    echo "$id,$s,$n,$t,$((6 * n * t)),$(awk "BEGIN { print 2 + 400 / ($n ^ 0.34) + 400 / ($t ^ 0.28) }")"
  done
} > "$out/curve.csv"
loss=$(awk "BEGIN { print 2 + 400 / ($n ^ 0.34) + 400 / ($d ^ 0.28) }")
cat > "$out/summary.json" <<JSON
{"run": "$id", "status": "finished", "reason": null, "failed_at_step": null, "steps": 4, "params": $n, "tokens": $d, "flops": $((6 * n * d)), "final_loss": $loss, "final_eval_loss": null, "secs": 0.1, "tokens_per_sec": 1.0}
JSON
"#,
    )
    .unwrap();
    let f = plan(
        &d,
        &[
            "--command",
            &format!(
                "sh {} {{out}} {{id}} {{params}} {{tokens}}",
                script.display()
            ),
        ],
    );
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ids = run_ids(&f);
    assert_eq!(trained(&o), ids.len());
    let o = isoflop(&["collect", f.to_str().unwrap()]);
    let table = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
    let text = std::fs::read_to_string(&table).unwrap();
    assert_eq!(text.lines().count(), 1 + 4 * ids.len());
    let row: Vec<&str> = text.lines().nth(4).unwrap().split(',').collect();
    assert_eq!(
        text.lines().next().unwrap(),
        "run,step,params,tokens,flops,loss,budget,final_loss"
    );
    assert_eq!(
        row[6].parse::<f64>().unwrap(),
        1.5e11,
        "budget column: {row:?}"
    );
    // The external trainer wrote no held-out loss: the final loss is its summary's final_loss.
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(d.join("runs").join(row[0]).join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        row[7].parse::<f64>().unwrap(),
        summary["final_loss"].as_f64().unwrap()
    );
}

#[test]
fn slurm_job_array_runs_the_sweep_and_chains_the_fit() {
    if common::slurm().is_none() {
        return;
    }
    let d = tmpdir("slurm");
    let f = plan(&d, &[]);
    let n = run_ids(&f).len();
    let o = isoflop(&[
        "sweep",
        f.to_str().unwrap(),
        "--executor",
        "slurm",
        "--throttle",
        "2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // One array of every run (no time limits asked: one group), throttled to 2.
    let job = common::array_jobs(&common::stdout(&o))[0].clone();
    let show = common::scontrol_show(&job);
    assert!(show.contains("ArrayTaskThrottle=2"), "{show}");
    let t0 = Instant::now();
    loop {
        let st =
            String::from_utf8_lossy(&isoflop(&["status", f.to_str().unwrap()]).stdout).into_owned();
        let fit_logs: Vec<PathBuf> = std::fs::read_dir(d.join("runs/slurm"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("fit_"))
            .collect();
        if st.matches("finished").count() == n
            && fit_logs.iter().any(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .contains("runs.csv")
            })
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(240),
            "Slurm did not finish in 4 minutes:\n{st}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // The study job ran after the array (afterany), one isoflop command (`run --sweep
    // --no-train`): it collected every run into the study folder's table (this plan is too
    // small for a fit, which the job's log says).
    let log: String = std::fs::read_dir(d.join("runs/slurm"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("fit_"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(log.contains("runs/study/runs.csv"), "{log}");
    let table = std::fs::read_to_string(d.join("runs/study/runs.csv")).unwrap();
    let runs: std::collections::HashSet<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(runs.len(), n);
}
