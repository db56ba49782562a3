//! Running a sweep's runs: each run's state read from its folder, one run started as its own
//! process (isoflop's trainer or a user's command), and the table that `isoflop fit` reads.
//! Where the runs run (a local pool, a Slurm job array) is an executor ([`crate::executor`]).
//!
//! A run's state lives only in its folder (see [`isoflop_core::record`]): `summary.json`
//! means ended; a live `.lease` means someone is training it; `config.json` or a checkpoint
//! without a summary means unfinished (it resumes). So a sweep killed at any moment, started
//! again, keeps every finished run and resumes the rest; two sweeps on one folder never run
//! the same run at once (the trainer takes the lease).

use crate::error::SweepError;
use crate::plan::{PlannedRun, Sweep};
use isoflop_core::lease;
use isoflop_core::record::{self, RunStatus, RunSummary};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A signal this process received that the run's trainer must get too (a Slurm task's
/// `--signal` before its time limit, SIGTERM at preemption): `isoflop sweep-task` stores it
/// from its handler; [`Runner::run_one`] passes it on to the trainer it started as SIGTERM,
/// on which the trainer checkpoints and stops (transient). 0: none.
pub static PASS_ON: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

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
    /// Started, not ended, nobody training it: the next sweep trains it again, from its
    /// checkpoint where it has one, else from step 0.
    Unfinished {
        /// Steps saved in its curve, where known.
        step: Option<u64>,
        /// The step of its checkpoint, where it has one.
        checkpoint: Option<u64>,
        /// Why its last trainer stopped, where it died of a machine fault (a signal, an
        /// I/O error, a libtorch abort): the next sweep retries it.
        crashed: Option<String>,
    },
    /// Reached its horizon.
    Finished {
        /// Final loss (held-out where measured).
        loss: Option<f64>,
        /// Why a fit cannot use it (its curve is missing), where one cannot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        left_out: Option<String>,
    },
    /// Ended without finishing (diverged or failed on its own terms), with the reason.
    Failed {
        /// "diverged" or "failed".
        status: String,
        /// Why.
        reason: String,
    },
}

impl RunState {
    /// The state's name, as the JSON's `state` field spells it.
    pub fn name(&self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Running { .. } => "running",
            RunState::Unfinished { .. } => "unfinished",
            RunState::Finished { .. } => "finished",
            RunState::Failed { .. } => "failed",
        }
    }
}

/// The folder of run `id` under `results`, refused when the id is not a plain folder name
/// (see [`crate::plan::id_problem`]), so nothing a sweep writes lies outside `results`.
///
/// # Errors
/// The problem with the id.
pub fn run_dir(results: &Path, id: &str) -> Result<PathBuf, SweepError> {
    match crate::plan::id_problem(id) {
        Some(problem) => Err(SweepError::BadId {
            id: id.to_string(),
            problem,
        }),
        None => {
            let dir = results.join(id);
            match record::outside_problem(results, &dir) {
                Some(problem) => Err(SweepError::Outside {
                    id: id.to_string(),
                    problem,
                }),
                None => Ok(dir),
            }
        }
    }
}

/// The state of `run` under `results`.
pub fn state(results: &Path, run: &PlannedRun) -> RunState {
    let dir = match run_dir(results, &run.id) {
        Ok(d) => d,
        Err(e) => {
            return RunState::Failed {
                status: "failed".into(),
                reason: e.to_string(),
            }
        }
    };
    let summary_path = dir.join(record::SUMMARY_FILE);
    let summary = match record::read_json::<RunSummary>(&summary_path) {
        Ok(s) => Some(s),
        Err(_) if !summary_path.exists() => None,
        // A summary that is there but unreadable (truncated, not JSON) is not "unfinished":
        // retraining would hide it. It stays as it is until the user looks (or
        // --retry-failed, which moves it aside to logs/).
        Err(e) => {
            return RunState::Failed {
                status: "unreadable".into(),
                reason: format!(
                    "{e}; not retrained (--retry-failed moves it aside and trains the run again)"
                ),
            }
        }
    };
    let crashed = match summary {
        Some(s) if !(s.status == RunStatus::Failed && s.transient) => {
            return match s.status {
                RunStatus::Finished => RunState::Finished {
                    loss: s.fit_loss(),
                    left_out: (!dir.join(record::CURVE_FILE).exists()).then(|| {
                        format!("its {} is missing: left out of fits", record::CURVE_FILE)
                    }),
                },
                other => RunState::Failed {
                    status: format!("{other:?}").to_lowercase(),
                    reason: s.reason.unwrap_or_default(),
                },
            };
        }
        Some(s) => Some(s.reason.unwrap_or_default()),
        None => None,
    };
    if let Some(r) = running(results, run) {
        return r;
    }
    if dir.exists() {
        let step = record::read_curve(&dir.join(record::CURVE_FILE))
            .ok()
            .and_then(|c| c.last().map(|r| r.step));
        return RunState::Unfinished {
            step,
            checkpoint: record::checkpoint_step(&dir),
            crashed,
        };
    }
    RunState::Pending
}

/// The state of `run` read by the process that holds its lease: as [`state`], but its own
/// lease does not make the run "running".
fn state_after_lease(results: &Path, run: &PlannedRun) -> RunState {
    match state(results, run) {
        RunState::Running { .. } => RunState::Pending,
        other => other,
    }
}

/// [`RunState::Running`] when a live process holds `run`'s lease, with its progress; reads
/// only the lease and the progress file (cheap enough to poll).
pub fn running(results: &Path, run: &PlannedRun) -> Option<RunState> {
    let dir = run_dir(results, &run.id).ok()?;
    let h = lease::holder(&dir)?;
    let p: Option<record::Progress> = record::read_json(&dir.join(record::PROGRESS_FILE)).ok();
    Some(RunState::Running {
        host: h.host,
        pid: h.pid,
        step: p.as_ref().map(|p| p.step),
        steps: p.as_ref().map(|p| p.steps),
    })
}

/// Everything needed to start the runs of one sweep.
#[derive(Clone, Debug)]
pub struct Runner<'a> {
    /// The sweep.
    pub sweep: &'a Sweep,
    /// Its results folder, resolved.
    pub results: PathBuf,
    /// Its corpus, resolved (see [`Sweep::data_path`]).
    pub data: Option<PathBuf>,
    /// The `isoflop` binary (`isoflop train` is isoflop's own trainer).
    pub isoflop: PathBuf,
    /// Threads per run.
    pub threads: usize,
    /// Train again runs that failed on their own terms (diverged, bad shape).
    pub retry_failed: bool,
}

impl<'a> Runner<'a> {
    /// The runner of `sweep`, read from `sweep_file`.
    pub fn new(sweep: &'a Sweep, sweep_file: &Path, isoflop: &Path, threads: usize) -> Self {
        Runner {
            sweep,
            results: sweep.results_dir(sweep_file),
            data: sweep.data_path(sweep_file),
            isoflop: isoflop.to_path_buf(),
            threads,
            retry_failed: false,
        }
    }

    /// The command that trains `run` into `out`: the sweep's template through `sh -c`, or
    /// `isoflop train ... --resume`.
    pub fn command(&self, run: &PlannedRun, out: &Path) -> Command {
        let sweep = self.sweep;
        match &sweep.command {
            Some(t) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(expand(t, sweep, run, out, self.data.as_deref()));
                c
            }
            None => {
                let mut settings = sweep.defaults.clone();
                settings.lr = run.lr.unwrap_or(settings.lr);
                settings.seed = run.seed.unwrap_or(settings.seed);
                if run.is_trunk() {
                    settings.schedule = isoflop_core::Schedule::Constant;
                } else if run.trunk.is_some() {
                    settings.schedule = isoflop_core::Schedule::Wsd;
                }
                let mut c = Command::new(&self.isoflop);
                c.arg("train")
                    .args(["--layers", &run.layers.to_string()])
                    .args(["--d-model", &run.d_model.to_string()])
                    .args(["--heads", &run.heads.to_string()])
                    .args(["--tokens", &run.tokens.to_string()])
                    .args(settings.to_args())
                    .args(["--threads", &self.threads.to_string()]);
                if run.is_trunk() {
                    let keep: Vec<String> = run.keep_at_tokens.iter().map(u64::to_string).collect();
                    c.arg(format!("--keep-at-tokens={}", keep.join(",")));
                }
                if let (Some(trunk), Some(at)) = (&run.trunk, run.at_tokens) {
                    // The trunk's id was checked when the sweep file was read.
                    c.arg("--branch-from")
                        .arg(self.results.join(trunk))
                        .arg(format!("--at-tokens={at}"));
                }
                // `--run=ID` in one word: an id is never read as an option.
                c.arg(format!("--run={}", run.id))
                    .args(["--resume", "--quiet"])
                    .arg("--out")
                    .arg(out);
                if let Some(data) = &self.data {
                    c.arg("--data").arg(data);
                }
                c
            }
        }
    }

    /// Runs one planned run to its end (or failure) as a child process, unless it has
    /// ended or is held. A run whose last trainer died of a machine fault is resumed; one
    /// that failed on its own terms only with [`Runner::retry_failed`] (its old summary is
    /// kept in `logs/`). The child is killed if this process dies (Linux
    /// `PR_SET_PDEATHSIG`), so an orphan never keeps training. A child that exits without a
    /// summary gets one, status `failed`, `transient` (the next sweep retries it), with the
    /// signal or the last line of its standard error as the reason.
    pub fn run_one(&self, run: &PlannedRun) -> RunOutcome {
        let results = &self.results;
        let out = match run_dir(results, &run.id) {
            Ok(o) => o,
            Err(e) => return RunOutcome::Failed(e.to_string()),
        };
        // The trainer's messages go beside the run folders, not into them: a run folder
        // holds only what the trainer writes.
        let logs = results.join(crate::plan::LOGS_DIR);
        let _ = std::fs::create_dir_all(&logs);
        if let Some(o) = self.set_aside(run, &out, &logs) {
            return o;
        }
        // The run's lease, held here around whatever command trains it, so two sweeps never
        // start one run twice, whatever the trainer does; a trainer that takes the lease too
        // (ours) takes it over from us through the environment (`Lease::hand_down`).
        if let Err(e) = std::fs::create_dir_all(&out) {
            return fail(
                &out,
                run,
                format!("could not create the run folder: {e}"),
                true,
            );
        }
        let lease = match lease::Lease::acquire(&out) {
            Ok(l) => l,
            Err(lease::LeaseError::Held(_)) => return RunOutcome::HeldElsewhere,
            Err(lease::LeaseError::Io(e)) => {
                return fail(
                    &out,
                    run,
                    format!(
                        "could not take the run's lease {}: {e}",
                        out.join(lease::LEASE_FILE).display()
                    ),
                    true,
                )
            }
        };
        // Ended while we took it (another sweep finished it between our look and now).
        if matches!(
            state_after_lease(results, run),
            RunState::Finished { .. } | RunState::Failed { .. }
        ) && !self.retry_failed
        {
            return RunOutcome::AlreadyEnded;
        }
        let started = std::time::SystemTime::now();
        let (status, text) = match self.train_watched(run, &out, &logs, &lease) {
            Ok(st) => st,
            Err(o) => return o,
        };
        drop(lease);
        if status.code() == Some(record::EXIT_HELD) {
            return RunOutcome::HeldElsewhere;
        }
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
            RunState::Unfinished {
                crashed: Some(reason),
                ..
            } => RunOutcome::Failed(reason),
            RunState::Running { .. } => RunOutcome::HeldElsewhere,
            _ => {
                let _ = std::fs::create_dir_all(&out);
                // Exit status 2 is a trainer's "bad input" (ours, and argparse's): it would
                // fail again the same way. Anything else (a signal, an error of the
                // machine) is retried by the next sweep.
                fail(
                    &out,
                    run,
                    exit_reason(status, &text),
                    status.code() != Some(2),
                )
            }
        }
    }

    /// Whether `run` needs training: `Some` outcome where it has ended (or is held), and a
    /// failed or crashed run's old summary moved beside the logs before it is retried.
    fn set_aside(&self, run: &PlannedRun, out: &Path, logs: &Path) -> Option<RunOutcome> {
        let results = &self.results;
        match state(results, run) {
            RunState::Finished { .. } => return Some(RunOutcome::AlreadyEnded),
            RunState::Failed { .. } if !self.retry_failed => return Some(RunOutcome::AlreadyEnded),
            RunState::Running { .. } => return Some(RunOutcome::HeldElsewhere),
            RunState::Failed { .. }
            | RunState::Unfinished {
                crashed: Some(_), ..
            } => {
                // Keep the old summary beside the logs, then train again.
                let from = out.join(record::SUMMARY_FILE);
                let n = (1..)
                    .find(|k| !logs.join(format!("{}.failed-{k}.json", run.id)).exists())
                    .unwrap_or(1);
                if let Err(e) =
                    std::fs::rename(&from, logs.join(format!("{}.failed-{n}.json", run.id)))
                {
                    if from.exists() {
                        return Some(RunOutcome::Failed(format!(
                            "could not move {} aside to retry it: {e}",
                            from.display()
                        )));
                    }
                }
            }
            _ => {}
        }
        None
    }

    /// Starts the run's command under `lease` (handed down), its standard error copied to
    /// the run's log, and waits for it: its exit status and the end of its standard error,
    /// or the failed outcome where it could not be started or waited for.
    fn train_watched(
        &self,
        run: &PlannedRun,
        out: &Path,
        logs: &Path,
        lease: &lease::Lease,
    ) -> Result<(std::process::ExitStatus, String), RunOutcome> {
        let log = logs.join(format!("{}.log", run.id));
        let mut cmd = self.command(run, out);
        cmd.envs(lease.hand_down());
        // Standard error is read here and copied to the log, so its last words reach the
        // summary and the sweep's output even where the log cannot be written.
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: prctl, getppid and _exit are async-signal-safe and touch no memory of the
        // parent. A parent that died between the fork and the prctl sent no signal: the child
        // sees a new parent and leaves at once, before it takes the run's lease.
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => match child::supervise(child, lease, &log) {
                (Ok(status), text) => Ok((status, text)),
                (Err(e), _) => Err(fail(
                    out,
                    run,
                    format!("waiting for the trainer: {e}"),
                    true,
                )),
            },
            Err(e) => Err(fail(
                out,
                run,
                format!("could not start the trainer: {e}"),
                true,
            )),
        }
    }
}

/// Why a trainer that wrote no summary stopped, in one line: the signal that killed it, or
/// its exit status, with the last `error:` line of its standard error (else its last line).
pub fn exit_reason(status: std::process::ExitStatus, stderr: &str) -> String {
    use std::os::unix::process::ExitStatusExt;
    let how = match (status.code(), status.signal()) {
        (_, Some(sig)) => {
            let name = match sig {
                libc::SIGKILL => "SIGKILL (the out-of-memory killer, or a kill -9)",
                libc::SIGABRT => "SIGABRT (an abort, e.g. in libtorch)",
                libc::SIGSEGV => "SIGSEGV",
                libc::SIGTERM => "SIGTERM",
                libc::SIGINT => "SIGINT",
                libc::SIGBUS => "SIGBUS",
                _ => "a signal",
            };
            format!("the trainer was killed by signal {sig}, {name}")
        }
        (Some(c), None) => format!("the trainer exited with status {c}"),
        _ => "the trainer stopped".to_string(),
    };
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // Our trainer's message; else libtorch's (a C++ exception's `what():`, not the stack
    // frames printed after it); else the last line that is not a frame.
    let said = lines
        .iter()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.to_string())
        .or_else(|| {
            lines.iter().find_map(|l| {
                l.split_once("what():")
                    .map(|(_, w)| format!("libtorch: {}", w.trim()))
            })
        })
        .or_else(|| {
            lines
                .iter()
                .rev()
                .find(|l| !l.starts_with("frame #") && !l.starts_with("Exception raised from"))
                .map(|l| l.to_string())
        })
        .map(|l| record::one_line(&l));
    match said {
        Some(l) => format!("{how}: {l}"),
        None => format!("{how} and wrote no summary"),
    }
}

/// What happened to one run this time.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// Ended earlier; not run again.
    AlreadyEnded,
    /// Someone else holds it (from [`crate::executor::local`]'s pool, which waits for
    /// the holder: it ended there).
    HeldElsewhere,
    /// Trained to its end now.
    Finished,
    /// Ended badly now, with the reason (also written to its summary).
    Failed(String),
}

fn fail(out: &Path, run: &PlannedRun, reason: String, transient: bool) -> RunOutcome {
    let s = RunSummary::failed(&run.id, run.params, &reason, transient);
    let _ = record::write_atomic(
        &out.join(record::SUMMARY_FILE),
        &serde_json::to_vec_pretty(&s).expect("summary serialises"),
    );
    RunOutcome::Failed(s.reason.unwrap_or(reason))
}

/// Runs the run at `index` of the sweep (a Slurm array task).
pub fn run_index(
    sweep: &Sweep,
    sweep_file: &Path,
    index: usize,
    isoflop: &Path,
    threads: usize,
    retry_failed: bool,
) -> Result<(String, RunOutcome), SweepError> {
    let run = sweep
        .runs
        .get(index)
        .ok_or_else(|| SweepError::NoSuchIndex {
            path: sweep_file.to_path_buf(),
            index,
            runs: sweep.runs.len(),
        })?;
    let mut runner = Runner::new(sweep, sweep_file, isoflop, threads);
    runner.retry_failed = retry_failed;
    std::fs::create_dir_all(&runner.results).map_err(|source| SweepError::Io {
        path: runner.results.clone(),
        source,
    })?;
    Ok((run.id.clone(), runner.run_one(run)))
}

mod child;
mod collect;
mod template;
pub use collect::{collect, write_plan_index};
pub use template::{expand, sh_quote};

#[cfg(test)]
mod tests;
