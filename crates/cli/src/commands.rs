//! The subcommands.

use crate::format::{count, sci};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use isoflop_core::RunTable;
use isoflop_fit::allocate::{allocate, Allocation, LawSet, Target};
use isoflop_fit::isoflop::{Grouping, CHINCHILLA_BUDGETS};
use isoflop_fit::report::{fit_table, FitReport, FitSettings, Outcome};
use isoflop_fit::stats::Interval;
use std::io::Write;
use std::path::PathBuf;

/// Compute-optimal scaling laws: fit the three Chinchilla approaches and predict the
/// optimal model for a budget.
#[derive(Parser, Debug)]
#[command(name = "isoflop", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Fit Approaches 1-3 to a run table (CSV or JSON Lines).
    ///
    /// Columns (case, spaces and underscores ignored): params|N|Model Size, tokens|D,
    /// flops|C|Training FLOP, loss|val_loss|train_loss; optional budget, run, step.
    /// One of tokens and flops may be missing: D = C/(6N) or C = 6ND is derived.
    Fit(FitArgs),
    /// The optimal parameters, tokens and loss for a FLOP budget, a model size or a loss.
    Allocate(AllocateArgs),
    /// Fit, then draw the Chinchilla figures (SVG, PNG) and write report.html.
    Plot(PlotArgs),
    /// Train one GPT for one token horizon, writing its run record (config, curve, summary).
    /// Runs the `isoflop-train` binary beside this one: `isoflop train --help` for its options.
    #[command(disable_help_flag = true)]
    Train {
        /// Everything after `train`, passed on.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Plan a sweep (IsoFLOP budgets x sizes, or sizes x horizons) into a TOML file.
    Plan(crate::sweep_cmd::PlanArgs),
    /// Run a sweep: a local pool, or a Slurm job array (--executor slurm). Resumes.
    Sweep(crate::sweep_cmd::SweepArgs),
    /// Run one run of a sweep by index (what a Slurm array task calls).
    SweepTask(crate::sweep_cmd::TaskArgs),
    /// Each run's state, read from the results folder.
    Status(crate::sweep_cmd::StatusArgs),
    /// The finished runs' curves as one table for `isoflop fit`.
    Collect(crate::sweep_cmd::StatusArgs),
    /// The whole job: plan the default study, train it, fit, draw, report (isoflop-out/).
    Run(crate::sweep_cmd::RunArgs),
}

#[derive(Args, Debug)]
struct FitArgs {
    /// The run table (CSV or JSON Lines), or a folder of run folders.
    runs: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Save the fitted laws (with bootstrap samples) for `isoflop allocate --law`.
    #[arg(long, value_name = "LAW.json")]
    out: Option<PathBuf>,
    #[command(flatten)]
    opts: FitOpts,
}

/// Options shared by `fit`, `plot` and `run`.
#[derive(Args, Debug)]
pub struct FitOpts {
    /// Approaches to fit, e.g. `3` or `2,3` (default: every one the data supports).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=3))]
    approach: Vec<u8>,
    /// Drop the K highest-loss runs before Approaches 2 and 3 (Epoch drops 5).
    #[arg(long, default_value_t = 0, value_name = "K")]
    drop_top: usize,
    /// Bootstrap resamples (0 for none).
    #[arg(long, default_value_t = 1000)]
    boot: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Approach 2 budgets: `chinchilla` (the paper's nine, 6e18..3e21) or a list of FLOPs;
    /// runs go to the nearest within --budget-tol decades. Default: the `budget` column,
    /// else clusters of FLOPs.
    #[arg(long)]
    budgets: Option<String>,
    /// Approach 2 tolerance in decades of FLOPs (grouping gap, or distance to a budget).
    #[arg(long, default_value_t = isoflop_fit::isoflop::TOL_DECADES)]
    budget_tol: f64,
    /// Approach 3 Huber delta.
    #[arg(long, default_value_t = 1e-3)]
    delta: f64,
    /// Approach 1 Gaussian smoothing, standard deviation in training steps.
    #[arg(long, default_value_t = 10.0)]
    smooth_steps: f64,
    /// Approach 3 on big tables: `auto` screens the starts on 4,096 points when the table
    /// has more than 20,000, then polishes the distinct optima on all points; `off` runs
    /// every start on every point; a number screens on that many points.
    #[arg(long, default_value = "auto", value_parser = parse_screen)]
    screen: isoflop_fit::parametric::Screen,
    /// The loss column, where several columns could be it (e.g. loss and val_loss).
    #[arg(long, value_name = "NAME")]
    loss_column: Option<String>,
    /// The params (N) column, where several could be it.
    #[arg(long, value_name = "NAME")]
    params_column: Option<String>,
    /// The tokens (D) column, where several could be it.
    #[arg(long, value_name = "NAME")]
    tokens_column: Option<String>,
    /// The flops (C) column, where several could be it.
    #[arg(long, value_name = "NAME")]
    flops_column: Option<String>,
}

fn parse_screen(s: &str) -> std::result::Result<isoflop_fit::parametric::Screen, String> {
    use isoflop_fit::parametric::Screen;
    match s {
        "auto" => Ok(Screen::Auto),
        "off" => Ok(Screen::Off),
        n => match n.parse::<usize>() {
            Ok(m) if m >= 6 => Ok(Screen::Points(m)),
            _ => Err(format!("'{n}': give auto, off, or a number of points (at least 6)")),
        },
    }
}

/// Prints a line of a long fit's progress on stderr, with the seconds since the first.
fn progress_line(line: &str) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let t = START.get_or_init(std::time::Instant::now);
    eprintln!("[{:6.1} s] {line}", t.elapsed().as_secs_f64());
}

impl FitOpts {
    /// The columns the user chose.
    pub fn columns(&self) -> isoflop_core::ColumnChoice {
        isoflop_core::ColumnChoice {
            params: self.params_column.clone(),
            tokens: self.tokens_column.clone(),
            flops: self.flops_column.clone(),
            loss: self.loss_column.clone(),
        }
    }
}

#[derive(Args, Debug)]
struct PlotArgs {
    /// The run table (CSV or JSON Lines), or a folder of run folders.
    runs: PathBuf,
    /// Folder for the figures (SVG, PNG), figures.json and report.html.
    #[arg(long, default_value = "isoflop-out")]
    out: PathBuf,
    /// The budget to project to (default: 100x the table's largest FLOPs).
    #[arg(long)]
    target_flops: Option<f64>,
    /// Write into a folder that holds files a plot did not write.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    opts: FitOpts,
}

#[derive(Args, Debug)]
struct AllocateArgs {
    /// A training budget in FLOPs.
    #[arg(long, group = "target")]
    flops: Option<f64>,
    /// A model size: the budget and tokens for which it is compute-optimal.
    #[arg(long, group = "target")]
    params: Option<f64>,
    /// A loss to reach: the compute-optimal budget that reaches it.
    #[arg(long, group = "target")]
    loss: Option<f64>,
    /// A law saved by `isoflop fit --out`.
    #[arg(long, value_name = "LAW.json", conflicts_with = "preset")]
    law: Option<PathBuf>,
    /// A built-in law: chinchilla, chinchilla-unrounded, epoch.
    #[arg(long, default_value = "chinchilla-unrounded")]
    preset: String,
    /// Interval coverage.
    #[arg(long, default_value_t = 0.95)]
    level: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Fit(a) => fit(a),
        Command::Allocate(a) => allocate_cmd(a),
        Command::Plot(a) => plot(a),
        Command::Train { args } => train_passthrough(args),
        Command::Plan(a) => crate::sweep_cmd::plan(a),
        Command::Sweep(a) => crate::sweep_cmd::sweep(a),
        Command::SweepTask(a) => crate::sweep_cmd::task(a),
        Command::Status(a) => crate::sweep_cmd::status(a),
        Command::Collect(a) => crate::sweep_cmd::collect(a).map(|_| ()),
        Command::Run(a) => crate::sweep_cmd::run(a),
    }
}

/// The fit settings of the options (checked).
pub fn settings(a: &FitOpts) -> Result<FitSettings> {
    let mut s = FitSettings::default().with_bootstrap(a.boot, a.seed);
    if !a.approach.is_empty() {
        s.approaches = a.approach.clone();
        s.explicit = true;
    }
    s.drop_top = a.drop_top;
    s.parametric.delta = a.delta;
    s.parametric.screen = a.screen;
    s.parametric.progress = Some(progress_line);
    s.envelope.smooth_steps = a.smooth_steps;
    if !(a.budget_tol > 0.0 && a.budget_tol.is_finite()) {
        bail!("--budget-tol must be positive, got {}", a.budget_tol);
    }
    if !(a.delta > 0.0 && a.delta.is_finite()) {
        bail!("--delta (the Huber threshold) must be positive, got {}", a.delta);
    }
    if !(a.smooth_steps > 0.0 && a.smooth_steps.is_finite()) {
        bail!("--smooth-steps must be positive, got {}", a.smooth_steps);
    }
    s.isoflop.grouping = match a.budgets.as_deref() {
        None => Grouping::Auto {
            tol_decades: a.budget_tol,
        },
        Some("chinchilla") => Grouping::Nominal {
            budgets: CHINCHILLA_BUDGETS.to_vec(),
            tol_decades: a.budget_tol,
        },
        Some(list) => {
            let budgets = list
                .split(',')
                .map(|t| {
                    t.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && *v > 0.0)
                        .with_context(|| format!("--budgets: '{t}' is not a positive number"))
                })
                .collect::<Result<Vec<f64>>>()?;
            Grouping::Nominal {
                budgets,
                tol_decades: a.budget_tol,
            }
        }
    };
    Ok(s)
}

fn fit(a: FitArgs) -> Result<()> {
    let s = settings(&a.opts)?;
    let table = RunTable::read_with(&a.runs, &a.opts.columns())
        .with_context(|| format!("reading runs from {}", a.runs.display()))?;
    let report = fit_table(&table, &s).with_context(|| format!("fitting {}", a.runs.display()))?;
    if let Some(out) = &a.out {
        let json = serde_json::to_vec_pretty(&report.laws())?;
        isoflop_core::record::write_atomic(out, &json)?;
        eprintln!("laws saved to {}", out.display());
    }
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &report)?;
        writeln!(w)?;
    } else {
        print_report(&mut w, &report)?;
    }
    for warning in report.warnings() {
        eprintln!("warning: {warning}");
    }
    let converged3 = report.approach3.fitted().map(|f| f.diagnostics.converged);
    if converged3 == Some(false)
        && report.approach1.fitted().is_none()
        && report.approach2.fitted().is_none()
    {
        bail!("Approach 3 did not converge and no other approach could be fitted");
    }
    Ok(())
}

fn iv(i: Option<&Interval>, f: impl Fn(f64) -> String) -> String {
    match i {
        Some(i) => format!("[{}, {}]", f(i.lo), f(i.hi)),
        None => String::new(),
    }
}

fn print_report(w: &mut impl Write, r: &FitReport) -> Result<()> {
    writeln!(w, "isoflop fit: {}", r.source)?;
    writeln!(w, "  {} rows, {} runs", r.rows, r.runs)?;
    if r.dropped > 0 {
        writeln!(
            w,
            "  dropped the {} highest-loss runs before Approaches 2 and 3 ({} used)",
            r.dropped,
            r.runs - r.dropped
        )?;
    }
    for n in &r.notes {
        writeln!(w, "  note: {n}")?;
    }
    let level = (r.settings.parametric.level * 100.0).round();
    writeln!(w)?;
    write!(w, "Approach 1 (minimum-loss envelope of training curves): ")?;
    match &r.approach1 {
        Outcome::Fitted(f) => {
            writeln!(
                w,
                "{} curves, {} runs on the envelope, {} envelope points",
                f.runs,
                f.runs_on_envelope.len(),
                f.envelope.len()
            )?;
            frontier_lines(w, &f.frontier, f.intervals.as_ref(), level)?;
        }
        Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
        Outcome::NotRequested => writeln!(w, "not requested")?,
    }
    writeln!(w)?;
    write!(w, "Approach 2 (IsoFLOP profiles): ")?;
    match &r.approach2 {
        Outcome::Fitted(f) => {
            let ok = f.budgets.iter().filter(|b| b.refused.is_none()).count();
            writeln!(
                w,
                "{} budgets, {ok} with a usable parabola",
                f.budgets.len()
            )?;
            writeln!(
                w,
                "  {:>10} {:>5} {:>19} {:>9} {:>9} {:>8}",
                "budget", "runs", "sizes", "N_opt", "D_opt", "L_min"
            )?;
            for b in &f.budgets {
                let (lo, hi) = b.params_range;
                match (b.optimal_params, b.optimal_tokens, b.min_loss) {
                    (Some(n), Some(d), Some(l)) => writeln!(
                        w,
                        "  {:>10} {:>5} {:>19} {:>9} {:>9} {:>8.4}",
                        sci(b.budget),
                        b.runs,
                        format!("{}..{}", count(lo), count(hi)),
                        count(n),
                        count(d),
                        l
                    )?,
                    _ => writeln!(
                        w,
                        "  {:>10} {:>5} {:>19} refused: {}",
                        sci(b.budget),
                        b.runs,
                        format!("{}..{}", count(lo), count(hi)),
                        b.refused.as_deref().unwrap_or("")
                    )?,
                }
            }
            frontier_lines(w, &f.frontier, f.intervals.as_ref(), level)?;
        }
        Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
        Outcome::NotRequested => writeln!(w, "not requested")?,
    }
    writeln!(w)?;
    write!(
        w,
        "Approach 3 (parametric law L(N, D) = E + A/N^alpha + B/D^beta): "
    )?;
    match &r.approach3 {
        Outcome::Fitted(f) => {
            let d = &f.diagnostics;
            if d.converged {
                writeln!(w, "{} points", f.points)?;
            } else {
                writeln!(w, "DID NOT CONVERGE; the values below are not a result")?;
            }
            let i = f.intervals.as_ref();
            let g4 = |v: f64| format!("{v:.4}");
            let g1 = |v: f64| format!("{v:.1}");
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "E",
                g4(f.law.e),
                iv(i.map(|i| &i.e), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "A",
                g1(f.law.a),
                iv(i.map(|i| &i.a), g1)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "B",
                g1(f.law.b),
                iv(i.map(|i| &i.b), g1)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "alpha",
                g4(f.law.alpha),
                iv(i.map(|i| &i.alpha), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "beta",
                g4(f.law.beta),
                iv(i.map(|i| &i.beta), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "a = beta/(alpha+beta)",
                g4(f.params_exponent),
                iv(i.map(|i| &i.params_exponent), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "b = alpha/(alpha+beta)",
                g4(f.tokens_exponent),
                iv(i.map(|i| &i.tokens_exponent), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "G",
                g4(f.g),
                iv(i.map(|i| &i.g), g4)
            )?;
            writeln!(w, "  N_opt(C) = G (C/6)^a,  D_opt(C) = (C/6)^b / G")?;
            writeln!(
                w,
                "  objective {:.9e} (sum of Huber, delta {}); {} of {} starts reached it, {} converged; best start stopped by the {:?} rule, max |gradient| {:.1e}",
                f.objective, r.settings.parametric.delta, d.reached_best, d.starts, d.converged_starts, d.termination, d.grad_max
            )?;
            if let Some(sc) = &f.screening {
                writeln!(
                    w,
                    "  screened: the {} starts ran on {} of the {} points (seeded sample); the {} distinct optima found were polished on all points",
                    d.starts, sc.subsample, sc.points, sc.polished
                )?;
            }
            if let Some(i) = i {
                writeln!(w, "  intervals: {level}% percentile bootstrap, {} of {} resamples usable, seed {}", i.usable, i.resamples, i.seed)?;
                if let Some(m) = i.resample_points {
                    writeln!(w, "  (m-out-of-n bootstrap: resamples of {m} points, deviations scaled by sqrt({m}/{}))", f.points)?;
                }
            }
        }
        Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
        Outcome::NotRequested => writeln!(w, "not requested")?,
    }
    Ok(())
}

fn frontier_lines(
    w: &mut impl Write,
    f: &isoflop_fit::Frontier,
    i: Option<&isoflop_fit::isoflop::FrontierIntervals>,
    level: f64,
) -> Result<()> {
    let g4 = |v: f64| format!("{v:.4}");
    writeln!(
        w,
        "  N_opt = {:.4e} * C^{:.4}  a {}",
        f.params_coef,
        f.params_exponent,
        iv(i.map(|i| &i.params_exponent), g4)
    )?;
    writeln!(
        w,
        "  D_opt = {:.4e} * C^{:.4}  b {}",
        f.tokens_coef,
        f.tokens_exponent,
        iv(i.map(|i| &i.tokens_exponent), g4)
    )?;
    if let Some(i) = i {
        writeln!(
            w,
            "  intervals: {level}% percentile bootstrap, {} of {} resamples usable, seed {}",
            i.usable, i.resamples, i.seed
        )?;
    }
    Ok(())
}

fn allocate_cmd(a: AllocateArgs) -> Result<()> {
    if !(a.level > 0.0 && a.level < 1.0) {
        bail!("--level is the intervals' coverage, strictly between 0 and 1 (e.g. 0.95); got {}", a.level);
    }
    let target = match (a.flops, a.params, a.loss) {
        (Some(c), None, None) => Target::Flops(c),
        (None, Some(n), None) => Target::Params(n),
        (None, None, Some(l)) => Target::Loss(l),
        _ => bail!("give exactly one of --flops, --params, --loss"),
    };
    let laws: LawSet = match &a.law {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading law from {}", p.display()))?;
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: not a law file written by `isoflop fit --out`",
                    p.display()
                )
            })?
        }
        None => LawSet::preset(&a.preset).with_context(|| {
            format!(
                "unknown preset '{}'; choose one of {}",
                a.preset,
                LawSet::PRESETS.join(", ")
            )
        })?,
    };
    let allocs = allocate(&laws, target, a.level)?;
    if let Some(far) = allocs.iter().map(|al| al.flops).reduce(f64::max) {
        if let Some(warning) = laws.extrapolation_warning(far) {
            eprintln!("warning: {warning}");
        }
    }
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(
            &mut w,
            &serde_json::json!({ "law": laws.source, "target": target, "allocations": allocs }),
        )?;
        writeln!(w)?;
        return Ok(());
    }
    writeln!(w, "law: {}", laws.source)?;
    writeln!(w, "{}", allocation_table(&allocs))?;
    Ok(())
}

/// The allocation table as text (one row per approach).
pub fn allocation_table(allocs: &[Allocation]) -> String {
    let mut s = format!(
        "{:<10} {:>10} {:>8} {:>18} {:>8} {:>18} {:>6} {:>7} {:>17}\n",
        "approach", "FLOPs", "params", "", "tokens", "", "D/N", "loss", ""
    );
    for al in allocs {
        let i = al.intervals.as_ref();
        let f3 = |v: f64| format!("{v:.3}");
        s += &format!(
            "{:<10} {:>10} {:>8} {:>18} {:>8} {:>18} {:>6.1} {:>7} {:>17}\n",
            al.approach,
            sci(al.flops),
            count(al.params),
            iv(i.map(|i| &i.params), count),
            count(al.tokens),
            iv(i.map(|i| &i.tokens), count),
            al.tokens_per_param,
            al.loss.map(f3).unwrap_or_else(|| "-".into()),
            iv(i.and_then(|i| i.loss.as_ref()), f3),
        );
    }
    s.trim_end().to_string()
}

fn plot(a: PlotArgs) -> Result<()> {
    let s = settings(&a.opts)?;
    if !a.force {
        isoflop_plot::report::check_folder(&a.out)?;
    }
    let table = RunTable::read_with(&a.runs, &a.opts.columns())
        .with_context(|| format!("reading runs from {}", a.runs.display()))?;
    let report = fit_table(&table, &s).with_context(|| format!("fitting {}", a.runs.display()))?;
    let target = match a.target_flops {
        Some(c) if c.is_finite() && c > 0.0 => c,
        Some(c) => bail!("--target-flops must be a positive number, got {c}"),
        None => 100.0 * table.rows.iter().map(|o| o.flops).fold(0.0, f64::max),
    };
    let prov = isoflop_plot::report::Provenance {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        versions: format!(
            "isoflop {} (plotters 0.3, contour 0.13)",
            env!("CARGO_PKG_VERSION")
        ),
    };
    let written = isoflop_plot::report::write_all(&a.out, &report, &table, target, &prov)
        .with_context(|| format!("writing figures to {}", a.out.display()))?;
    for f in &written.files {
        println!("{}", f.display());
    }
    for w in report.warnings() {
        eprintln!("warning: {w}");
    }
    for s in &written.skipped {
        eprintln!("not drawn: {s}");
    }
    Ok(())
}

/// Replaces this process with `isoflop-train ARGS` (same pid, so its lease and a parent's
/// death signal carry over).
fn train_passthrough(args: Vec<std::ffi::OsString>) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().context("locating the isoflop binary")?;
    let trainer = exe.with_file_name("isoflop-train");
    if !trainer.exists() {
        bail!("{} is not there: this isoflop was built without training; hint: build with the default features (scripts/main.sh does)", trainer.display());
    }
    let err = std::process::Command::new(&trainer).args(args).exec();
    Err(anyhow::Error::new(err).context(format!("running {}", trainer.display())))
}
