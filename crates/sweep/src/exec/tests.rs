//! Tests of running runs: states, quoting, exit reasons, collecting.
use super::*;
use crate::plan::{RunDefaults, Sweep};

fn sweep(command: &str) -> Sweep {
    Sweep {
        name: "t".into(),
        results: "runs".into(),
        data: Some("corpus.txt".into()),
        vocab: 256,
        defaults: RunDefaults::default(),
        command: Some(command.into()),
        slurm: Default::default(),
        runs: vec![PlannedRun {
            id: "x$(touch PWNED)y 'q'".into(),
            layers: 2,
            d_model: 32,
            heads: 2,
            params: 30_000,
            tokens: 600_000,
            budget: Some(1e11),
            keep_at_tokens: Vec::new(),
            trunk: None,
            at_tokens: None,
            lr: None,
            seed: None,
        }],
    }
}

/// Runs `sh -c script` and returns its standard output.
fn sh(script: &str, cwd: &Path) -> String {
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(cwd)
        .output()
        .unwrap();
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn template_values_are_quoted_so_an_id_cannot_run_a_command() {
    let s = sweep("printf '%s|' {id} {out} {data} {steps}");
    let dir = std::env::temp_dir().join(format!("isoflop-quote-sh-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Path::new("my results").join(&s.runs[0].id);
    let cmd = expand(
        s.command.as_deref().unwrap(),
        &s,
        &s.runs[0],
        &out,
        Some(Path::new("a b/corpus.txt")),
    );
    let printed = sh(&cmd, &dir);
    assert_eq!(
        printed,
        format!(
            "x$(touch PWNED)y 'q'|my results/x$(touch PWNED)y 'q'|a b/corpus.txt|{}|",
            600_000u64.div_ceil(16 * 64)
        )
    );
    assert!(!dir.join("PWNED").exists());
    // A value that holds a placeholder is not expanded again; unknown braces stay.
    let mut s2 = s.clone();
    s2.runs[0].id = "{out}".into();
    let cmd = expand(
        "awk '{ print }' {id}",
        &s2,
        &s2.runs[0],
        Path::new("o"),
        None,
    );
    assert_eq!(cmd, "awk '{ print }' '{out}'");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_runs_own_seed_and_rate_reach_its_command() {
    // A template gets the run's own values, else the defaults'.
    let mut s = sweep("echo {seed} {lr}");
    let plain = expand("echo {seed} {lr}", &s, &s.runs[0], Path::new("o"), None);
    assert_eq!(plain, "echo '0' '0.002'");
    s.runs[0].seed = Some(3);
    s.runs[0].lr = Some(0.0125);
    let own = expand("echo {seed} {lr}", &s, &s.runs[0], Path::new("o"), None);
    assert_eq!(own, "echo '3' '0.0125'");
    // isoflop's own trainer gets them as options.
    s.command = None;
    let runner = Runner::new(&s, Path::new("sweep.toml"), Path::new("isoflop"), 3);
    let args: Vec<String> = runner
        .command(&s.runs[0], Path::new("o"))
        .get_args()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let value = |flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].clone()
    };
    assert_eq!(
        (value("--seed"), value("--lr")),
        ("3".into(), "0.0125".into())
    );
    // And the sweep's thread count (`--threads`), whatever the defaults say.
    assert_eq!(value("--threads"), "3");
}

#[test]
fn exit_reason_is_one_line_naming_the_signal_or_the_status() {
    use std::os::unix::process::ExitStatusExt;
    let killed = std::process::ExitStatus::from_raw(9);
    let r = exit_reason(killed, "");
    assert!(r.contains("signal 9") && r.contains("SIGKILL"), "{r}");
    let aborted = std::process::ExitStatus::from_raw(6);
    let r = exit_reason(
        aborted,
        "terminate called after throwing an instance of 'c10::Error'\n  what():  bad\nframe #0: x\n",
    );
    assert!(r.contains("SIGABRT") && r.ends_with("libtorch: bad"), "{r}");
    let exited = std::process::ExitStatus::from_raw(3 << 8);
    let r = exit_reason(
        exited,
        "step 10\nerror: disk full: /x/curve.csv\n  caused by: y\n",
    );
    assert_eq!(
        r,
        "the trainer exited with status 3: error: disk full: /x/curve.csv"
    );
}

#[test]
fn a_run_folder_without_a_checkpoint_is_unfinished_from_step_0() {
    let results = std::env::temp_dir().join(format!("isoflop-state-{}", std::process::id()));
    let s = sweep("true");
    let mut run = s.runs[0].clone();
    run.id = "r1".into();
    let dir = results.join("r1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(record::CURVE_FILE),
        "run,step,params,tokens,flops,loss,lr,secs,eval_loss\nr1,20,1,2,12,3.0,0.001,1.0,\n",
    )
    .unwrap();
    assert_eq!(
        state(&results, &run),
        RunState::Unfinished {
            step: Some(20),
            checkpoint: None,
            crashed: None
        }
    );
    let meta = record::CheckpointMeta::of(b"weights", 10);
    std::fs::write(
        dir.join(record::CHECKPOINT_META_FILE),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state(&results, &run),
        RunState::Unfinished {
            step: Some(20),
            checkpoint: Some(10),
            crashed: None
        }
    );
    // A transient failure is unfinished, with its reason; an own-terms failure is failed.
    let mut sum = RunSummary::failed("r1", 1, "killed by signal 9\nmore", true);
    std::fs::write(
        dir.join(record::SUMMARY_FILE),
        serde_json::to_vec(&sum).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state(&results, &run),
        RunState::Unfinished {
            step: Some(20),
            checkpoint: Some(10),
            crashed: Some("killed by signal 9".into())
        }
    );
    sum.transient = false;
    std::fs::write(
        dir.join(record::SUMMARY_FILE),
        serde_json::to_vec(&sum).unwrap(),
    )
    .unwrap();
    assert!(matches!(state(&results, &run), RunState::Failed { .. }));
    std::fs::remove_dir_all(&results).unwrap();
}

#[test]
fn run_dirs_never_leave_the_results_folder() {
    let r = Path::new("/tmp/results");
    for bad in ["../../x", "a/b", "..", ".", "", "-rf", "a\nb", "a\u{7}"] {
        assert!(run_dir(r, bad).is_err(), "{bad:?}");
    }
    assert_eq!(run_dir(r, "c1e12-n30k").unwrap(), r.join("c1e12-n30k"));
}

#[test]
fn a_states_name_is_its_json_tag() {
    for st in [
        RunState::Pending,
        RunState::Running {
            host: "h".into(),
            pid: 1,
            step: None,
            steps: None,
        },
        RunState::Unfinished {
            step: None,
            checkpoint: None,
            crashed: None,
        },
        RunState::Finished {
            loss: None,
            left_out: None,
        },
        RunState::Failed {
            status: "diverged".into(),
            reason: String::new(),
        },
    ] {
        assert_eq!(serde_json::to_value(&st).unwrap()["state"], st.name());
    }
}
