//! The subcommands.

use crate::study::{self, FitOpts};
use crate::text;
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use isoflop_fit::allocate::{allocate, LawSet, Target};
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
    /// Fit on part of the runs and score the predictions of the rest (extrapolation).
    Validate(ValidateArgs),
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
    Plan(crate::plan_cmd::PlanArgs),
    /// Each size's best learning rate from a finished `plan --design lr` sweep, and the power
    /// law through them (lr-law.json, for `plan --lr-law`).
    LrFit(crate::plan_cmd::LrFitArgs),
    /// Run a sweep: a local pool, or a Slurm job array (--executor slurm). Resumes.
    Sweep(crate::sweep_cmd::SweepArgs),
    /// Run one run of a sweep by index (what a Slurm array task calls).
    SweepTask(crate::sweep_cmd::TaskArgs),
    /// Each run's state, read from the results folder.
    Status(crate::sweep_cmd::StatusArgs),
    /// The finished runs' curves as one table for `isoflop fit`.
    Collect(crate::sweep_cmd::StatusArgs),
    /// The whole job: plan the default study, train it, fit, draw, report (isoflop-out/).
    Run(crate::run_cmd::RunArgs),
    /// Runs other trainers logged (W&B, TensorBoard, trainer_state.json, JSON Lines, CSV),
    /// written as run records (or a run table) for `isoflop fit`.
    Import(crate::import_cmd::ImportArgs),
    /// The parameters and FLOPs per token of a model config, every convention.
    Count(crate::import_cmd::CountArgs),
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
    /// Replace an --out file that isoflop did not write (or that changed since).
    #[arg(long, requires = "out")]
    force: bool,
    /// Refit under each counting convention the table has columns for (all parameters and
    /// 6ND; non-embedding and Kaplan's FLOPs; active parameters; Appendix F FLOPs;
    /// DeepSeek's M: what `isoflop import --model-config` writes) and print the exponents
    /// side by side.
    #[arg(long, conflicts_with_all = ["group_by", "out"])]
    compare_conventions: bool,
    /// Warn about every refused Approach 2 budget on its own line (budgets refused for one
    /// reason otherwise share a line that counts them).
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    opts: FitOpts,
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// The run table (CSV or JSON Lines), or a folder of run folders.
    runs: PathBuf,
    /// Hold out the runs with more FLOPs than this.
    #[arg(long, value_name = "C", group = "holdout")]
    holdout_flops_above: Option<f64>,
    /// Hold out the runs with more parameters than this.
    #[arg(long, value_name = "N", group = "holdout")]
    holdout_params_above: Option<f64>,
    /// Hold out the runs of the K largest budgets.
    #[arg(long, value_name = "K", group = "holdout")]
    holdout_top_budgets: Option<usize>,
    /// Also the rolling-origin backtest: fit on the budgets up to each one, predict the rest.
    #[arg(long)]
    backtest: bool,
    /// With --backtest: draw its errors against the distance of extrapolation into this
    /// file (.svg or .png).
    #[arg(long, value_name = "FILE", requires = "backtest")]
    figure: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    opts: FitOpts,
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
    /// A built-in law: chinchilla, chinchilla-unrounded, epoch, muennighoff2023
    /// (data-constrained), kaplan2020.
    #[arg(long, default_value = "chinchilla-unrounded")]
    preset: String,
    /// Only this many unique tokens exist (with --flops): the optimal parameters, tokens and
    /// epochs under the data-constrained law (a law file fitted with --law data-constrained,
    /// or --preset muennighoff2023).
    #[arg(
        long,
        value_name = "U",
        requires = "flops",
        allow_negative_numbers = true
    )]
    unique_tokens: Option<f64>,
    /// The model will serve this many tokens (with --loss or --flops): minimise training
    /// plus inference FLOPs (Sardana et al. 2024) under the law's Chinchilla form; --flops is
    /// then the total of both.
    #[arg(
        long,
        value_name = "T",
        conflicts_with = "unique_tokens",
        allow_negative_numbers = true
    )]
    inference_tokens: Option<f64>,
    /// Training FLOPs per parameter per token (with --inference-tokens).
    #[arg(long, default_value_t = isoflop_fit::inference::Costs::default().train)]
    train_cost: f64,
    /// Inference FLOPs per parameter per token (with --inference-tokens).
    #[arg(long, default_value_t = isoflop_fit::inference::Costs::default().inference)]
    inference_cost: f64,
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
        Command::Validate(a) => validate_cmd(a),
        Command::Allocate(a) => allocate_cmd(a),
        Command::Plot(a) => plot(a),
        Command::Train { args } => train_passthrough(args),
        Command::Plan(a) => crate::plan_cmd::plan(a),
        Command::Sweep(a) => crate::sweep_cmd::sweep(a),
        Command::SweepTask(a) => crate::sweep_cmd::task(a),
        Command::Status(a) => crate::sweep_cmd::status(a),
        Command::LrFit(a) => crate::plan_cmd::lr_fit(a),
        Command::Collect(a) => crate::sweep_cmd::collect(a).map(|_| ()),
        Command::Run(a) => crate::run_cmd::run(a),
        Command::Import(a) => crate::import_cmd::import(a),
        Command::Count(a) => crate::import_cmd::count(a),
    }
}

fn fit(a: FitArgs) -> Result<()> {
    if !a.opts.group_by.is_empty() {
        return crate::compare::fit_groups(&a.runs, &a.opts, a.json);
    }
    if a.compare_conventions {
        return crate::compare::fit_conventions(&a.runs, &a.opts, a.json);
    }
    if let Some(out) = a
        .out
        .as_ref()
        .filter(|o| !a.force && isoflop_core::manifest::foreign(o))
    {
        bail!(
            "--out {}: the file exists and isoflop did not write it (or it changed since); give another --out, or pass --force",
            out.display()
        );
    }
    let (table, report) = study::read_and_fit(&a.runs, &a.opts)?;
    study::warn_mixed(&table, &a.opts);
    if let Some(out) = &a.out {
        let json = serde_json::to_vec_pretty(&report.laws())?;
        isoflop_core::manifest::write(out, &json)?;
        eprintln!("laws saved to {}", out.display());
    }
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &report)?;
        writeln!(w)?;
    } else {
        if report.settings.laws.iter().any(|l| l == "chinchilla") {
            text::print_report(&mut w, &report)?;
        } else {
            writeln!(
                w,
                "isoflop fit: {}\n  {} rows, {} runs",
                report.source, report.rows, report.runs
            )?;
        }
        text::print_forms(&mut w, &report)?;
    }
    for warning in report.warnings() {
        eprintln!("warning: {warning}");
    }
    if a.verbose {
        if let Some(f) = report.approach2.fitted() {
            for line in isoflop_fit::isoflop::folded_refusals(&f.budgets) {
                eprintln!("warning: {line}");
            }
        }
    }
    study::usable(&report)
}

fn allocate_cmd(a: AllocateArgs) -> Result<()> {
    if !(a.level > 0.0 && a.level < 1.0) {
        bail!(
            "--level is the intervals' coverage, strictly between 0 and 1 (e.g. 0.95); got {}",
            a.level
        );
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
            LawSet::from_json(&text, &p.display().to_string())?
        }
        None => LawSet::preset(&a.preset)?,
    };
    if let Some(u) = a.unique_tokens {
        return allocate_data_constrained(
            &laws,
            a.flops.expect("clap requires --flops"),
            u,
            a.level,
            a.json,
        );
    }
    if let Some(t) = a.inference_tokens {
        return allocate_inference(&laws, target, t, &a);
    }
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
            &serde_json::json!({ "law": laws.source, "target": target, "allocations": allocs, "published": laws.published }),
        )?;
        writeln!(w)?;
        return Ok(());
    }
    writeln!(w, "law: {}", laws.source)?;
    if let Some((ivs, source)) = &laws.published {
        let t: Vec<String> = ivs
            .iter()
            .map(|(k, i)| format!("{k} [{}, {}]", i.lo, i.hi))
            .collect();
        writeln!(
            w,
            "published uncertainty ({source}): {}; published without the parameters' joint distribution, so the allocation below has no interval",
            t.join(", ")
        )?;
    }
    writeln!(w, "{}", text::allocation_table(&allocs))?;
    let notes = text::allocation_notes(&allocs);
    if !notes.is_empty() {
        writeln!(w, "{notes}")?;
    }
    Ok(())
}

fn validate_cmd(a: ValidateArgs) -> Result<()> {
    use isoflop_fit::validate::{validate, Holdout};
    let s = study::settings(&a.opts)?;
    let holdout = match (
        a.holdout_flops_above,
        a.holdout_params_above,
        a.holdout_top_budgets,
    ) {
        (Some(c), _, _) => Holdout::FlopsAbove(c),
        (_, Some(n), _) => Holdout::ParamsAbove(n),
        (_, _, Some(k)) => Holdout::TopBudgets(k),
        _ => Holdout::Default,
    };
    // The extension chooses the format; checked before any work.
    let png = match &a.figure {
        None => false,
        Some(fig) => match fig
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => true,
            Some("svg") => false,
            _ => bail!(
                "--figure {}: the extension chooses the format; name a .svg or a .png file",
                fig.display()
            ),
        },
    };
    let table = isoflop_core::RunTable::read_with(&a.runs, &a.opts.columns())
        .with_context(|| format!("reading runs from {}", a.runs.display()))?;
    let v = validate(&table, &s, holdout, a.backtest)
        .with_context(|| format!("validating {}", a.runs.display()))?;
    if let Some(fig) = &a.figure {
        if png {
            isoflop_plot::render::backtest_png(&v.backtest, fig).map_err(anyhow::Error::msg)
        } else {
            isoflop_plot::render::backtest_svg(&v.backtest)
                .map_err(anyhow::Error::msg)
                .and_then(|svg| Ok(isoflop_core::record::write_atomic(fig, svg.as_bytes())?))
        }
        .with_context(|| format!("drawing the backtest into {}", fig.display()))?;
        eprintln!("backtest figure: {}", fig.display());
    }
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(&mut w, &v)?;
        writeln!(w)?;
    } else {
        text::print_validation(&mut w, &v)?;
    }
    for warning in v.fit.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

fn allocate_data_constrained(
    laws: &LawSet,
    flops: f64,
    u: f64,
    level: f64,
    json: bool,
) -> Result<()> {
    if !(u > 0.0 && u.is_finite()) {
        bail!("--unique-tokens must be a positive number, got {u}");
    }
    let Some(dc) = &laws.data_constrained else {
        bail!("{}: holds no data-constrained law; fit one with `isoflop fit --law data-constrained` or use --preset muennighoff2023", laws.source);
    };
    let al = isoflop_fit::data_constrained::allocate_with_intervals(
        &dc.estimate,
        &dc.samples,
        flops,
        u,
        level,
    )?;
    let mut w = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(
            &mut w,
            &serde_json::json!({ "law": laws.source, "allocation": al }),
        )?;
        writeln!(w)?;
        return Ok(());
    }
    let i = al.intervals.as_ref();
    let c = |v: f64| crate::format::count(v);
    let ci = |x: Option<&isoflop_fit::stats::Interval>, f: &dyn Fn(f64) -> String| {
        x.map(|x| format!(" [{}, {}]", f(x.lo), f(x.hi)))
            .unwrap_or_default()
    };
    writeln!(w, "law: {}", laws.source)?;
    writeln!(
        w,
        "{:.3e} FLOPs with {} unique tokens (data-constrained law):",
        al.flops,
        c(al.unique_tokens)
    )?;
    writeln!(
        w,
        "  params {}{}",
        c(al.params),
        ci(i.map(|i| &i.params), &c)
    )?;
    writeln!(
        w,
        "  tokens {}{}",
        c(al.tokens),
        ci(i.map(|i| &i.tokens), &c)
    )?;
    writeln!(
        w,
        "  epochs {:.2}{}",
        al.epochs,
        ci(i.map(|i| &i.epochs), &|v| format!("{v:.2}"))
    )?;
    writeln!(
        w,
        "  loss   {:.4}{}",
        al.loss,
        ci(i.map(|i| &i.loss), &|v| format!("{v:.4}"))
    )?;
    if i.is_none() {
        writeln!(w, "  (no intervals: the law has no bootstrap samples)")?;
    }
    Ok(())
}

fn allocate_inference(laws: &LawSet, target: Target, t: f64, a: &AllocateArgs) -> Result<()> {
    use isoflop_fit::inference::{for_flops, for_loss, Costs};
    let Some(law) = laws.approach3.as_ref().map(|s| s.estimate) else {
        bail!(
            "{}: holds no Chinchilla-form law (Approach 3) to allocate for inference with",
            laws.source
        );
    };
    let costs = Costs {
        train: a.train_cost,
        inference: a.inference_cost,
    };
    let al = match target {
        Target::Loss(l) => for_loss(&law, l, t, costs)?,
        Target::Flops(c) => for_flops(&law, c, t, costs)?,
        Target::Params(_) => bail!("--inference-tokens goes with --loss or --flops, not --params"),
    };
    let mut w = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer_pretty(
            &mut w,
            &serde_json::json!({ "law": laws.source, "target": target, "allocation": al }),
        )?;
        writeln!(w)?;
        return Ok(());
    }
    let c = |v: f64| crate::format::count(v);
    writeln!(w, "law: {}", laws.source)?;
    writeln!(
        w,
        "serving {} tokens ({} FLOPs per parameter per token to train, {} to serve), loss {:.4}:",
        c(t),
        costs.train,
        costs.inference,
        al.aware.loss
    )?;
    writeln!(
        w,
        "  {:<22} {:>9} {:>9} {:>7} {:>12} {:>12} {:>12}",
        "", "params", "tokens", "D/N", "training", "inference", "total"
    )?;
    for (name, p) in [
        ("inference-aware", al.aware),
        ("Chinchilla-optimal", al.chinchilla),
    ] {
        writeln!(
            w,
            "  {:<22} {:>9} {:>9} {:>7.1} {:>12.3e} {:>12.3e} {:>12.3e}",
            name,
            c(p.params),
            c(p.tokens),
            p.tokens / p.params,
            p.training_flops,
            p.inference_flops,
            p.total_flops
        )?;
    }
    writeln!(
        w,
        "  {:.2}x the parameters, {:.2}x the tokens; {:.3e} FLOPs saved ({:.1}% of the Chinchilla-optimal total)",
        al.params_ratio,
        al.tokens_ratio,
        al.flops_saved,
        100.0 * al.flops_saved / al.chinchilla.total_flops
    )?;
    Ok(())
}

fn plot(a: PlotArgs) -> Result<()> {
    study::settings(&a.opts)?;
    if !a.force {
        isoflop_plot::report::check_folder(&a.out)?;
    }
    let (table, report) = study::read_and_fit(&a.runs, &a.opts)?;
    let target = match a.target_flops {
        Some(c) if c.is_finite() && c > 0.0 => c,
        Some(c) => bail!("--target-flops must be a positive number, got {c}"),
        None => 100.0 * table.rows.iter().map(|o| o.flops).fold(0.0, f64::max),
    };
    let written = study::draw(&a.out, &report, &table, target, &[])?;
    for f in &written.files {
        println!("{}", f.display());
    }
    study::usable(&report)
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
