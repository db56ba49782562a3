//! The Slurm executor on a real cluster's terms, against the single-node Slurm that
//! `scripts/slurm-local.sh` starts: resources (partition, account, memory, CPUs, a time
//! limit per run, requeueing) reach every task, runs of different time limits go into
//! separate arrays, and a task sent its preemption signal checkpoints, requeues itself and
//! resumes to the curve of an uninterrupted run. Each test skips, saying so, without Slurm.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{fake_template, fake_trainer, isoflop, stderr, stdout};

fn tmpdir(name: &str) -> PathBuf {
    common::tmpdir("slurm", name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Waits until `isoflop status` says every run finished, or fails after `limit`.
fn wait_finished(file: &Path, runs: usize, limit: Duration, also: &dyn Fn()) {
    let t0 = Instant::now();
    loop {
        let st = stdout(&isoflop(&["status", s(file)]));
        if st.lines().filter(|l| l.contains(" finished")).count() == runs {
            return;
        }
        also();
        assert!(
            t0.elapsed() < limit,
            "Slurm did not finish in {limit:?}:\n{st}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn slurm_resources_reach_every_task_and_time_limits_split_arrays() {
    if common::slurm().is_none() {
        return;
    }
    let d = tmpdir("resources");
    let script = fake_trainer(&d);
    let file = d.join("sweep.toml");
    let o = isoflop(&[
        "plan",
        "--budgets",
        "1e12,2e13",
        "--sizes-per-budget",
        "2",
        "--context",
        "32",
        "--batch",
        "8",
        "--out",
        s(&file),
        "--command",
        &fake_template(&script),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The [slurm] table, with the options over part of it.
    let mut text = std::fs::read_to_string(&file).unwrap();
    text = text.replacen(
        "[[runs]]",
        "[slurm]\npartition = \"debug\"\naccount = \"lab1\"\nmem = \"200M\"\ntime = \"auto\"\nflops_per_sec = 1e8\nrequeue = true\nsignal = \"B:USR1@60\"\n\n[[runs]]",
        1,
    );
    std::fs::write(&file, text).unwrap();
    let o = isoflop(&[
        "sweep",
        s(&file),
        "--executor",
        "slurm",
        "--mem",
        "100M",
        "--cpus-per-task",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let jobs = common::array_jobs(&stdout(&o));
    assert_eq!(jobs.len(), 2, "one array per time limit: {}", stdout(&o));
    let shows: Vec<String> = jobs.iter().map(|j| common::scontrol_show(j)).collect();
    for show in &shows {
        for want in [
            "Partition=debug",
            "Account=lab1",
            "MinMemoryNode=100M",
            "CPUs/Task=1",
            "Requeue=1",
        ] {
            assert!(show.contains(want), "{want} missing:\n{show}");
        }
    }
    // time = auto at 1e8 FLOPs a second, times 3, rounded up the ladder: the two budgets'
    // runs take 1e12/1e8 x 3 = 500 min (480 is too short: 720) and 2e13/1e8 x 3 = 10,000
    // min (one week, 10,080), each from its own runs' spent FLOPs.
    let limits: Vec<&str> = shows
        .iter()
        .map(|t| {
            t.split("TimeLimit=")
                .nth(1)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(limits, ["12:00:00", "7-00:00:00"], "{shows:?}");
    let sbatch = std::fs::read_to_string(d.join("runs/slurm/sweep.sbatch")).unwrap();
    assert!(
        sbatch.contains("#SBATCH --signal=B:USR1@60") && sbatch.contains("--requeue"),
        "{sbatch}"
    );
    let runs = std::fs::read_to_string(&file)
        .unwrap()
        .matches("[[runs]]")
        .count();
    wait_finished(&file, runs, Duration::from_secs(180), &|| {});
    // A value that cannot reach sbatch safely is refused before anything is submitted.
    let o = isoflop(&[
        "sweep",
        s(&file),
        "--executor",
        "slurm",
        "--partition",
        "debug\n#SBATCH --wrap=x",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("partition"), "{}", stderr(&o));
}

#[cfg(feature = "train")]
#[test]
fn a_preempted_slurm_task_checkpoints_requeues_and_resumes_to_the_uninterrupted_curve() {
    if common::slurm().is_none() {
        return;
    }
    let plan = |dir: &Path| {
        let data = common::corpus(dir);
        let f = dir.join("sweep.toml");
        let o = isoflop(&[
            "plan",
            "--budgets",
            "1e12",
            "--sizes-per-budget",
            "1",
            "--context",
            "32",
            "--batch",
            "8",
            "--checkpoint-every",
            "50",
            "--out",
            s(&f),
            "--data",
            s(&data),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        f
    };
    let a = tmpdir("uninterrupted");
    let fa = plan(&a);
    assert!(isoflop(&["sweep", s(&fa)]).status.success());
    let b = tmpdir("preempted");
    let fb = plan(&b);
    let o = isoflop(&[
        "sweep",
        s(&fb),
        "--executor",
        "slurm",
        "--requeue",
        "--signal",
        "B:USR1@30",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let job = format!("{}_0", common::array_jobs(&stdout(&o))[0]);
    // Once the run has a checkpoint, send the task the signal Slurm sends before a time limit.
    let t0 = Instant::now();
    let run = loop {
        if let Some(r) = std::fs::read_dir(b.join("runs")).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .find(|p| p.join("checkpoint.json").exists())
        }) {
            break r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let sc = Command::new("scancel")
        .args(["--batch", "--signal=USR1", &job])
        .output()
        .unwrap();
    assert!(
        sc.status.success(),
        "{}",
        String::from_utf8_lossy(&sc.stderr)
    );
    // The task passes it on (as SIGTERM); the trainer checkpoints and stops (a transient
    // summary), the task requeues itself;
    // Slurm holds a requeued job for two minutes, which the test skips.
    let release = || {
        let _ = Command::new("scontrol")
            .args(["update", &format!("JobId={job}"), "StartTime=now"])
            .output();
    };
    wait_finished(&fb, 1, Duration::from_secs(240), &release);
    let show = common::scontrol_show(&job);
    assert!(show.contains("Restarts=1"), "{show}");
    let logs = std::fs::read_dir(b.join("runs/logs"))
        .unwrap()
        .flatten()
        .map(|e| e.path());
    let retried = logs
        .filter(|p| p.to_string_lossy().contains(".failed-"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect::<String>();
    assert!(
        retried.contains("interrupted by SIGTERM") && retried.contains("\"transient\": true"),
        "{retried}"
    );
    let first = |dir: &Path| {
        std::fs::read_dir(dir.join("runs"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("curve.csv").exists())
            .unwrap()
    };
    let (la, lb) = (common::losses(&first(&a)), common::losses(&run));
    assert_eq!(la.len(), lb.len());
    for ((s1, l1), (s2, l2)) in la.iter().zip(&lb) {
        assert_eq!(s1, s2);
        assert!((l1 - l2).abs() < 1e-5, "step {s1}: {l1} vs {l2}");
    }
}
