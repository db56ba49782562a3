//! `plan --design wsd` sweeps end to end: trunks and cooldown branches run on the local pool
//! (a line per run started and ended in a log), a SIGKILL of the sweep at random moments
//! then a restart gives the curves of an uninterrupted sweep with no ended run trained
//! again, a branch whose trunk failed fails with the trunk's reason, and a real single-node
//! Slurm honours the branches' dependencies on their trunks.
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin, corpus, isoflop, losses};

/// Two budgets, two tiny models: two trunks, each with two branches, about 20 s on 2 cores.
fn plan(dir: &Path) -> PathBuf {
    plan_with(dir, "5e10,1e11", &[], "4 runs and 2 trunks")
}

/// A tiny wsd plan on `budgets` with `extra` options, whose summary line says `expect`.
fn plan_with(dir: &Path, budgets: &str, extra: &[&str], expect: &str) -> PathBuf {
    let data = corpus(dir);
    let file = dir.join("sweep.toml");
    let mut args = vec![
        "plan",
        "--design",
        "wsd",
        "--budgets",
        budgets,
        "--sizes-per-budget",
        "2",
        "--spread",
        "3",
        "--context",
        "32",
        "--batch",
        "8",
        "--eval-every",
        "0",
        "--out",
        file.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ];
    args.extend(extra);
    let o = isoflop(&args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(expect) && err.contains("FLOPs spent for"),
        "{err}"
    );
    file
}

fn sweep(file: &Path) -> Output {
    let o = Command::new(bin())
        .args(["sweep", file.to_str().unwrap(), "--jobs", "2"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn toml(file: &Path) -> toml::Value {
    toml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

/// (id, trunk, at_tokens) of every run.
fn runs(file: &Path) -> Vec<(String, Option<String>, Option<u64>)> {
    toml(file)["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r.get("trunk").map(|t| t.as_str().unwrap().to_string()),
                r.get("at_tokens").map(|t| t.as_integer().unwrap() as u64),
            )
        })
        .collect()
}

fn summary_time(results: &Path, id: &str) -> Option<std::time::SystemTime> {
    std::fs::metadata(results.join(id).join("summary.json"))
        .and_then(|m| m.modified())
        .ok()
}

#[test]
fn a_wsd_sweep_killed_at_random_moments_then_restarted_equals_an_uninterrupted_one() {
    let a = common::tmpdir("wsd-sweep", "a");
    let fa = plan(&a);
    let ids = runs(&fa);
    let o = sweep(&fa);
    // Its output is a pipe, not a terminal: a line per run started and per run ended.
    let err = String::from_utf8_lossy(&o.stderr);
    for (id, _, _) in &ids {
        assert!(err.contains(&format!("run {id} started")), "{err}");
        assert!(err.contains(&format!("run {id} finished")), "{err}");
    }
    assert!(err.contains("s left"), "{err}");
    // A branch's curve is its trunk's up to the branch point, then its own.
    let ra = a.join("runs");
    for (id, trunk, at) in &ids {
        let (Some(trunk), Some(at)) = (trunk, at) else {
            continue;
        };
        let (cb, ct) = (losses(&ra.join(id)), losses(&ra.join(trunk)));
        let k = cb.iter().position(|r| r.0 * 256 > *at).unwrap();
        assert!(k > 0 && cb[..k] == ct[..k], "{id}");
    }
    // The fit's table holds the branches and not the trunks.
    let o = isoflop(&["collect", fa.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("2 trunk(s) of cooldown branches not in the table"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let table = std::fs::read_to_string(ra.join("runs.csv")).unwrap();
    let in_table: std::collections::BTreeSet<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let branches: std::collections::BTreeSet<&str> = ids
        .iter()
        .filter(|r| r.1.is_some())
        .map(|r| r.0.as_str())
        .collect();
    assert_eq!(in_table, branches);

    let b = common::tmpdir("wsd-sweep", "b");
    let fb = plan(&b);
    let rb = b.join("runs");
    let mut ended: Vec<(String, std::time::SystemTime)> = Vec::new();
    for round in 0..4u64 {
        let mut child = Command::new(bin())
            .args(["sweep", fb.to_str().unwrap(), "--jobs", "2"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        std::thread::sleep(Duration::from_millis(1500 + (nanos + round * 7907) % 3000));
        child.kill().unwrap(); // SIGKILL: its trainers die with it (PR_SET_PDEATHSIG)
        child.wait().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // No run that had ended was trained again.
        for (id, t) in &ended {
            assert_eq!(
                summary_time(&rb, id).as_ref(),
                Some(t),
                "round {round}: {id} was trained again"
            );
        }
        ended = ids
            .iter()
            .filter_map(|(id, _, _)| summary_time(&rb, id).map(|t| (id.clone(), t)))
            .collect();
    }
    let o = sweep(&fb);
    for (id, t) in &ended {
        assert_eq!(
            summary_time(&rb, id).as_ref(),
            Some(t),
            "{id} was trained again"
        );
    }
    let err = String::from_utf8_lossy(&o.stderr);
    for (id, _, _) in &ids {
        let (ca, cb) = (losses(&ra.join(id)), losses(&rb.join(id)));
        assert_eq!(ca.len(), cb.len(), "{id}: {err}");
        for ((s1, l1), (s2, l2)) in ca.iter().zip(&cb) {
            assert_eq!(s1, s2);
            assert!((l1 - l2).abs() < 1e-5, "{id} step {s1}: {l1} vs {l2}");
        }
    }
    // A second pass finds nothing to do.
    let o = sweep(&fb);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("0 runs trained"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_branch_whose_trunk_failed_fails_with_the_trunks_reason() {
    let d = common::tmpdir("wsd-sweep", "failed-trunk");
    let f = plan(&d);
    let ids = runs(&f);
    let trunk = ids
        .iter()
        .find(|r| r.0.ends_with("-trunk"))
        .unwrap()
        .0
        .clone();
    let dir = d.join("runs").join(&trunk);
    std::fs::create_dir_all(&dir).unwrap();
    // The trunk ended diverged (as a trainer would have written it).
    std::fs::write(
        dir.join("summary.json"),
        format!(
            r#"{{"run": "{trunk}", "status": "diverged", "reason": "loss became NaN at step 77", "failed_at_step": 77, "steps": 76, "params": 1, "tokens": 1, "flops": 1.0, "final_loss": null, "final_eval_loss": null, "secs": 1.0, "tokens_per_sec": 1.0}}"#
        ),
    )
    .unwrap();
    let o = isoflop(&["sweep", f.to_str().unwrap(), "--jobs", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let st =
        String::from_utf8_lossy(&isoflop(&["status", f.to_str().unwrap()]).stdout).into_owned();
    for (id, t, _) in &ids {
        let line = st.lines().find(|l| l.starts_with(id.as_str())).unwrap();
        if t.as_deref() == Some(trunk.as_str()) {
            assert!(
                line.contains("failed")
                    && line.contains(&format!("trunk {trunk} diverged"))
                    && line.contains("loss became NaN at step 77"),
                "{line}"
            );
        } else if id != &trunk {
            assert!(line.contains("finished"), "{line}");
        }
    }
}

#[test]
fn replicates_train_at_their_own_seeds_from_their_own_trunks() {
    let d = common::tmpdir("wsd-sweep", "seeds");
    let f = plan_with(&d, "5e10", &["--seeds", "2"], "4 runs and 4 trunks");
    // Replicates count from --seed; the first keeps the defaults' seed.
    let f2 = plan_with(
        &common::tmpdir("wsd-sweep", "seeds2"),
        "5e10",
        &["--seeds", "2", "--seed", "5"],
        "4 runs and 4 trunks",
    );
    let t = toml(&f2);
    assert_eq!(t["defaults"]["seed"].as_integer(), Some(5));
    let seeds: Vec<Option<i64>> = t["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("seed").map(|s| s.as_integer().unwrap()))
        .collect();
    assert_eq!(seeds, [[None; 4], [Some(6); 4]].concat());
    let ids = runs(&f);
    sweep(&f);
    let json = |id: &str, file: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(d.join("runs").join(id).join(file)).unwrap())
            .unwrap()
    };
    let mut pairs = 0;
    for (id, trunk, _) in ids
        .iter()
        .filter(|r| r.1.is_some() && !r.0.ends_with("-s1"))
    {
        let twin = format!("{id}-s1");
        let (c0, c1) = (json(id, "config.json"), json(&twin, "config.json"));
        assert_eq!(
            (c0["seed"].as_u64(), c1["seed"].as_u64()),
            (Some(0), Some(1))
        );
        assert_eq!(c0["branch"]["trunk"].as_str(), trunk.as_deref());
        assert_eq!(
            c1["branch"]["trunk"].as_str().map(String::from),
            trunk.as_ref().map(|t| format!("{t}-s1"))
        );
        assert_eq!(
            json(&format!("{}-s1", trunk.as_ref().unwrap()), "config.json")["seed"].as_u64(),
            Some(1)
        );
        // Another seed: other batches, another model, another loss.
        let (l0, l1) = (
            json(id, "summary.json")["final_loss"].as_f64().unwrap(),
            json(&twin, "summary.json")["final_loss"].as_f64().unwrap(),
        );
        assert!((l0 - l1).abs() > 1e-6, "{id}: {l0} {l1}");
        pairs += 1;
    }
    assert_eq!(pairs, 2);
}

#[test]
fn slurm_runs_branches_after_their_trunks() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-local.sh");
    let started = Command::new("bash").arg(&script).arg("start").output();
    if !started.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: a local Slurm could not start");
        return;
    }
    let d = common::tmpdir("wsd-sweep", "slurm");
    let f = plan(&d);
    let ids = runs(&f);
    let o = isoflop(&[
        "sweep",
        f.to_str().unwrap(),
        "--executor",
        "slurm",
        "--throttle",
        "2",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("2 branch arrays"), "{out}");
    let t0 = Instant::now();
    loop {
        let st =
            String::from_utf8_lossy(&isoflop(&["status", f.to_str().unwrap()]).stdout).into_owned();
        // A branch started before its trunk's checkpoint existed would fail ("has not yet
        // written its checkpoint"); with the dependency honoured every run finishes.
        assert!(!st.contains("failed"), "{st}");
        if st.matches("finished").count() == ids.len() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "Slurm did not finish in 5 minutes:\n{st}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    // Each branch ended after its trunk.
    let rd = d.join("runs");
    for (id, trunk, _) in &ids {
        if let Some(t) = trunk {
            assert!(
                summary_time(&rd, t).unwrap() <= summary_time(&rd, id).unwrap(),
                "{id}"
            );
        }
    }
}
