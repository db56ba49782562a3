//! Cooldown branches (`isoflop train --branch-from TRUNK --at-tokens T`): a branch continues
//! its constant-rate trunk exactly as one uninterrupted warm-up, stable, decay run would, and
//! bad branches are refused naming the run and the value, with nothing written.
#![cfg(feature = "train")]

use std::path::{Path, PathBuf};

mod common;
use common::{corpus, isoflop, losses};

/// 8 x 32 = 256 tokens a step.
const PER_STEP: u64 = 256;

fn args(data: &Path, out: &Path, tokens: u64, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "train",
        "--context",
        "32",
        "--batch",
        "8",
        "--threads",
        "1",
        "--log-every",
        "1",
        "--eval-every",
        "10",
        "--eval-batches",
        "2",
        "--checkpoint-every",
        "7",
        "--warmup",
        "5",
        "--quiet",
        "--tokens",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(tokens.to_string());
    v.extend(extra.iter().map(|s| s.to_string()));
    v.extend([
        "--data".into(),
        data.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ]);
    v
}

const SHAPE: [&str; 6] = ["--layers", "2", "--d-model", "64", "--heads", "2"];

fn ok(a: &[String]) {
    let o = isoflop(a);
    assert!(
        o.status.success(),
        "{a:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn json(p: PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn column(run: &Path, name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(run.join("curve.csv")).unwrap();
    let mut lines = text.lines();
    let col = lines
        .next()
        .unwrap()
        .split(',')
        .position(|h| h == name)
        .unwrap();
    lines
        .map(|l| l.split(',').nth(col).unwrap().parse().unwrap_or(f64::NAN))
        .collect()
}

#[test]
fn a_branch_continues_its_trunk_exactly_like_an_uninterrupted_wsd_run() {
    let d = common::tmpdir("branch", "exact");
    let data = corpus(&d);
    let (trunk, branch, direct) = (d.join("trunk"), d.join("branch"), d.join("direct"));
    // The trunk: 40 steps at a constant rate, keeping its state at steps 30 and 20.
    let mut t = SHAPE.to_vec();
    t.extend(["--schedule", "constant", "--keep-at-tokens", "7680,5120"]);
    ok(&args(&data, &trunk, 40 * PER_STEP, &t));
    // The branch: from step 30 to a horizon of 50 steps (a 1-sqrt cooldown over 20 steps).
    let b = [
        "--branch-from",
        trunk.to_str().unwrap(),
        "--at-tokens",
        "7680",
        "--run",
        "b50",
    ];
    ok(&args(&data, &branch, 50 * PER_STEP, &b));
    // The same schedule uninterrupted: wsd over 50 steps, cooling down over the last 40%.
    let mut w = SHAPE.to_vec();
    w.extend(["--schedule", "wsd", "--cooldown-frac", "0.4"]);
    ok(&args(&data, &direct, 50 * PER_STEP, &w));

    let (lb, ld) = (losses(&branch), losses(&direct));
    assert_eq!(lb.len(), 50);
    assert_eq!(
        lb.iter().map(|r| r.0).collect::<Vec<_>>(),
        ld.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    for ((s, a), (_, b)) in lb.iter().zip(&ld) {
        assert!(
            (a - b).abs() <= 1e-6 * b.abs(),
            "step {s}: branch {a}, direct {b}"
        );
    }
    // The trunk's rows up to the branch point, then the branch's own.
    let lt = losses(&trunk);
    assert_eq!(&lb[..30], &lt[..30]);
    assert_eq!(column(&branch, "lr"), column(&direct, "lr"));
    assert_eq!(column(&branch, "eval_loss").len(), 50);
    let (sb, sd) = (
        json(branch.join("summary.json")),
        json(direct.join("summary.json")),
    );
    let (eb, ed) = (
        sb["final_eval_loss"].as_f64().unwrap(),
        sd["final_eval_loss"].as_f64().unwrap(),
    );
    assert!((eb - ed).abs() <= 1e-6 * ed, "{eb} {ed}");
    assert_eq!(sb["flops"], sd["flops"]);
    // The config names the trunk and the branch point; the trunk kept exactly the
    // checkpoints asked for, and no rolling one after it ended.
    let cb = json(branch.join("config.json"));
    assert_eq!(cb["branch"]["trunk"], "trunk");
    assert_eq!(cb["branch"]["step"], 30);
    assert_eq!(cb["schedule"], "wsd");
    let mut kept: Vec<String> = std::fs::read_dir(&trunk)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ot"))
        .collect();
    kept.sort();
    assert_eq!(kept, ["branch-20.ot", "branch-30.ot"]);
    assert_eq!(
        json(trunk.join("config.json"))["keep_steps"],
        serde_json::json!([20, 30])
    );
}

#[test]
fn bad_branches_are_refused_naming_the_run_and_the_value() {
    let d = common::tmpdir("branch", "bad");
    let data = corpus(&d);
    let trunk = d.join("trunk");
    let mut t = SHAPE.to_vec();
    t.extend(["--schedule", "constant", "--keep-at-tokens", "2560"]);
    ok(&args(&data, &trunk, 20 * PER_STEP, &t));
    let trunk_s = trunk.to_str().unwrap().to_string();
    let refused = |name: &str, tokens: u64, extra: &[&str], want: &[&str]| {
        let out = d.join(name);
        let mut e: Vec<&str> = vec!["--branch-from", &trunk_s, "--run", name];
        e.extend(extra);
        let o = isoflop(&args(&data, &out, tokens, &e));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        for w in want {
            assert!(err.contains(w), "{name}: wants {w:?}: {err}");
        }
        assert!(!out.exists(), "{name}: wrote {}", out.display());
    };
    // Beyond the trunk's horizon of 20 steps.
    refused(
        "beyond",
        40 * PER_STEP,
        &["--at-tokens", "7680"],
        &["beyond", "7680", "beyond"],
    );
    // A step the trunk did not keep.
    refused(
        "unkept",
        20 * PER_STEP,
        &["--at-tokens", "3840"],
        &["keeps no checkpoint at step 15", "--keep-at-tokens 3840"],
    );
    // A different model.
    refused(
        "wider",
        20 * PER_STEP,
        &[
            "--at-tokens",
            "2560",
            "--layers",
            "2",
            "--d-model",
            "32",
            "--heads",
            "2",
        ],
        &["different model", "d_model"],
    );
    // A different learning rate.
    refused(
        "lr",
        20 * PER_STEP,
        &["--at-tokens", "2560", "--lr", "1e-3"],
        &["lr: trunk 0.002, branch 0.001"],
    );
    // A trunk that is not constant-rate.
    let cos = d.join("cos");
    ok(&args(&data, &cos, 20 * PER_STEP, &SHAPE));
    let o = isoflop(&args(
        &data,
        &d.join("of-cos"),
        20 * PER_STEP,
        &[
            "--branch-from",
            cos.to_str().unwrap(),
            "--at-tokens",
            "2560",
        ],
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("schedule cosine"));
    // A trunk whose checkpoint was deleted after it ended.
    std::fs::remove_file(trunk.join("branch-10.json")).unwrap();
    refused(
        "deleted",
        20 * PER_STEP,
        &["--at-tokens", "2560"],
        &["without its checkpoint at step 10"],
    );
    // Branch points outside the run, and a cooldown of the whole horizon.
    let o = isoflop(&args(
        &data,
        &d.join("keep-beyond"),
        20 * PER_STEP,
        &[
            "--layers",
            "2",
            "--d-model",
            "64",
            "--heads",
            "2",
            "--keep-at-tokens",
            "9999",
        ],
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("step 40 lies beyond the run's 20 steps"));
    let o = isoflop(&args(
        &data,
        &d.join("frac"),
        20 * PER_STEP,
        &[
            "--layers",
            "2",
            "--d-model",
            "64",
            "--heads",
            "2",
            "--cooldown-frac",
            "1",
        ],
    ));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cooldown_frac must be in (0, 1), got 1"));
    assert!(!d.join("frac").exists() && !d.join("keep-beyond").exists());
}
