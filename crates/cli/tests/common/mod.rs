//! Helpers shared by the CLI's integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory per test under the target dir's tmp: `{group}-{name}-{pid}`.
pub fn tmpdir(group: &str, name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The `isoflop` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_isoflop")
}

/// Runs `isoflop` with `args` and waits for it.
pub fn isoflop<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run isoflop")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small text corpus in `dir` (about 150 kB of repetitive English-like lines).
pub fn corpus(dir: &Path) -> PathBuf {
    let text: String = (0..6000)
        .map(|i| format!("verse {} of chapter {} says {}.\n", i % 31, i % 7, i % 11))
        .collect();
    let p = dir.join("corpus.txt");
    std::fs::write(&p, text).unwrap();
    p
}

/// (step, loss) of every row of a run folder's curve.csv.
pub fn losses(run: &Path) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(run.join("curve.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[5].parse().unwrap())
        })
        .collect()
}

/// A stand-in for a user's trainer (another framework) in `dir`: `sh fake_trainer.sh OUT ID
/// PARAMS TOKENS` writes the three run-record files of a made-up 4-row curve whose losses
/// follow L = 1.8 + 400/N^0.34 + 400/D^0.28 with a small deterministic wiggle. Control files
/// beside it change one run's behaviour: `kill-once-ID` (it kills itself with SIGKILL, once),
/// `diverge-ID` (it writes a diverged summary). Every call appends its id to `calls.log`.
pub fn fake_trainer(dir: &Path) -> PathBuf {
    let script = dir.join("fake_trainer.sh");
    std::fs::write(
        &script,
        r#"#!/bin/sh
out=$1; id=$2; n=$3; d=$4; here=$(dirname "$0")
echo "$id" >> "$here/calls.log"
if [ -f "$here/kill-once-$id" ]; then rm "$here/kill-once-$id"; kill -9 $$; fi
mkdir -p "$out"
echo '{"note": "written by an external trainer"}' > "$out/config.json"
law() { awk "BEGIN { print 1.8 + 400 / ($1 ^ 0.34) + 400 / ($2 ^ 0.28) + 0.01 * sin($1 * 0.37 + $2 * 0.011) }"; }
{
  echo "run,step,params,tokens,flops,loss"
  for s in 1 2 3 4; do
    t=$((d * s / 4))
    echo "$id,$s,$n,$t,$((6 * n * t)),$(law $n $t)"
  done
} > "$out/curve.csv"
loss=$(law $n $d)
status=finished; reason=null
if [ -f "$here/diverge-$id" ]; then status=diverged; reason='"loss became NaN at step 3"'; fi
cat > "$out/summary.json" <<JSON
{"run": "$id", "status": "$status", "reason": $reason, "failed_at_step": null, "steps": 4, "params": $n, "tokens": $d, "flops": $((6 * n * d)), "final_loss": $loss, "final_eval_loss": null, "secs": 0.1, "tokens_per_sec": 1.0}
JSON
"#,
    )
    .unwrap();
    script
}

/// The command template that runs [`fake_trainer`] (exec'd, so a signal reaches the sweep).
pub fn fake_template(script: &Path) -> String {
    format!(
        "exec sh {} {{out}} {{id}} {{params}} {{tokens}}",
        script.display()
    )
}

/// Starts a single-node Slurm on this machine (scripts/slurm-local.sh), or says why not.
pub fn slurm() -> Option<()> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-local.sh");
    let o = Command::new("bash")
        .arg(&script)
        .arg("start")
        .output()
        .ok()?;
    if !o.status.success() {
        eprintln!(
            "skipped: a local Slurm could not start: {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    Some(())
}

/// The array job ids `isoflop sweep --executor slurm` printed (`array job N`, or `array jobs
/// by time limit (N, M)`), in order.
pub fn array_jobs(out: &str) -> Vec<String> {
    let line = out
        .lines()
        .find(|l| l.contains("array job"))
        .unwrap_or_else(|| panic!("no array job in: {out}"));
    if let Some(rest) = line.split("array jobs by time limit (").nth(1) {
        let list = rest.split(')').next().unwrap_or("");
        return list.split(", ").map(str::to_string).collect();
    }
    let id = line
        .split("array job ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no job id in: {line}"));
    vec![id.to_string()]
}

/// `scontrol show job JOB` (every task of an array), as text.
pub fn scontrol_show(job: &str) -> String {
    let o = Command::new("scontrol")
        .args(["show", "job", job])
        .output()
        .expect("scontrol");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small IsoFLOP plan run by [`fake_trainer`] in `dir`: `budgets` x 5 sizes (spread 8,
/// context 32, batch 8), with `extra` options; its sweep file.
pub fn fake_plan(dir: &Path, budgets: &str, extra: &[&str]) -> PathBuf {
    let script = fake_trainer(dir);
    let file = dir.join("sweep.toml");
    let template = fake_template(&script);
    let mut args = vec![
        "plan",
        "--budgets",
        budgets,
        "--sizes-per-budget",
        "5",
        "--spread",
        "8",
        "--context",
        "32",
        "--batch",
        "8",
        "--out",
        file.to_str().unwrap(),
        "--command",
        &template,
    ];
    args.extend_from_slice(extra);
    let o = isoflop(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    file
}

/// Writes `rows` of (N, D, loss) as a CSV in `dir`.
pub fn table(dir: &Path, name: &str, rows: &[(f64, f64, f64)]) -> PathBuf {
    let p = dir.join(name);
    let mut s = String::from("params,tokens,loss\n");
    for (n, d, l) in rows {
        s += &format!("{n},{d},{l}\n");
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// The law the fit tests' tables are drawn from.
pub fn law(n: f64, d: f64) -> f64 {
    1.8 + 400.0 / n.powf(0.34) + 400.0 / d.powf(0.28)
}
