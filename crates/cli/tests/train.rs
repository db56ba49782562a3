//! `isoflop train` end to end: a SIGKILL at a random moment then --resume gives the curve of
//! an uninterrupted run; bad input is refused with a clear message and nothing overwritten.
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

mod common;
use common::{corpus, isoflop, losses};

fn tmpdir(name: &str) -> PathBuf {
    common::tmpdir("cli-train", name)
}

fn base_args(data: &Path, out: &Path) -> Vec<String> {
    [
        "train",
        "--layers",
        "2",
        "--d-model",
        "64",
        "--heads",
        "2",
        "--context",
        "32",
        "--batch",
        "8",
        "--tokens",
        "51200",
        "--threads",
        "1",
        "--log-every",
        "1",
        "--eval-every",
        "50",
        "--eval-batches",
        "2",
        "--checkpoint-every",
        "7",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "--data".into(),
        data.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ])
    .collect()
}

#[test]
fn sigkill_at_a_random_moment_then_resume_equals_an_uninterrupted_run() {
    let d = tmpdir("kill");
    let data = corpus(&d);
    let a = d.join("a");
    let o = isoflop(&base_args(&data, &a));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let reference = losses(&a);
    assert_eq!(reference.len(), 200);
    for trial in 0..3u64 {
        let b = d.join(format!("b{trial}"));
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64;
        let wait = Duration::from_millis(150 + (nanos + trial * 7919) % 900);
        let mut child = Command::new(common::bin())
            .args(base_args(&data, &b))
            .spawn()
            .unwrap();
        std::thread::sleep(wait);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut args = base_args(&data, &b);
        args.push("--resume".into());
        let o = isoflop(&args);
        assert!(
            o.status.success(),
            "trial {trial} after {wait:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let got = losses(&b);
        assert_eq!(got.len(), reference.len(), "trial {trial} after {wait:?}");
        for ((s1, l1), (s2, l2)) in reference.iter().zip(&got) {
            assert_eq!(s1, s2);
            assert!(
                (l1 - l2).abs() < 1e-5,
                "trial {trial} after {wait:?}, step {s1}: {l1} vs {l2}"
            );
        }
        let names: Vec<String> = std::fs::read_dir(&b)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
    }
}

#[test]
fn bad_training_input_is_refused_clearly() {
    let d = tmpdir("bad");
    let data = corpus(&d);
    std::fs::write(d.join("empty.txt"), "").unwrap();
    std::fs::write(d.join("short.txt"), "too short").unwrap();
    std::fs::write(d.join("odd.bin"), [0u8, 1, 2]).unwrap();
    std::fs::write(d.join("big.bin"), [0u8, 1, 0, 2].repeat(100)).unwrap();
    let run = |extra: &[&str], data: &Path, out: &str| {
        let mut a = base_args(data, &d.join(out));
        a.extend(extra.iter().map(|s| s.to_string()));
        isoflop(&a)
    };
    let cases: Vec<(Output, &str)> = vec![
        (
            run(&[], &d.join("missing.txt"), "o1"),
            "missing.txt: no such file",
        ),
        (run(&[], &d.join("empty.txt"), "o2"), "the corpus is empty"),
        (run(&[], &d.join("short.txt"), "o3"), "too few"),
        (run(&[], &d.join("odd.bin"), "o4"), "even length"),
        (
            run(&["--vocab", "256"], &d.join("big.bin"), "o5"),
            "outside the vocabulary of 256",
        ),
    ];
    let mut heads = base_args(&data, &d.join("o6"));
    let i = heads.iter().position(|s| s == "--heads").unwrap();
    heads[i + 1] = "3".into();
    let cases: Vec<(Output, &str)> = cases
        .into_iter()
        .chain([(isoflop(&heads), "3 heads do not divide d_model 64")])
        .collect();
    for (o, want) in cases {
        assert_eq!(
            o.status.code(),
            Some(2),
            "{want}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "wanted '{want}' in {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = isoflop(
        &[
            "train",
            "--params",
            "1000",
            "--tokens",
            "1e4",
            "--data",
            data.to_str().unwrap(),
            "--out",
            d.join("o7").to_str().unwrap(),
        ]
        .map(String::from),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("below the smallest one-layer model"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // A folder holding a different run keeps its files.
    let out = d.join("held");
    assert!(isoflop(&base_args(&data, &out)).status.success());
    let before = std::fs::read(out.join("curve.csv")).unwrap();
    let mut other = base_args(&data, &out);
    other.extend(["--lr".into(), "1e-4".into()]);
    let o = isoflop(&other);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("holds a different run"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(out.join("curve.csv")).unwrap(), before);
}

#[test]
fn trained_runs_are_a_run_table_for_fit() {
    // Four runs' folders read as one table: each curve.csv carries run, params, tokens,
    // flops and loss, and `isoflop fit DIR` reads the finished runs' curves together.
    let d = tmpdir("fit");
    let data = corpus(&d);
    let runs = d.join("runs");
    for width in ["32", "64", "96", "128"] {
        let mut a = base_args(&data, &runs.join(format!("w{width}")));
        let i = a.iter().position(|s| s == "--d-model").unwrap();
        a[i + 1] = width.into();
        assert!(isoflop(&a).status.success());
    }
    // An unfinished run in the folder is left out and named.
    std::fs::create_dir_all(runs.join("partial")).unwrap();
    std::fs::write(
        runs.join("partial/curve.csv"),
        "run,step,params,tokens,flops,loss,lr,secs,eval_loss\npartial,1,10,10,600,5,0.1,0.1,\n",
    )
    .unwrap();
    let o = isoflop(&[
        "fit".into(),
        runs.display().to_string(),
        "--approach".into(),
        "1".into(),
        "--boot".into(),
        "20".into(),
        "--json".into(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rows"].as_u64(), Some(800));
    assert_eq!(v["approach1"]["fitted"]["runs"].as_u64(), Some(4));
    assert!(
        v["notes"].to_string().contains("partial (unfinished"),
        "{}",
        v["notes"]
    );
}

#[test]
fn ctrl_c_leaves_a_checkpoint_and_resume_finishes_the_same_run() {
    let d = tmpdir("sigint");
    let data = corpus(&d);
    // A longer run than the other tests' (2,000 steps, a few seconds), so Ctrl-C lands in it.
    let long = |out: &Path| {
        let mut a = base_args(&data, out);
        let i = a.iter().position(|s| s == "--tokens").unwrap();
        a[i + 1] = "512000".into();
        a
    };
    let a = d.join("a");
    assert!(isoflop(&long(&a)).status.success());
    let b = d.join("b");
    let mut args = long(&b);
    // No periodic checkpoints: the one found afterwards must come from Ctrl-C.
    let i = args.iter().position(|s| s == "--checkpoint-every").unwrap();
    args[i + 1] = "0".into();
    let child = Command::new(common::bin())
        .args(&args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it has started training (its progress file appears), then press Ctrl-C.
    let t0 = std::time::Instant::now();
    while !b.join("progress.json").exists() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // Interrupted, not finished: a transient failure (the next sweep resumes it), exit 130.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["status"], "failed",
        "the run finished before Ctrl-C arrived"
    );
    assert_eq!(summary["transient"], true, "{summary}");
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("checkpoint saved") && err.contains("--resume"),
        "{err}"
    );
    assert!(b.join("checkpoint.ot").exists());
    let mut resume = args.clone();
    resume.push("--resume".into());
    assert!(isoflop(&resume).status.success());
    let (la, lb) = (losses(&a), losses(&b));
    assert_eq!(la.len(), lb.len());
    for ((s1, l1), (s2, l2)) in la.iter().zip(&lb) {
        assert_eq!(s1, s2);
        assert!((l1 - l2).abs() < 1e-5, "step {s1}: {l1} vs {l2}");
    }
}

#[test]
fn a_wsd_schedule_is_recorded_in_the_config_and_the_curves_lr_column() {
    let d = tmpdir("wsd");
    let data = corpus(&d);
    let out = d.join("run");
    let mut args = base_args(&data, &out);
    let i = args.iter().position(|a| a == "51200").unwrap();
    args[i] = "12800".into(); // 50 steps of 8 x 32 tokens
    args.extend(
        [
            "--schedule",
            "wsd",
            "--cooldown-frac",
            "0.2",
            "--cooldown-shape",
            "linear",
            "--warmup",
            "5",
            "--lr",
            "2e-3",
            "--min-lr-ratio",
            "0.1",
        ]
        .map(String::from),
    );
    let o = isoflop(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["schedule"], "wsd");
    assert_eq!(config["cooldown_shape"], "linear");
    assert_eq!(config["cooldown_frac"], 0.2);
    let text = std::fs::read_to_string(out.join("curve.csv")).unwrap();
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "lr").unwrap();
    let lr: Vec<f64> = rows
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap())
        .collect();
    assert_eq!(lr.len(), 50);
    // Warm-up over 5 steps, the peak over steps 5 to 40, the cooldown over the last 10
    // steps to 10% of the peak, falling linearly (equal steps).
    assert!(lr[..4].windows(2).all(|w| w[0] < w[1]), "{lr:?}");
    assert!(lr[4..=40].iter().all(|&x| x == 2e-3), "{lr:?}");
    assert!((lr[49] - 2e-4).abs() < 1e-15, "{lr:?}");
    let falls: Vec<f64> = lr[40..].windows(2).map(|w| w[0] - w[1]).collect();
    assert!(falls.iter().all(|f| (f - 2e-4).abs() < 1e-12), "{falls:?}");
    // The default is Chinchilla's cosine, and a cooldown of none is refused.
    let cos = d.join("cos");
    let mut args = base_args(&data, &cos);
    args[i] = "2560".into();
    assert!(isoflop(&args).status.success());
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cos.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["schedule"], "cosine");
    let mut args = base_args(&data, &d.join("bad"));
    args.extend(["--schedule", "wsd", "--cooldown-frac", "0"].map(String::from));
    let o = isoflop(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cooldown_frac"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!d.join("bad").join("curve.csv").exists());
}
