//! Running a sweep: each run's state read from its folder, one run started as its own
//! process (isoflop's trainer or a user's command), a local pool, Slurm job arrays, and the
//! table that `isoflop fit` reads.
//!
//! A run's state lives only in its folder (see [`isoflop_core::record`]): `summary.json`
//! means ended; a live `.lease` means someone is training it; `config.json` or a checkpoint
//! without a summary means unfinished (it resumes). So a sweep killed at any moment, started
//! again, keeps every finished run and resumes the rest; two sweeps on one folder never run
//! the same run at once (the trainer takes the lease).

use crate::plan::{PlannedRun, Sweep};
use isoflop_core::lease;
use isoflop_core::record::{self, RunStatus, RunSummary};
use std::path::Path;
use std::process::{Command, Stdio};

/// Where a run stands.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum RunState {
    /// Not started.
    Pending,
    /// A live process holds its lease.
    Running {
        /// Host.
        host: String,
        /// Process.
        pid: u32,
        /// Steps done, where known.
        step: Option<u64>,
        /// Steps in all, where known.
        steps: Option<u64>,
    },
    /// Started, not ended, nobody training it: it will resume.
    Unfinished {
        /// Steps saved in its curve, where known.
        step: Option<u64>,
    },
    /// Reached its horizon.
    Finished {
        /// Final training loss.
        loss: Option<f64>,
    },
    /// Ended without finishing (diverged or failed), with the reason.
    Failed {
        /// "diverged" or "failed".
        status: String,
        /// Why.
        reason: String,
    },
}

/// The state of `run` under `results`.
pub fn state(results: &Path, run: &PlannedRun) -> RunState {
    let dir = results.join(&run.id);
    if let Ok(s) = record::read_json::<RunSummary>(&dir.join(record::SUMMARY_FILE)) {
        return match s.status {
            RunStatus::Finished => RunState::Finished { loss: s.final_loss },
            other => RunState::Failed {
                status: format!("{other:?}").to_lowercase(),
                reason: s.reason.unwrap_or_default(),
            },
        };
    }
    if let Some(r) = running(results, run) {
        return r;
    }
    if dir.exists() {
        let step = record::read_curve(&dir.join(record::CURVE_FILE))
            .ok()
            .and_then(|c| c.last().map(|r| r.step));
        return RunState::Unfinished { step };
    }
    RunState::Pending
}

/// [`RunState::Running`] when a live process holds `run`'s lease, with its progress; reads
/// only the lease and `progress.json` (cheap enough to poll).
pub fn running(results: &Path, run: &PlannedRun) -> Option<RunState> {
    let dir = results.join(&run.id);
    let h = lease::holder(&dir)?;
    let p: Option<serde_json::Value> = record::read_json(&dir.join("progress.json")).ok();
    let get = |k: &str| p.as_ref().and_then(|v| v[k].as_u64());
    Some(RunState::Running {
        host: h.host,
        pid: h.pid,
        step: get("step"),
        steps: get("steps"),
    })
}

/// Fills a command template: `{id}`, `{out}`, `{layers}`, `{d_model}`, `{heads}`, `{params}`,
/// `{tokens}`, `{steps}`, `{batch}`, `{context}`, `{lr}`, `{seed}`, `{vocab}`, `{data}`.
/// `{steps}` is tokens / (batch * context), rounded up.
pub fn expand(template: &str, sweep: &Sweep, run: &PlannedRun, out: &Path) -> String {
    let d = &sweep.defaults;
    let steps = run.tokens.div_ceil((d.batch * d.context) as u64);
    let pairs: [(&str, String); 14] = [
        ("{id}", run.id.clone()),
        ("{out}", out.display().to_string()),
        ("{layers}", run.layers.to_string()),
        ("{d_model}", run.d_model.to_string()),
        ("{heads}", run.heads.to_string()),
        ("{params}", run.params.to_string()),
        ("{tokens}", run.tokens.to_string()),
        ("{steps}", steps.to_string()),
        ("{batch}", d.batch.to_string()),
        ("{context}", d.context.to_string()),
        ("{lr}", d.lr.to_string()),
        ("{seed}", d.seed.to_string()),
        ("{vocab}", sweep.vocab.to_string()),
        ("{data}", sweep.data.clone().unwrap_or_default()),
    ];
    pairs
        .iter()
        .fold(template.to_string(), |s, (k, v)| s.replace(k, v))
}

/// The command that trains `run` into `out`: the sweep's template through `sh -c`, or
/// `isoflop train ... --resume` (the binary at `isoflop`).
pub fn command(
    sweep: &Sweep,
    run: &PlannedRun,
    out: &Path,
    isoflop: &Path,
    threads: usize,
) -> Command {
    match &sweep.command {
        Some(t) => {
            let mut c = Command::new("sh");
            c.arg("-c").arg(expand(t, sweep, run, out));
            c
        }
        None => {
            let d = &sweep.defaults;
            let mut c = Command::new(isoflop);
            c.arg("train")
                .args([
                    "--layers",
                    &run.layers.to_string(),
                    "--d-model",
                    &run.d_model.to_string(),
                    "--heads",
                    &run.heads.to_string(),
                ])
                .args([
                    "--tokens",
                    &run.tokens.to_string(),
                    "--batch",
                    &d.batch.to_string(),
                    "--context",
                    &d.context.to_string(),
                ])
                .args([
                    "--lr",
                    &d.lr.to_string(),
                    "--seed",
                    &d.seed.to_string(),
                    "--log-every",
                    &d.log_every.to_string(),
                ])
                .args([
                    "--eval-every",
                    &d.eval_every.to_string(),
                    "--checkpoint-every",
                    &d.checkpoint_every.to_string(),
                ])
                .args([
                    "--threads",
                    &threads.to_string(),
                    "--run",
                    &run.id,
                    "--resume",
                    "--quiet",
                ])
                .arg("--out")
                .arg(out);
            if let Some(data) = &sweep.data {
                c.arg("--data").arg(data);
            }
            c
        }
    }
}

/// What happened to one run this time.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// Ended earlier; not run again.
    AlreadyEnded,
    /// Someone else holds it.
    HeldElsewhere,
    /// Trained to its end now.
    Finished,
    /// Ended badly now, with the reason (also written to its summary).
    Failed(String),
}

/// Runs one planned run to its end (or failure) as a child process, unless it has ended or
/// is held. The child is killed if this process dies (Linux `PR_SET_PDEATHSIG`), so an
/// orphan never keeps training. A child that exits without a summary gets one, status
/// `failed`, with the tail of its standard error.
pub fn run_one(
    sweep: &Sweep,
    results: &Path,
    run: &PlannedRun,
    isoflop: &Path,
    threads: usize,
) -> RunOutcome {
    match state(results, run) {
        RunState::Finished { .. } | RunState::Failed { .. } => return RunOutcome::AlreadyEnded,
        RunState::Running { .. } => return RunOutcome::HeldElsewhere,
        _ => {}
    }
    let out = results.join(&run.id);
    // The trainer's messages go beside the run folders, not into them: a run folder holds
    // only what the trainer writes.
    let logs = results.join("logs");
    let _ = std::fs::create_dir_all(&logs);
    let log = logs.join(format!("{}.log", run.id));
    let mut cmd = command(sweep, run, &out, isoflop, threads);
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    match std::fs::File::create(&log) {
        Ok(f) => cmd.stderr(f),
        Err(_) => cmd.stderr(Stdio::null()),
    };
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let started = std::time::SystemTime::now();
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::create_dir_all(&out);
            return fail(&out, run, format!("could not start the trainer: {e}"));
        }
    };
    // A summary older than this trainer was written by another process (a second sweep
    // that finished the run between our look and our start): ours trained nothing.
    let summary_time = std::fs::metadata(out.join(record::SUMMARY_FILE))
        .and_then(|m| m.modified())
        .ok();
    if summary_time.is_some_and(|t| t < started) {
        return RunOutcome::AlreadyEnded;
    }
    match state(results, run) {
        RunState::Finished { .. } => RunOutcome::Finished,
        RunState::Failed { reason, .. } => RunOutcome::Failed(reason),
        RunState::Running { .. } => RunOutcome::HeldElsewhere,
        _ => {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            if tail.contains("is being trained by process") {
                return RunOutcome::HeldElsewhere;
            }
            let tail: String = tail
                .lines()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ");
            let _ = std::fs::create_dir_all(&out);
            fail(
                &out,
                run,
                format!("the trainer exited with {status} and wrote no summary: {tail}"),
            )
        }
    }
}

fn fail(out: &Path, run: &PlannedRun, reason: String) -> RunOutcome {
    let s = RunSummary {
        run: run.id.clone(),
        status: RunStatus::Failed,
        reason: Some(reason.clone()),
        failed_at_step: None,
        steps: 0,
        params: run.params,
        tokens: 0,
        flops: 0.0,
        final_loss: None,
        final_eval_loss: None,
        secs: 0.0,
        tokens_per_sec: 0.0,
    };
    let _ = record::write_atomic(
        &out.join(record::SUMMARY_FILE),
        &serde_json::to_vec_pretty(&s).expect("summary serialises"),
    );
    RunOutcome::Failed(reason)
}

/// Runs every run of the sweep on a local pool of `jobs` workers with `threads` threads
/// each, largest runs first. `on_event` hears (run id, outcome) as each one ends.
pub fn run_local(
    sweep: &Sweep,
    results: &Path,
    isoflop: &Path,
    jobs: usize,
    threads: usize,
    on_event: &(dyn Fn(&str, &RunOutcome) + Sync),
) -> Vec<(String, RunOutcome)> {
    let mut order: Vec<&PlannedRun> = sweep.runs.iter().collect();
    order.sort_by(|a, b| {
        (b.params as f64 * b.tokens as f64)
            .partial_cmp(&(a.params as f64 * a.tokens as f64))
            .expect("finite")
    });
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(run) = order.get(k) else { break };
                let o = run_one(sweep, results, run, isoflop, threads);
                on_event(&run.id, &o);
                done.lock().expect("not poisoned").push((run.id.clone(), o));
            });
        }
    });
    done.into_inner().expect("not poisoned")
}

/// The table `isoflop fit` reads: every finished run's curve, with its planned budget, as
/// CSV text; and the ids of the runs that are not in it (with their state).
pub fn collect(sweep: &Sweep, results: &Path) -> (String, Vec<(String, RunState)>) {
    let mut out = String::from("run,step,params,tokens,flops,loss,budget,final_loss\n");
    let mut missing = Vec::new();
    for run in &sweep.runs {
        match state(results, run) {
            // Read with the run-table reader, which accepts any trainer's column names.
            // Each row also carries the run's final loss for Approaches 2 and 3: its held-out
            // loss at the end where it has one, else its smoothed final training loss.
            RunState::Finished { .. } => {
                let dir = results.join(&run.id);
                let summary: Option<RunSummary> =
                    record::read_json(&dir.join(record::SUMMARY_FILE)).ok();
                let fin = summary
                    .and_then(|s| s.final_eval_loss.or(s.final_loss))
                    .map(|l| l.to_string())
                    .unwrap_or_default();
                match isoflop_core::RunTable::read(&dir.join(record::CURVE_FILE)) {
                    Ok(t) => {
                        for r in t.rows {
                            let budget = run.budget.map(|b| format!("{b:e}")).unwrap_or_default();
                            let step = r.step.map(|s| s.to_string()).unwrap_or_default();
                            out += &format!(
                                "{},{},{},{},{:e},{},{},{}\n",
                                run.id, step, r.params, r.tokens, r.flops, r.loss, budget, fin
                            );
                        }
                    }
                    Err(e) => missing.push((
                        run.id.clone(),
                        RunState::Failed {
                            status: "unreadable".into(),
                            reason: e.to_string(),
                        },
                    )),
                }
            }
            other => missing.push((run.id.clone(), other)),
        }
    }
    (out, missing)
}

/// A Slurm job-array script: one array index per run, at most `throttle` at once
/// (`%throttle`), each running `isoflop sweep-task SWEEP --index $SLURM_ARRAY_TASK_ID`.
pub fn slurm_script(
    sweep: &Sweep,
    sweep_file: &Path,
    isoflop: &Path,
    throttle: usize,
    cpus: usize,
    logs: &Path,
) -> String {
    let n = sweep.runs.len();
    format!(
        "#!/bin/bash\n#SBATCH --job-name=isoflop-{name}\n#SBATCH --array=0-{last}%{throttle}\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --output={logs}/%A_%a.out\n#SBATCH --error={logs}/%A_%a.out\n# One array index per run of {file} ({n} runs). A task whose run has ended exits at once;\n# an unfinished one resumes from its checkpoint.\nexec {bin} sweep-task {file} --index \"$SLURM_ARRAY_TASK_ID\" --threads {cpus}\n",
        name = sweep.name.replace(char::is_whitespace, "-"),
        last = n.saturating_sub(1),
        logs = logs.display(),
        file = sweep_file.display(),
        bin = isoflop.display(),
    )
}

/// Submits `script` with `sbatch --parsable`, returning the job id.
///
/// # Errors
/// sbatch's own message when it fails or cannot be run.
pub fn sbatch(args: &[&str], script: Option<&Path>) -> Result<String, String> {
    let mut c = Command::new("sbatch");
    c.arg("--parsable").args(args);
    if let Some(s) = script {
        c.arg(s);
    }
    let o = c
        .output()
        .map_err(|e| format!("could not run sbatch: {e} (is Slurm installed?)"))?;
    if !o.status.success() {
        return Err(format!(
            "sbatch failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    let id = String::from_utf8_lossy(&o.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    if id.is_empty() {
        return Err("sbatch printed no job id".into());
    }
    Ok(id)
}

/// Runs the run at `index` of the sweep (a Slurm array task).
pub fn run_index(
    sweep: &Sweep,
    sweep_file: &Path,
    index: usize,
    isoflop: &Path,
    threads: usize,
) -> Result<(String, RunOutcome), String> {
    let run = sweep.runs.get(index).ok_or_else(|| {
        format!(
            "{}: no run at index {index} (it has {})",
            sweep_file.display(),
            sweep.runs.len()
        )
    })?;
    let results = sweep.results_dir(sweep_file);
    std::fs::create_dir_all(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    Ok((
        run.id.clone(),
        run_one(sweep, &results, run, isoflop, threads),
    ))
}
