//! `isoflop sweep`, `sweep-task`, `status` and `collect` (`plan`: plan_cmd.rs; `run`: run_cmd.rs).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use isoflop_sweep::exec::{self, RunOutcome, RunState, Runner};
use isoflop_sweep::executor::{Dispatched, Event, Executor as _};
use isoflop_sweep::plan::Sweep;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
enum Executor {
    /// A pool of processes on this machine.
    Local,
    /// A Slurm job array, submitted with sbatch.
    Slurm,
}

/// Arguments of `isoflop sweep`.
#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The sweep file.
    sweep: PathBuf,
    /// Runs at once (local).
    #[arg(long, default_value_t = 2, value_parser = at_least_one)]
    jobs: usize,
    /// Threads per run.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    threads: usize,
    /// Where to run.
    #[arg(long, value_enum, default_value_t = Executor::Local)]
    executor: Executor,
    /// Slurm: array tasks at once (%K).
    #[arg(long, default_value_t = 4, value_parser = at_least_one)]
    throttle: usize,
    /// Train again the runs that failed on their own terms (diverged, a bad shape); their
    /// old summaries are kept in the results' logs/ folder. Runs stopped by a fault of the
    /// machine (a signal, an I/O error) are retried without it.
    #[arg(long)]
    retry_failed: bool,
    /// What each Slurm task asks for; each option overrides the sweep file's `[slurm]`.
    #[command(flatten)]
    slurm: crate::slurm_opts::SlurmOpts,
}

/// Arguments of `isoflop sweep-task` (a Slurm array task).
#[derive(Args, Debug)]
pub struct TaskArgs {
    /// The sweep file.
    sweep: PathBuf,
    /// The run's index in the sweep file.
    #[arg(long)]
    index: usize,
    /// Threads.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    threads: usize,
    /// See `isoflop sweep --retry-failed`.
    #[arg(long)]
    retry_failed: bool,
    /// Stopped by a signal (the job's `--signal`, or SIGTERM), requeue this array task with
    /// `scontrol requeue` once the trainer has checkpointed: the run resumes when it starts again.
    #[arg(long)]
    requeue: bool,
}

extern "C" fn pass_on(sig: libc::c_int) {
    isoflop_sweep::exec::PASS_ON.store(sig, std::sync::atomic::Ordering::SeqCst);
}

/// The Slurm job id of this array task (`ARRAYJOB_TASK`), from Slurm's environment.
fn array_task_id() -> Option<String> {
    let job = std::env::var("SLURM_ARRAY_JOB_ID").ok()?;
    let task = std::env::var("SLURM_ARRAY_TASK_ID").ok()?;
    Some(format!("{job}_{task}"))
}

/// A count of at least 1 (`--jobs 0` would run nothing and say nothing).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Arguments of `isoflop status` and `isoflop collect`.
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// The sweep file.
    pub(crate) sweep: PathBuf,
    /// JSON instead of text (status).
    #[arg(long)]
    pub(crate) json: bool,
    /// Where collect writes the table (default: runs.csv in the results folder).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Collect: replace an --out file that isoflop did not write (or that changed since).
    #[arg(long)]
    pub(crate) force: bool,
}

fn isoflop_bin() -> Result<PathBuf> {
    std::env::current_exe().context("locating the isoflop binary")
}

pub(crate) use isoflop_core::machine::cores;

fn cpu_secs_children() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut u);
        u.ru_utime.tv_sec as f64
            + u.ru_utime.tv_usec as f64 * 1e-6
            + u.ru_stime.tv_sec as f64
            + u.ru_stime.tv_usec as f64 * 1e-6
    }
}

/// Runs a sweep on the local pool with a progress display; returns the ids of the runs
/// that failed now, with their reasons.
pub(crate) fn sweep_local(
    s: &Sweep,
    file: &Path,
    jobs: usize,
    threads: usize,
    retry_failed: bool,
) -> Result<Vec<(String, String)>> {
    let bin = isoflop_bin()?;
    let mut runner = Runner::new(s, file, &bin, threads);
    runner.retry_failed = retry_failed;
    let results = runner.results.clone();
    std::fs::create_dir_all(&results).with_context(|| format!("creating {}", results.display()))?;
    exec::write_plan_index(s, &results)
        .with_context(|| format!("writing the plan index into {}", results.display()))?;
    let total = s.runs.len() as u64;
    let ended = |r: &isoflop_sweep::plan::PlannedRun| {
        matches!(
            exec::state(&results, r),
            RunState::Finished { .. } | RunState::Failed { .. }
        )
    };
    let ended0 = s.runs.iter().filter(|r| ended(r)).count();
    eprintln!(
        "{}: {} runs, {} already ended; {} at once, {} thread(s) each; results in {}",
        file.display(),
        total,
        ended0,
        jobs,
        threads,
        results.display()
    );
    let multi = indicatif::MultiProgress::new();
    let overall = multi.add(indicatif::ProgressBar::new(total));
    overall.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} runs ended  [{elapsed_precise}]",
        )
        .expect("template"),
    );
    overall.set_position(ended0 as u64);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (t0, cpu0) = (Instant::now(), cpu_secs_children());
    if overall.is_hidden() {
        eprintln!(
            "training {} run(s); a line follows as each one starts and ends",
            total as usize - ended0
        );
    }
    let narrator = Narrator {
        s,
        plain: overall.is_hidden(),
        overall: &overall,
        t0,
        total,
        todo: s
            .runs
            .iter()
            .filter(|r| !ended(r))
            .map(|r| r.spent_flops())
            .sum(),
        done_flops: std::sync::Mutex::new(0.0),
    };
    let outcomes = std::thread::scope(|sc| {
        sc.spawn(|| run_lines(s, &results, &multi, &stop));
        let out = isoflop_sweep::executor::Local { jobs }
            .dispatch(&runner, &|id, e| narrator.event(id, e));
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    })?;
    let outcomes = match outcomes {
        Dispatched::Ran(o) => o,
        Dispatched::Submitted { .. } => Vec::new(),
    };
    overall.finish_and_clear();
    print_totals(
        s,
        &outcomes,
        t0.elapsed().as_secs_f64(),
        cpu_secs_children() - cpu0,
    );
    Ok(outcomes
        .iter()
        .filter_map(|(id, o)| match o {
            RunOutcome::Failed(why) => Some((id.clone(), why.clone())),
            _ => None,
        })
        .collect())
}

/// One line per active run, from its progress.json, twice a second, until `stop`.
fn run_lines(
    s: &Sweep,
    results: &Path,
    multi: &indicatif::MultiProgress,
    stop: &std::sync::atomic::AtomicBool,
) {
    let mut lines: Vec<(String, indicatif::ProgressBar)> = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let mut active = Vec::new();
        for r in &s.runs {
            if let Some(RunState::Running { step, steps, .. }) = exec::running(results, r) {
                active.push((r.id.clone(), step.unwrap_or(0), steps.unwrap_or(1)));
            }
        }
        lines.retain(|(id, b)| {
            let keep = active.iter().any(|a| &a.0 == id);
            if !keep {
                b.finish_and_clear();
            }
            keep
        });
        for (id, step, steps) in active {
            let bar = match lines.iter().find(|l| l.0 == id) {
                Some(l) => l.1.clone(),
                None => {
                    let b = multi.add(indicatif::ProgressBar::new(steps));
                    b.set_style(
                        indicatif::ProgressStyle::with_template(
                            "  {msg:<24} {bar:20} {pos}/{len} steps",
                        )
                        .expect("template"),
                    );
                    b.set_message(id.clone());
                    lines.push((id.clone(), b.clone()));
                    b
                }
            };
            bar.set_length(steps);
            bar.set_position(step);
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    for (_, b) in lines {
        b.finish_and_clear();
    }
}

/// What the sweep says as runs start and end: on the bars, or, where stderr is not a
/// terminal (a log file, a batch job) and the bars draw nothing, a line per run with the
/// time elapsed and an estimate of the time left (by the FLOPs of the runs ended).
struct Narrator<'a> {
    s: &'a Sweep,
    plain: bool,
    overall: &'a indicatif::ProgressBar,
    t0: Instant,
    total: u64,
    todo: f64,
    done_flops: std::sync::Mutex<f64>,
}

impl Narrator<'_> {
    fn flops_of(&self, id: &str) -> f64 {
        self.s
            .runs
            .iter()
            .find(|r| r.id == id)
            .map_or(0.0, |r| r.spent_flops())
    }

    fn event(&self, id: &str, e: Event) {
        let total = self.total;
        let o = match e {
            Event::Started => {
                if self.plain {
                    let f = *self.done_flops.lock().expect("not poisoned");
                    let el = self.t0.elapsed().as_secs_f64();
                    let left = if f > 0.0 {
                        format!("about {:.0} s left", el * (self.todo - f).max(0.0) / f)
                    } else {
                        "time left known after the first run ends".to_string()
                    };
                    eprintln!(
                        "[{}/{total}] run {id} started; {el:.0} s elapsed, {left}",
                        self.overall.position()
                    );
                }
                return;
            }
            Event::Waiting => {
                let line = format!("run {id} is being trained by another process; waiting for it");
                if self.plain {
                    eprintln!("{line}");
                } else {
                    self.overall.println(line);
                }
                return;
            }
            Event::Ended(o) => o,
        };
        self.overall.inc(matches!(
            o,
            RunOutcome::Finished | RunOutcome::Failed(_) | RunOutcome::HeldElsewhere
        ) as u64);
        let line = match o {
            RunOutcome::Failed(why) => Some(format!("run {id} failed: {why}")),
            RunOutcome::Finished if self.plain => Some(format!("run {id} finished")),
            RunOutcome::HeldElsewhere if self.plain => {
                Some(format!("run {id} ended in the process that held it"))
            }
            _ => None,
        };
        let Some(line) = line else { return };
        if !self.plain {
            self.overall.println(line);
            return;
        }
        let mut f = self.done_flops.lock().expect("not poisoned");
        *f += self.flops_of(id);
        let el = self.t0.elapsed().as_secs_f64();
        let left = if *f > 0.0 {
            el * (self.todo - *f).max(0.0) / *f
        } else {
            0.0
        };
        eprintln!(
            "[{}/{total}] {line}; {el:.0} s elapsed, about {left:.0} s left",
            self.overall.position()
        );
    }
}

/// The sweep's last line: runs by outcome, FLOPs planned, wall time and CPU utilisation.
fn print_totals(s: &Sweep, outcomes: &[(String, RunOutcome)], wall: f64, cpu: f64) {
    let count = |f: &dyn Fn(&RunOutcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let (fin, failed, held) = (
        count(&|o| *o == RunOutcome::Finished),
        count(&|o| matches!(o, RunOutcome::Failed(_))),
        count(&|o| *o == RunOutcome::HeldElsewhere),
    );
    eprintln!(
        "{fin} runs trained, {failed} failed, {held} ended in another process, {} had already ended; {:.3e} FLOPs planned; {wall:.1} s wall, CPU utilisation {:.0}% of {} cores",
        count(&|o| *o == RunOutcome::AlreadyEnded),
        s.total_flops(),
        if wall > 0.0 { 100.0 * cpu / (wall * cores() as f64) } else { 0.0 },
        cores()
    );
}

/// The error that ends a sweep whose runs failed: how many, which, and where the reasons are.
fn runs_failed(file: &Path, results: &Path, failures: &[(String, String)]) -> anyhow::Error {
    anyhow::Error::new(crate::exit::RunsFailed(format!(
        "{} run(s) failed: {}; reasons in each run's {}/ID/summary.json (`isoflop status {}` lists them); the next `isoflop sweep` resumes those stopped by a fault of the machine, --retry-failed trains the others again",
        failures.len(),
        failures.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", "),
        results.display(),
        file.display()
    )))
}

/// Refuses `--jobs` or `--threads` far above this machine's cores and warns above them
/// ([`isoflop_core::machine::check_parallelism`]).
pub(crate) fn check_local_parallelism(jobs: usize, threads: usize) -> Result<()> {
    for (option, v) in [("--jobs", jobs), ("--threads", threads)] {
        if let Some(w) = isoflop_core::machine::check_parallelism(option, v, cores())
            .map_err(anyhow::Error::msg)?
        {
            eprintln!("warning: {w}");
        }
    }
    Ok(())
}

pub fn sweep(a: SweepArgs) -> Result<()> {
    let s = Sweep::read(&a.sweep)?;
    for w in s
        .command
        .as_deref()
        .map(isoflop_sweep::plan::template_warnings)
        .unwrap_or_default()
    {
        eprintln!("warning: {}: {w}", a.sweep.display());
    }
    match a.executor {
        Executor::Local => {
            check_local_parallelism(a.jobs, a.threads)?;
            let failures = sweep_local(&s, &a.sweep, a.jobs, a.threads, a.retry_failed)?;
            if !failures.is_empty() {
                return Err(runs_failed(&a.sweep, &s.results_dir(&a.sweep), &failures));
            }
            Ok(())
        }
        Executor::Slurm => {
            let mut runner = Runner::new(&s, &a.sweep, &isoflop_bin()?, a.threads);
            runner.retry_failed = a.retry_failed;
            let slurm = isoflop_sweep::executor::Slurm {
                sweep_file: a.sweep.clone(),
                throttle: a.throttle,
                resources: a.slurm.over(&s.slurm),
            };
            if let Dispatched::Submitted { summary } = slurm.dispatch(&runner, &|_, _| {})? {
                println!("{summary}");
            }
            eprintln!("watch with: isoflop status {}", a.sweep.display());
            Ok(())
        }
    }
}

pub fn task(a: TaskArgs) -> Result<()> {
    let s = Sweep::read(&a.sweep)?;
    for sig in [libc::SIGUSR1, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(sig, pass_on as *const () as libc::sighandler_t) };
    }
    let (id, o) = exec::run_index(
        &s,
        &a.sweep,
        a.index,
        &isoflop_bin()?,
        a.threads,
        a.retry_failed,
    )?;
    let signal = exec::PASS_ON.load(std::sync::atomic::Ordering::SeqCst);
    if signal != 0 && a.requeue {
        if let Some(job) = array_task_id() {
            let r = std::process::Command::new("scontrol")
                .args(["requeue", &job])
                .output();
            match r {
                Ok(out) if out.status.success() => {
                    eprintln!(
                        "run {id}: stopped by signal {signal}; checkpointed; task {job} requeued"
                    );
                    return Ok(());
                }
                Ok(out) => eprintln!(
                    "warning: run {id}: scontrol requeue {job} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => eprintln!("warning: run {id}: could not run scontrol: {e}"),
            }
        }
    }
    match o {
        RunOutcome::Failed(why) => bail!("run {id} failed: {why}"),
        other => {
            eprintln!("run {id}: {other:?}");
            Ok(())
        }
    }
}

pub fn status(a: StatusArgs) -> Result<()> {
    let s = Sweep::read(&a.sweep)?;
    let results = s.results_dir(&a.sweep);
    let states: Vec<(String, RunState)> = s
        .runs
        .iter()
        .map(|r| (r.id.clone(), exec::state(&results, r)))
        .collect();
    if a.json {
        let v: Vec<serde_json::Value> = states
            .iter()
            .map(|(id, st)| serde_json::json!({ "run": id, "status": st }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    for (id, st) in &states {
        let text = match st {
            RunState::Pending => "pending".to_string(),
            RunState::Running {
                host,
                pid,
                step,
                steps,
            } => format!(
                "running (pid {pid} on {host}){}",
                step.zip(*steps)
                    .map(|(a, b)| format!(", step {a}/{b}"))
                    .unwrap_or_default()
            ),
            RunState::Unfinished {
                step,
                checkpoint,
                crashed,
            } => format!(
                "{}{}{}",
                match crashed {
                    Some(why) => format!("failed (the next sweep retries it): {why}; "),
                    None => String::new(),
                },
                match step {
                    Some(s) => format!("unfinished at step {s}"),
                    None => "unfinished".into(),
                },
                match checkpoint {
                    Some(c) => format!(", resumes from its checkpoint at step {c}"),
                    None => ", no checkpoint: will restart from step 0".into(),
                }
            ),
            RunState::Finished { loss, left_out } => format!(
                "finished{}{}",
                loss.map(|l| format!(", loss {l:.4}")).unwrap_or_default(),
                left_out
                    .as_ref()
                    .map(|w| format!("; but {w}"))
                    .unwrap_or_default()
            ),
            RunState::Failed { status, reason } => format!("{status}: {reason}"),
        };
        println!("{id:<28} {text}");
    }
    let fin = states
        .iter()
        .filter(|s| matches!(s.1, RunState::Finished { .. }))
        .count();
    eprintln!("{fin} of {} finished", states.len());
    Ok(())
}

pub fn collect(a: StatusArgs) -> Result<PathBuf> {
    let s = Sweep::read(&a.sweep)?;
    let results = s.results_dir(&a.sweep);
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| results.join(isoflop_core::study_dir::RUNS_TABLE));
    let c = isoflop_study::collect(&a.sweep, &out, a.force)?;
    for line in [&c.missing, &c.trunks].into_iter().flatten() {
        eprintln!("{line}");
    }
    println!("{}", c.path.display());
    Ok(c.path)
}
