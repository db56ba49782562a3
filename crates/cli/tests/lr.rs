//! The learning-rate design end to end, with a stand-in trainer whose final loss is a known
//! function of the rate and the size (quadratic in ln(rate) around lr*(N) = 0.05 N^-0.3):
//! `plan --design lr`, a sweep, `lr-fit` recovers the law, and `plan --lr-law` gives each
//! run the rate the law gives its size (seen by the trainer through `{lr}`).

use std::path::Path;

mod common;
use common::isoflop;

/// Writes a run record whose final loss is 2 + 0.1 ln(lr / lr*(N))^2.
const TRAINER: &str = r#"#!/bin/sh
out=$1; id=$2; n=$3; d=$4; lr=$5
mkdir -p "$out"
echo "{\"lr\": $lr}" > "$out/config.json"
loss=$(awk "BEGIN { b = 0.05 * exp(-0.3 * log($n)); x = log($lr / b); print 2 + 0.1 * x * x }")
printf 'run,step,params,tokens,flops,loss\n%s,1,%s,%s,%s,%s\n' "$id" "$n" "$d" "$((6 * n * d))" "$loss" > "$out/curve.csv"
cat > "$out/summary.json" <<JSON
{"run": "$id", "status": "finished", "reason": null, "failed_at_step": null, "steps": 1, "params": $n, "tokens": $d, "flops": $((6 * n * d)), "final_loss": $loss, "final_eval_loss": null, "secs": 0.1, "tokens_per_sec": 1.0}
JSON
"#;

/// Writes `script` into `d` and returns the sweep command template that runs it.
fn trainer_command(d: &Path, script: &str) -> String {
    let path = d.join("trainer.sh");
    std::fs::write(&path, script).unwrap();
    format!(
        "sh {} {{out}} {{id}} {{params}} {{tokens}} {{lr}}",
        path.display()
    )
}

/// Plans 4 sizes from 4e4 to 7e5 parameters x 7 rates spanning 64x around 2e-3 into `f`,
/// each run trained by `command`.
fn plan_lr(f: &str, command: &str) {
    ok(&[
        "plan",
        "--design",
        "lr",
        "--sizes",
        "4e4..7e5",
        "--n-sizes",
        "4",
        "--lrs",
        "7",
        "--lr-span",
        "64",
        "--out",
        f,
        "--command",
        command,
    ]);
}

fn ok(args: &[&str]) -> String {
    let o = isoflop(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn an_lr_sweep_gives_the_law_and_the_law_gives_each_run_its_rate() {
    let d = common::tmpdir("lr", "law");
    let command = trainer_command(&d, TRAINER);
    let file = d.join("lr.toml");
    let f = file.to_str().unwrap();
    // Rates spanning 64x around 2e-3 bracket lr*(N) = 0.05 N^-0.3 (2.0e-3 at 45k
    // parameters, 8.6e-4 at 700k).
    plan_lr(f, &command);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches("[[runs]]").count(), 28);
    ok(&["sweep", f]);
    let out = ok(&["lr-fit", f, "--json"]);
    let fit: serde_json::Value = serde_json::from_str(&out).unwrap();
    let law = &fit["law"];
    // The stand-in's loss is quadratic in ln(rate): the parabola through three rates is
    // exact, up to the rates' three significant digits and awk's six printed digits.
    let (coef, exponent) = (
        law["coef"].as_f64().unwrap(),
        law["exponent"].as_f64().unwrap(),
    );
    assert!((exponent + 0.3).abs() < 2e-3, "{fit}");
    assert!((coef / 0.05 - 1.0).abs() < 0.03, "{fit}");
    for s in fit["sizes"].as_array().unwrap() {
        assert!(s["censored"].is_null(), "{s}");
    }
    let law_file = d.join("runs/lr-law.json");
    assert!(Path::new(&law_file).exists());
    // A plan with the law: each run's rate is the law's for its size.
    let planned = d.join("iso.toml");
    ok(&[
        "plan",
        "--budgets",
        "1e12,3e12",
        "--sizes-per-budget",
        "3",
        "--lr-law",
        law_file.to_str().unwrap(),
        "--out",
        planned.to_str().unwrap(),
        "--command",
        &command,
    ]);
    let sweep: toml::Value = toml::from_str(&std::fs::read_to_string(&planned).unwrap()).unwrap();
    for r in sweep["runs"].as_array().unwrap() {
        let n = r["params"].as_integer().unwrap() as f64;
        let lr = r["lr"].as_float().unwrap();
        assert!((lr / (coef * n.powf(exponent)) - 1.0).abs() < 1e-3, "{r}");
    }
    // The trainer sees each run's own rate.
    ok(&["sweep", planned.to_str().unwrap()]);
    for r in sweep["runs"].as_array().unwrap() {
        let id = r["id"].as_str().unwrap();
        let cfg: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(d.join("runs").join(id).join("config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cfg["lr"].as_f64(), r["lr"].as_float(), "{id}");
    }
    // Rates all below every size's best: each size's table row says so, and no law is
    // written (exit 2).
    let low = d.join("low.toml");
    ok(&[
        "plan",
        "--design",
        "lr",
        "--sizes",
        "4e4..7e5",
        "--n-sizes",
        "3",
        "--lrs",
        "3",
        "--lr",
        "1e-5",
        "--lr-span",
        "4",
        "--results",
        "low",
        "--out",
        low.to_str().unwrap(),
        "--command",
        &command,
    ]);
    ok(&["sweep", low.to_str().unwrap()]);
    let o = isoflop(&["lr-fit", low.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        table
            .matches("censored: its best rate is the largest tried")
            .count(),
        3,
        "{table}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 2"));
    assert!(!d.join("low/lr-law.json").exists());
}

#[test]
fn the_lr_design_without_sizes_and_a_law_file_that_is_not_one_are_refused() {
    let d = common::tmpdir("lr", "bad");
    let f = d.join("lr.toml");
    let f = f.to_str().unwrap();
    let o = isoflop(&[
        "plan",
        "--design",
        "lr",
        "--budgets",
        "1e12",
        "--out",
        f,
        "--force",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--design lr takes --sizes"));
    std::fs::write(d.join("bad.json"), r#"{"coef": -1, "exponent": 0}"#).unwrap();
    let o = isoflop(&[
        "plan",
        "--budgets",
        "1e12",
        "--lr-law",
        d.join("bad.json").to_str().unwrap(),
        "--out",
        d.join("x.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("bad.json") && e.contains("positive coef"), "{e}");
}

/// Put before [`TRAINER`]'s loss: a rate above 1.2 lr*(N) diverges (a summary, no loss).
const DIVERGE: &str = r#"if awk "BEGIN { exit !($lr > 1.2 * 0.05 * exp(-0.3 * log($n))) }"; then
  cat > "$out/summary.json" <<JSON
{"run": "$id", "status": "diverged", "reason": "loss is NaN at step 1", "failed_at_step": 1, "steps": 1, "params": $n, "tokens": $d, "flops": $((6 * n * d)), "final_loss": null, "final_eval_loss": null, "secs": 0.1, "tokens_per_sec": 1.0}
JSON
  exit 0
fi
"#;

#[test]
fn a_diverged_rate_counts_as_worse_than_every_finished_one() {
    let d = common::tmpdir("lr", "diverged");
    let command = trainer_command(
        &d,
        &TRAINER.replacen("loss=", &format!("{DIVERGE}loss="), 1),
    );
    let file = d.join("lr.toml");
    let f = file.to_str().unwrap();
    plan_lr(f, &command);
    // The sweep reports the diverged runs as failed (exit 1) and keeps the rest.
    let o = isoflop(&["sweep", f]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = isoflop(&["lr-fit", f, "--json"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("diverged, counted as worse than every finished rate"),
        "{err}"
    );
    let fit: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Each size's best finished rate is its largest finished one, next to a diverged one:
    // inside the sweep, not censored, and within a rate step (2x) of lr*(N).
    for s in fit["sizes"].as_array().unwrap() {
        assert!(s["censored"].is_null(), "{s}");
        let (n, lr) = (s["params"].as_f64().unwrap(), s["lr"].as_f64().unwrap());
        let best = 0.05 * n.powf(-0.3);
        assert!(lr <= 1.2 * best && lr > best / 2.0, "{s}");
    }
}
