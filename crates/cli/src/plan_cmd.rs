//! `isoflop plan` (the designs: cosine, wsd, lr; a law of the rate against size) and
//! `isoflop lr-fit` (each size's best rate from an lr sweep, and the law through them).

use crate::sweep_cmd::cores;
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use isoflop_core::record::write_atomic;
use isoflop_sweep::design::{
    horizon_design, isoflop_design_on, lr_design, replicate, wsd_branches,
};
use isoflop_sweep::plan::{check_template, PlannedRun, Sweep};
use std::path::{Path, PathBuf};

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
    /// A learning-rate sweep: each of --sizes at --lrs peak rates spanning --lr-span around
    /// --lr, for --tokens-per-param tokens; `isoflop lr-fit` then gives the rate for each
    /// size as a law that `plan --lr-law` uses.
    Lr,
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
    /// Lr design: peak rates per size.
    #[arg(long, default_value_t = 5)]
    pub(crate) lrs: usize,
    /// Lr design: the largest over the smallest rate of a size, centred on --lr.
    #[arg(long, default_value_t = 16.0)]
    pub(crate) lr_span: f64,
    /// Lr design: tokens per parameter of each run.
    #[arg(long, default_value_t = 20.0)]
    pub(crate) tokens_per_param: f64,
    /// A law of the peak rate against size (`lr-law.json` from `isoflop lr-fit`): each run
    /// trains at the rate it gives for its model instead of --lr.
    #[arg(long, value_name = "LR-LAW.json")]
    pub(crate) lr_law: Option<PathBuf>,
    /// Train every run of the design this many times, at seeds --seed, --seed + 1, ...
    /// (replicates after the first get ids ending in -s1, -s2, ...; a fit pools them).
    #[arg(long, default_value_t = 1)]
    pub(crate) seeds: usize,
    /// The sweep file to write.
    #[arg(long, default_value = isoflop_core::study_dir::SWEEP_FILE)]
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

/// The largest budget `plan` accepts: its models (at 20 tokens per parameter) stay below
/// [`MAX_PARAMS`] and its token counts far below 2^64.
const MAX_BUDGET: f64 = 1e30;
/// The largest model `plan` builds.
const MAX_PARAMS: f64 = 1e13;

pub(crate) fn make_plan(a: &PlanArgs) -> Result<Sweep> {
    let d = a.settings.clone();
    d.check()?;
    if a.seeds == 0 {
        bail!("--seeds must be at least 1 (the number of times each run is trained)");
    }
    let (runs, notes) = designed_runs(a, &d)?;
    let mut runs = runs;
    if let Some(p) = &a.lr_law {
        if a.design == Design::Lr {
            bail!("--lr-law sets each size's rate; the lr design tries several (give one or the other)");
        }
        let law = isoflop_core::LrLaw::read(p)?;
        for r in &mut runs {
            // Three significant digits, as the lr design writes rates.
            r.lr = Some(format!("{:.3e}", law.at(r.params as f64)).parse()?);
        }
    }
    let (runs, notes) = match a.design {
        Design::Cosine | Design::Lr => (runs, notes),
        Design::Wsd => {
            let (runs, more) = wsd_branches(runs, &d);
            (runs, notes.into_iter().chain(more).collect())
        }
    };
    let runs = replicate(runs, a.seeds, d.seed);
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
        for w in isoflop_sweep::plan::template_warnings(t) {
            eprintln!("warning: --command: {w}");
        }
        if a.design == Design::Wsd {
            bail!("--design wsd trains trunks and branches with isoflop's own trainer; it takes no --command");
        }
    }
    let s = Sweep {
        name: a.name.clone(),
        results: a.results.clone(),
        data: a.data.clone(),
        vocab: 256,
        defaults: d,
        command: a.command.clone(),
        slurm: Default::default(),
        runs,
    };
    // What `Sweep::read` will check of the file, checked before it is written: plan never
    // writes a file its own reader refuses.
    s.check(&a.out)?;
    Ok(s)
}

/// The runs of the design the options name (sizes x horizons, learning rates, or IsoFLOP
/// budgets), the options checked, with the design's notes.
fn designed_runs(
    a: &PlanArgs,
    d: &isoflop_core::TrainSettings,
) -> Result<(Vec<PlannedRun>, Vec<String>)> {
    let d = d.clone();
    Ok(if let Some(range) = &a.sizes {
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
        if a.design == Design::Lr {
            if a.lrs == 0 || !(a.lr_span >= 1.0 && a.lr_span.is_finite()) {
                bail!(
                        "--lrs must be at least 1 and --lr-span (largest over smallest rate) at least 1; got {} and {}",
                        a.lrs,
                        a.lr_span
                    );
            }
            if !(a.tokens_per_param > 0.0 && a.tokens_per_param <= 1e6) {
                bail!(
                    "--tokens-per-param must be in (0, 1e6], got {}",
                    a.tokens_per_param
                );
            }
            lr_design(
                lo,
                hi,
                a.n_sizes,
                a.lrs,
                a.lr_span,
                a.tokens_per_param,
                256,
                &d,
            )
        } else {
            horizon_design(lo, hi, a.n_sizes, a.horizons, 256, &d)
        }
    } else if a.design == Design::Lr {
        bail!("--design lr takes --sizes LO..HI (and --n-sizes, --lrs, --lr-span)");
    } else if !a.budgets.is_empty() {
        isoflop_core::units::check_budgets(&a.budgets)
            .map_err(|e| anyhow::anyhow!("--budgets: {e}"))?;
        if let Some(b) = a.budgets.iter().find(|b| **b > MAX_BUDGET) {
            bail!("--budgets {b:e}: above {MAX_BUDGET:e} FLOPs the models and token counts no longer fit the planner's integers; plan at most {MAX_BUDGET:e}");
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
        // The wsd design snaps each budget's sizes to one shared ladder: more branches
        // per trunk.
        isoflop_design_on(
            &a.budgets,
            a.sizes_per_budget,
            a.spread,
            256,
            &d,
            a.design == Design::Wsd,
        )
    } else {
        bail!("give --budgets (IsoFLOP design) or --sizes LO..HI (horizons design)");
    })
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

/// Arguments of `isoflop lr-fit`.
#[derive(Args, Debug)]
pub struct LrFitArgs {
    /// The sweep file of an lr design (`plan --design lr`), its runs finished.
    sweep: PathBuf,
    /// Where to write the law (default: lr-law.json in the results folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `isoflop lr-fit`: each size's best peak rate (a parabola in ln(rate) through the best
/// rate tried and its neighbours) and the power law lr(N) = coef N^exponent through them,
/// written as JSON for `plan --lr-law`.
pub fn lr_fit(a: LrFitArgs) -> Result<()> {
    use isoflop_sweep::exec::{self, RunState};
    let s = Sweep::read(&a.sweep)?;
    let results = s.results_dir(&a.sweep);
    let mut points = Vec::new();
    let mut left_out = Vec::new();
    let mut diverged = Vec::new();
    for r in &s.runs {
        // The run's final loss as every reader of runs takes it (its summary's held-out
        // loss at the end where measured). A diverged run counts as worse than every run
        // that finished; runs that did not end, or failed for other reasons, are left out.
        let point = |loss: f64| isoflop_fit::lr::LrPoint {
            params: r.params as f64,
            lr: r.lr.unwrap_or(s.defaults.lr),
            loss,
        };
        match exec::state(&results, r) {
            RunState::Finished {
                loss: Some(loss),
                left_out: None,
            } => points.push(point(loss)),
            RunState::Failed { status, .. } if status == "diverged" => {
                diverged.push(r.id.clone());
                points.push(point(f64::INFINITY));
            }
            other => left_out.push(format!("{} ({})", r.id, other.name())),
        }
    }
    if !left_out.is_empty() {
        eprintln!(
            "{} run(s) left out: {}",
            left_out.len(),
            left_out.join(", ")
        );
    }
    if !diverged.is_empty() {
        eprintln!(
            "{} run(s) diverged, counted as worse than every finished rate of their size: {}",
            diverged.len(),
            diverged.join(", ")
        );
    }
    let sizes = isoflop_fit::lr::size_optima(&points)
        .with_context(|| format!("fitting the rates of {}", a.sweep.display()))?;
    if !a.json {
        // Each size's best rate first: where none gives a law, this says which way to look.
        println!(
            "{:>12}  {:>10}  {:>8}  {:>5}",
            "params", "best lr", "loss", "tried"
        );
        for z in &sizes {
            println!(
                "{:>12.4e}  {:>10.3e}  {:>8.4}  {:>5}{}",
                z.params,
                z.lr,
                z.loss,
                z.tried,
                z.censored
                    .as_deref()
                    .map(|c| format!("  censored: {c}"))
                    .unwrap_or_default()
            );
        }
    }
    let (law, exponent_se) = isoflop_fit::lr::law_through(&sizes)
        .with_context(|| format!("fitting the rates of {}", a.sweep.display()))?;
    let out = a.out.unwrap_or_else(|| results.join("lr-law.json"));
    write_atomic(&out, &serde_json::to_vec_pretty(&law)?)
        .with_context(|| format!("writing {}", out.display()))?;
    if a.json {
        let fit = isoflop_fit::lr::LrFit {
            sizes,
            law,
            exponent_se,
        };
        println!("{}", serde_json::to_string_pretty(&fit)?);
    } else {
        println!(
            "lr(N) = {:.4e} * N^{:.4}{}",
            law.coef,
            law.exponent,
            exponent_se
                .map(|se| format!(" (exponent standard error {se:.3})"))
                .unwrap_or_default()
        );
    }
    eprintln!("{}: the law for plan --lr-law", out.display());
    Ok(())
}
