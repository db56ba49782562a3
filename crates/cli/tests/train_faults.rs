//! Faults of isoflop's own trainer inside a sweep: a trainer killed mid-run is resumed from
//! its checkpoint by the next sweep (and ends as an uninterrupted run), and a full disk is one
//! readable line in the run's summary and in the sweep's output.
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;
use common::{corpus, isoflop, losses, stderr, stdout};

fn tmpdir(name: &str) -> PathBuf {
    common::tmpdir("train-faults", name)
}

/// A one-run plan (a few seconds of training) with results in `results`.
fn one_run(dir: &Path, results: &Path) -> PathBuf {
    let data = corpus(dir);
    let f = dir.join("sweep.toml");
    let o = isoflop(&[
        "plan",
        "--budgets",
        "3e11",
        "--sizes-per-budget",
        "1",
        "--context",
        "32",
        "--batch",
        "8",
        "--out",
        f.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    f
}

/// Unmounts its folder when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mounts a tmpfs with `options` at `dir`, or says why the test skips (it needs root).
fn tmpfs(dir: &Path, options: &str) -> Option<Mounted> {
    std::fs::create_dir_all(dir).unwrap();
    let m = Command::new("mount")
        .args(["-t", "tmpfs", "-o", options, "tmpfs"])
        .arg(dir)
        .output();
    if !m.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot mount a tmpfs ({options}) here (needs root): {m:?}");
        return None;
    }
    Some(Mounted(dir.to_path_buf()))
}

/// The sweep's line for the failed run (`[k/n] run ID failed: ...`).
fn failed_line(err: &str) -> &str {
    err.lines()
        .find(|l| l.contains("failed:") && l.contains("] run "))
        .unwrap_or_else(|| panic!("{err}"))
}

fn the_run(results: &Path) -> PathBuf {
    std::fs::read_dir(results)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.file_name().unwrap() != "logs")
        .unwrap()
}

/// Waits (at most a minute) for a run folder under `results` with a checkpoint.
fn wait_for_checkpoint(results: &Path) -> PathBuf {
    let t0 = Instant::now();
    loop {
        if let Some(r) = std::fs::read_dir(results).ok().and_then(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .find(|p| p.join("checkpoint.json").exists())
        }) {
            return r;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The trainer's pid, from the lease it holds on `run`.
fn lease_pid(run: &Path) -> i32 {
    let lease = std::fs::read_to_string(run.join(".lease")).unwrap();
    lease.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The two runs' curves are equal (to 1e-5 a loss) step for step.
fn assert_same_curve(a: &Path, b: &Path) {
    let (la, lb) = (losses(a), losses(b));
    assert_eq!(la.len(), lb.len());
    for ((s1, l1), (s2, l2)) in la.iter().zip(&lb) {
        assert_eq!(s1, s2);
        assert!((l1 - l2).abs() < 1e-5, "step {s1}: {l1} vs {l2}");
    }
}

#[test]
fn a_trainer_killed_mid_run_resumes_from_its_checkpoint_on_the_next_sweep() {
    let a = tmpdir("ref");
    let fa = one_run(&a, &a.join("runs"));
    assert!(isoflop(&["sweep", fa.to_str().unwrap()]).status.success());
    let b = tmpdir("killed");
    let fb = one_run(&b, &b.join("runs"));
    let sweep = Command::new(common::bin())
        .args(["sweep", fb.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for a checkpoint, then kill the trainer (not the sweep), as the OOM killer would.
    let run = wait_for_checkpoint(&b.join("runs"));
    let pid = lease_pid(&run);
    // SAFETY: a signal to the trainer this test's sweep started.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let o = sweep.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        !run.join("summary.json").exists() || {
            let s: serde_json::Value =
                serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
            s["transient"] == true
        }
    );
    let st = stdout(&isoflop(&["status", fb.to_str().unwrap()]));
    assert!(
        st.contains("signal 9") && st.contains("resumes from its checkpoint at step"),
        "{st}"
    );
    let o = isoflop(&["sweep", fb.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 runs trained"), "{}", stderr(&o));
    assert_same_curve(&the_run(&a.join("runs")), &run);
}

#[test]
fn a_full_disk_is_one_readable_line_in_the_summary_and_the_sweep_output() {
    let d = tmpdir("full");
    let disk = d.join("disk");
    // A 400 kB file system: the first checkpoint does not fit.
    let Some(_mounted) = tmpfs(&disk, "size=400k") else {
        return;
    };
    let f = one_run(&d, &disk.join("runs"));
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let line = failed_line(&err);
    assert!(
        line.contains("No space left on device") && line.contains("checkpoint.ot"),
        "{err}"
    );
    let s: serde_json::Value = serde_json::from_slice(
        &std::fs::read(the_run(&disk.join("runs")).join("summary.json")).unwrap(),
    )
    .unwrap();
    let reason = s["reason"].as_str().unwrap();
    assert!(
        reason.contains("No space left on device") && !reason.contains('\n'),
        "{reason}"
    );
    assert_eq!(s["transient"], true);
}

#[test]
fn a_read_only_run_folder_is_one_readable_line_in_the_sweep_output() {
    let d = tmpdir("ro");
    let f = one_run(&d, &d.join("runs"));
    let id = std::fs::read_to_string(&f)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("id = \"")
                .map(|s| s.trim_end_matches('"').to_string())
        })
        .unwrap();
    let run = d.join("runs").join(&id);
    let Some(mounted) = tmpfs(&run, "size=1m,ro") else {
        return;
    };
    let o = isoflop(&["sweep", f.to_str().unwrap()]);
    drop(mounted);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let line = failed_line(&err);
    assert!(
        line.contains("Read-only file system") && line.contains(".lease"),
        "{line}"
    );
}

#[test]
fn an_impossible_model_is_refused_before_anything_is_written() {
    let d = tmpdir("huge");
    let data = corpus(&d);
    let out = d.join("huge");
    let o = isoflop(&[
        "train",
        "--params",
        "1e12",
        "--tokens",
        "1e6",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("needs about") && stderr(&o).contains("--force"),
        "{}",
        stderr(&o)
    );
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "files left behind"
    );
}

#[test]
fn trainer_threads_far_above_the_cores_are_refused() {
    let d = tmpdir("threads");
    let data = corpus(&d);
    let out = d.join("r");
    let o = isoflop(&[
        "train",
        "--params",
        "1e5",
        "--tokens",
        "1e4",
        "--threads",
        "100000",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--threads 100000"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn ctrl_c_of_a_trainer_inside_a_sweep_is_transient_and_the_next_sweep_resumes_it() {
    let a = tmpdir("int-ref");
    let fa = one_run(&a, &a.join("runs"));
    assert!(isoflop(&["sweep", fa.to_str().unwrap()]).status.success());
    let b = tmpdir("int");
    let fb = one_run(&b, &b.join("runs"));
    let sweep = Command::new(common::bin())
        .args(["sweep", fb.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let run = wait_for_checkpoint(&b.join("runs"));
    // The lease names the trainer (it took the lease over from the sweep).
    let pid = lease_pid(&run);
    assert_ne!(
        pid as u32,
        sweep.id(),
        "the lease names the sweep, not the trainer"
    );
    // SAFETY: a signal to the trainer this test's sweep started.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let o = sweep.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["transient"], true, "{s}");
    assert!(s["reason"].as_str().unwrap().contains("interrupted"), "{s}");
    let st = stdout(&isoflop(&["status", fb.to_str().unwrap()]));
    assert!(
        st.contains("the next sweep retries it") && st.contains("resumes from its checkpoint"),
        "{st}"
    );
    let o = isoflop(&["sweep", fb.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("1 runs trained"), "{}", stderr(&o));
    assert_same_curve(&the_run(&a.join("runs")), &run);
}
