//! `isoflop plan`, `sweep`, `sweep-task`, `status` and `collect` (`run`: run_cmd.rs).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use isoflop_core::record::write_atomic;
use isoflop_sweep::exec::{self, RunOutcome, RunState, Runner};
use isoflop_sweep::executor::{Dispatched, Event, Executor as _};
use isoflop_sweep::plan::{check_template, horizon_design, isoflop_design, wsd_branches, Sweep};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How a plan's runs are trained.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub(crate) enum Design {
    /// Every run from scratch, its own cosine (Hoffmann et al. 2022): the IsoFLOP design
    /// with --budgets, the horizons design with --sizes.
    Cosine,
    /// The same points as cooldown branches of one constant-rate trunk per model (Hägele et
    /// al. 2024): each run forks from its trunk at its horizon less --cooldown-frac and
    /// cools down to it; the trunk trains once, to the latest branch point.
    Wsd,
}

/// Arguments of `isoflop plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    /// How the runs are trained: `cosine` (each from scratch) or `wsd` (cooldown branches of
    /// shared trunks; the FLOPs spent and represented are printed).
    #[arg(long, value_enum, default_value_t = Design::Cosine)]
    pub(crate) design: Design,
    /// IsoFLOP design: comma-separated budgets in FLOPs (Approach 2).
    #[arg(long, value_delimiter = ',', conflicts_with = "sizes")]
    pub(crate) budgets: Vec<f64>,
    /// IsoFLOP design: model sizes per budget.
    #[arg(long, default_value_t = 5)]
    pub(crate) sizes_per_budget: usize,
    /// IsoFLOP design: largest over smallest size at a budget.
    #[arg(long, default_value_t = 8.0)]
    pub(crate) spread: f64,
    /// Horizons design: size range LO..HI in parameters, e.g. 0.2e6..5e6 (Approach 1).
    #[arg(long)]
    pub(crate) sizes: Option<String>,
    /// Horizons design: how many sizes.
    #[arg(long, default_value_t = 4)]
    pub(crate) n_sizes: usize,
    /// Horizons design: cosine horizons per size, spanning 16x.
    #[arg(long, default_value_t = 4)]
    pub(crate) horizons: usize,
    /// The sweep file to write.
    #[arg(long, default_value = "sweep.toml")]
    pub(crate) out: PathBuf,
    /// Results folder, relative to the sweep file.
    #[arg(long, default_value = "runs")]
    pub(crate) results: PathBuf,
    /// Corpus for every run (default: the trainer's default corpus).
    #[arg(long)]
    pub(crate) data: Option<String>,
    /// An external trainer's command template, e.g.
    /// "python train.py --n_layer {layers} --n_embd {d_model} --max_iters {steps} --out {out}".
    #[arg(long)]
    pub(crate) command: Option<String>,
    /// The training settings every run shares.
    #[command(flatten)]
    pub(crate) settings: isoflop_core::TrainSettings,
    /// Name.
    #[arg(long, default_value = "study")]
    pub(crate) name: String,
    /// Replace an existing sweep file.
    #[arg(long)]
    pub(crate) force: bool,
}

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
}

/// The largest budget `plan` accepts: its models (at 20 tokens per parameter) stay below
/// [`MAX_PARAMS`] and its token counts far below 2^64.
const MAX_BUDGET: f64 = 1e30;
/// The largest model `plan` builds.
const MAX_PARAMS: f64 = 1e13;

fn isoflop_bin() -> Result<PathBuf> {
    std::env::current_exe().context("locating the isoflop binary")
}

pub(crate) fn make_plan(a: &PlanArgs) -> Result<Sweep> {
    let d = a.settings.clone();
    d.check()?;
    let (runs, notes) = if let Some(range) = &a.sizes {
        let (lo, hi) = range
            .split_once("..")
            .context("--sizes takes LO..HI, e.g. 0.2e6..5e6")?;
        let (lo, hi): (f64, f64) = (
            lo.trim().parse().context("--sizes LO")?,
            hi.trim().parse().context("--sizes HI")?,
        );
        if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
            bail!("--sizes needs 0 < LO <= HI, got {lo}..{hi}");
        }
        if hi > MAX_PARAMS {
            bail!(
                "--sizes HI {hi:e} is above the largest model the planner builds ({MAX_PARAMS:e})"
            );
        }
        if a.n_sizes == 0 || a.horizons == 0 {
            bail!("--n-sizes and --horizons must be at least 1");
        }
        horizon_design(lo, hi, a.n_sizes, a.horizons, 256, &d)
    } else if !a.budgets.is_empty() {
        if let Some(b) = a.budgets.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            bail!("--budgets must be positive numbers, got {b}");
        }
        if let Some(b) = a.budgets.iter().find(|b| **b > MAX_BUDGET) {
            bail!("--budgets {b:e}: above {MAX_BUDGET:e} FLOPs the models and token counts no longer fit the planner's integers; plan at most {MAX_BUDGET:e}");
        }
        let mut sorted = a.budgets.clone();
        sorted.sort_by(f64::total_cmp);
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            bail!("--budgets lists {:e} twice", w[0]);
        }
        if a.sizes_per_budget == 0 {
            bail!("--sizes-per-budget must be at least 1");
        }
        if !(a.spread >= 1.0 && a.spread.is_finite()) {
            bail!(
                "--spread is the largest over the smallest size at a budget, so at least 1; got {}",
                a.spread
            );
        }
        isoflop_design(&a.budgets, a.sizes_per_budget, a.spread, 256, &d)
    } else {
        bail!("give --budgets (IsoFLOP design) or --sizes LO..HI (horizons design)");
    };
    let (runs, notes) = match a.design {
        Design::Cosine => (runs, notes),
        Design::Wsd => {
            let (runs, more) = wsd_branches(runs, &d);
            (runs, notes.into_iter().chain(more).collect())
        }
    };
    let mut d = d;
    if a.design == Design::Wsd {
        // Runs that are not branches (too short to fork after the warm-up) cool down too.
        d.schedule = isoflop_core::Schedule::Wsd;
    }
    for n in notes {
        eprintln!("note: {n}");
    }
    if runs.is_empty() {
        bail!("the plan has no runs (budgets too small for the smallest model?)");
    }
    if let Some(t) = &a.command {
        check_template(t, Path::new("--command"))?;
        if a.design == Design::Wsd {
            bail!("--design wsd trains trunks and branches with isoflop's own trainer; it takes no --command");
        }
    }
    Ok(Sweep {
        name: a.name.clone(),
        results: a.results.clone(),
        data: a.data.clone(),
        vocab: 256,
        defaults: d,
        command: a.command.clone(),
        runs,
    })
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

pub fn plan(a: PlanArgs) -> Result<()> {
    let s = make_plan(&a)?;
    if a.out.exists() && !a.force {
        bail!(
            "{} exists; pass --force to replace it (its runs' results are kept either way)",
            a.out.display()
        );
    }
    write_atomic(&a.out, s.to_toml(cores()).as_bytes())?;
    let trunks = s.runs.iter().filter(|r| r.is_trunk()).count();
    eprintln!(
        "{}: {} runs{}, {:.3e} FLOPs spent for {:.3e} FLOPs of points ({:.2}x), about {:.0} s on this machine's {} cores (estimate)",
        a.out.display(),
        s.runs.len() - trunks,
        if trunks > 0 {
            format!(" and {trunks} trunks")
        } else {
            String::new()
        },
        s.total_flops(),
        s.represented_flops(),
        s.total_flops() / s.represented_flops().max(f64::MIN_POSITIVE),
        s.estimated_secs(cores()),
        cores()
    );
    Ok(())
}

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
    let ended0 = s
        .runs
        .iter()
        .filter(|r| {
            matches!(
                exec::state(&results, r),
                RunState::Finished { .. } | RunState::Failed { .. }
            )
        })
        .count();
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
    let outcomes = std::thread::scope(|sc| {
        // One line per active run, from its progress.json, twice a second.
        sc.spawn(|| {
            let mut lines: Vec<(String, indicatif::ProgressBar)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let mut active = Vec::new();
                for r in &s.runs {
                    if let Some(RunState::Running { step, steps, .. }) = exec::running(&results, r)
                    {
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
        });
        // Where stderr is not a terminal (a log file, a batch job) the bars draw nothing: a
        // line per run ended says where the sweep is instead.
        let plain = overall.is_hidden();
        let flops_of = |id: &str| {
            s.runs
                .iter()
                .find(|r| r.id == id)
                .map_or(0.0, |r| r.spent_flops())
        };
        let todo: f64 = s
            .runs
            .iter()
            .filter(|r| {
                !matches!(
                    exec::state(&results, r),
                    RunState::Finished { .. } | RunState::Failed { .. }
                )
            })
            .map(|r| flops_of(&r.id))
            .sum();
        let done_flops = std::sync::Mutex::new(0.0f64);
        let out = isoflop_sweep::executor::Local { jobs }.dispatch(&runner, &|id, e| {
            let o = match e {
                Event::Started => {
                    if plain {
                        let f = *done_flops.lock().expect("not poisoned");
                        let el = t0.elapsed().as_secs_f64();
                        let left = if f > 0.0 {
                            format!("about {:.0} s left", el * (todo - f).max(0.0) / f)
                        } else {
                            "time left known after the first run ends".to_string()
                        };
                        eprintln!(
                            "[{}/{total}] run {id} started; {el:.0} s elapsed, {left}",
                            overall.position()
                        );
                    }
                    return;
                }
                Event::Ended(o) => o,
            };
            overall.inc(matches!(o, RunOutcome::Finished | RunOutcome::Failed(_)) as u64);
            let line = match o {
                RunOutcome::Failed(why) => Some(format!("run {id} failed: {why}")),
                RunOutcome::Finished if plain => Some(format!("run {id} finished")),
                _ => None,
            };
            if let Some(line) = line {
                if plain {
                    let mut f = done_flops.lock().expect("not poisoned");
                    *f += flops_of(id);
                    let el = t0.elapsed().as_secs_f64();
                    let left = if *f > 0.0 {
                        el * (todo - *f).max(0.0) / *f
                    } else {
                        0.0
                    };
                    eprintln!(
                        "[{}/{total}] {line}; {el:.0} s elapsed, about {left:.0} s left",
                        overall.position()
                    );
                } else {
                    overall.println(line);
                }
            }
        });
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        out
    })?;
    let outcomes = match outcomes {
        Dispatched::Ran(o) => o,
        Dispatched::Submitted { .. } => Vec::new(),
    };
    overall.finish_and_clear();
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_secs_children() - cpu0;
    let count = |f: &dyn Fn(&RunOutcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let (fin, failed, held) = (
        count(&|o| *o == RunOutcome::Finished),
        count(&|o| matches!(o, RunOutcome::Failed(_))),
        count(&|o| *o == RunOutcome::HeldElsewhere),
    );
    let failures: Vec<(String, String)> = outcomes
        .iter()
        .filter_map(|(id, o)| match o {
            RunOutcome::Failed(why) => Some((id.clone(), why.clone())),
            _ => None,
        })
        .collect();
    eprintln!(
        "{fin} runs trained, {failed} failed, {held} held by another process, {} had already ended; {:.3e} FLOPs planned; {wall:.1} s wall, CPU utilisation {:.0}% of {} cores",
        count(&|o| *o == RunOutcome::AlreadyEnded),
        s.total_flops(),
        if wall > 0.0 { 100.0 * cpu / (wall * cores() as f64) } else { 0.0 },
        cores()
    );
    Ok(failures)
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

pub fn sweep(a: SweepArgs) -> Result<()> {
    let s = Sweep::read(&a.sweep)?;
    match a.executor {
        Executor::Local => {
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
    let (id, o) = exec::run_index(
        &s,
        &a.sweep,
        a.index,
        &isoflop_bin()?,
        a.threads,
        a.retry_failed,
    )?;
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
            RunState::Finished { loss } => format!(
                "finished{}",
                loss.map(|l| format!(", loss {l:.4}")).unwrap_or_default()
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
    let out = a.out.clone().unwrap_or_else(|| results.join("runs.csv"));
    let (table, missing) = match exec::collect(&s, &results) {
        Ok(t) => t,
        Err(isoflop_core::CoreError::Empty { .. } | isoflop_core::CoreError::NoRuns { .. }) => {
            bail!(
                "no run of {} has finished; nothing to collect",
                a.sweep.display()
            )
        }
        Err(e) => return Err(e.into()),
    };
    if !missing.is_empty() {
        eprintln!(
            "{} run(s) not in the table: {}",
            missing.len(),
            missing
                .iter()
                .map(|(id, st)| format!(
                    "{id} ({})",
                    serde_json::to_value(st)
                        .ok()
                        .and_then(|v| v["state"].as_str().map(String::from))
                        .unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let trunks: Vec<&str> = s
        .runs
        .iter()
        .filter(|r| r.is_trunk())
        .map(|r| r.id.as_str())
        .collect();
    if !trunks.is_empty() {
        eprintln!(
            "{} trunk(s) of cooldown branches not in the table (each branch's curve holds its trunk's rows): {}",
            trunks.len(),
            trunks.join(", ")
        );
    }
    write_atomic(&out, table.to_csv().as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    println!("{}", out.display());
    Ok(out)
}
