//! What a plan is made from ([`PlanSpec`]): the design, its sizes or budgets, the training
//! settings every run shares, the sweep file and its results folder, with one [`Default`]
//! (`isoflop plan` takes its fields as options, their defaults read from it; `isoflop run`
//! plans its study from it), and [`make_plan`], which turns it into a checked [`Sweep`].

use crate::design::{horizon_design, isoflop_design_on, lr_design, replicate, wsd_branches};
use crate::plan::{check_template, PlanError, PlannedRun, Sweep};
use isoflop_core::TrainSettings;
use std::path::{Path, PathBuf};

/// How a plan's runs are trained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Design {
    /// Every run from scratch, its own cosine (Hoffmann et al. 2022): the IsoFLOP design
    /// with --budgets, the horizons design with --sizes.
    #[default]
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

/// The results folder a plan names by default, relative to its sweep file.
pub const RESULTS_DIR: &str = "runs";

/// A plan's options, as `isoflop plan` takes them: one [`Default`], which the command
/// line's defaults are read from.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct PlanSpec {
    /// How the runs are trained: `cosine` (each from scratch) or `wsd` (cooldown branches of
    /// shared trunks; the FLOPs spent and represented are printed).
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = PlanSpec::default().design))]
    pub design: Design,
    /// IsoFLOP design: comma-separated budgets in FLOPs (Approach 2).
    #[cfg_attr(
        feature = "clap",
        arg(long, value_delimiter = ',', conflicts_with = "sizes")
    )]
    pub budgets: Vec<f64>,
    /// IsoFLOP design: model sizes per budget.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().sizes_per_budget))]
    pub sizes_per_budget: usize,
    /// IsoFLOP design: largest over smallest size at a budget.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().spread))]
    pub spread: f64,
    /// Horizons design: size range LO..HI in parameters, e.g. 0.2e6..5e6 (Approach 1).
    #[cfg_attr(feature = "clap", arg(long))]
    pub sizes: Option<String>,
    /// Horizons design: how many sizes.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().n_sizes))]
    pub n_sizes: usize,
    /// Horizons design: cosine horizons per size, spanning 16x.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().horizons))]
    pub horizons: usize,
    /// Lr design: peak rates per size.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().lrs))]
    pub lrs: usize,
    /// Lr design: the largest over the smallest rate of a size, centred on --lr.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().lr_span))]
    pub lr_span: f64,
    /// Lr design: tokens per parameter of each run.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().tokens_per_param))]
    pub tokens_per_param: f64,
    /// A law of the peak rate against size (`lr-law.json` from `isoflop lr-fit`): each run
    /// trains at the rate it gives for its model instead of --lr.
    #[cfg_attr(feature = "clap", arg(long, value_name = "LR-LAW.json"))]
    pub lr_law: Option<PathBuf>,
    /// Train every run of the design this many times, at seeds --seed, --seed + 1, ...
    /// (replicates after the first get ids ending in -s1, -s2, ...; a fit pools them).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().seeds))]
    pub seeds: usize,
    /// The sweep file to write.
    #[cfg_attr(feature = "clap", arg(long, default_value = isoflop_core::study_dir::SWEEP_FILE))]
    pub out: PathBuf,
    /// Results folder, relative to the sweep file.
    #[cfg_attr(feature = "clap", arg(long, default_value = RESULTS_DIR))]
    pub results: PathBuf,
    /// Corpus for every run (default: the trainer's default corpus).
    #[cfg_attr(feature = "clap", arg(long))]
    pub data: Option<String>,
    /// An external trainer's command template, e.g.
    /// "python train.py --n_layer {layers} --n_embd {d_model} --max_iters {steps} --out {out}".
    #[cfg_attr(feature = "clap", arg(long))]
    pub command: Option<String>,
    /// The training settings every run shares.
    #[cfg_attr(feature = "clap", command(flatten))]
    pub settings: TrainSettings,
    /// Name.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = PlanSpec::default().name))]
    pub name: String,
}

impl Default for PlanSpec {
    fn default() -> Self {
        PlanSpec {
            design: Design::default(),
            budgets: Vec::new(),
            sizes_per_budget: 5,
            spread: 8.0,
            sizes: None,
            n_sizes: 4,
            horizons: 4,
            lrs: 5,
            lr_span: 16.0,
            tokens_per_param: 20.0,
            lr_law: None,
            seeds: 1,
            out: isoflop_core::study_dir::SWEEP_FILE.into(),
            results: RESULTS_DIR.into(),
            data: None,
            command: None,
            settings: TrainSettings::default(),
            name: "study".into(),
        }
    }
}

/// A plan made: the sweep, what the design noted (runs that train on their own), and
/// warnings about a command template.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The sweep, checked as its reader will check the file.
    pub sweep: Sweep,
    /// The design's notes.
    pub notes: Vec<String>,
    /// Warnings about `command` (placeholders a trainer may not read).
    pub warnings: Vec<String>,
}

/// The largest budget a plan accepts: its models (at 20 tokens per parameter) stay below
/// [`MAX_PARAMS`] and its token counts far below 2^64.
pub const MAX_BUDGET: f64 = 1e30;
/// The largest model a plan builds.
pub const MAX_PARAMS: f64 = 1e13;

fn setting(message: String) -> PlanError {
    PlanError::Setting(message)
}

/// The plan `spec` describes.
///
/// # Errors
/// [`PlanError::Setting`] naming the option that cannot be used (no budgets or sizes, a
/// spread under 1, zero seeds, an lr law with the lr design, a command with the wsd
/// design); [`PlanError`]s of the training settings, the lr law or the sweep's own check.
///
/// # Example
/// ```
/// use isoflop_sweep::spec::{make_plan, Design, PlanSpec};
/// let spec = PlanSpec { design: Design::Wsd, budgets: vec![1e12, 3e12], ..Default::default() };
/// let planned = make_plan(&spec).unwrap();
/// // Five sizes per budget, each a cooldown branch of one trunk per model shape.
/// let trunks = planned.sweep.runs.iter().filter(|r| r.is_trunk()).count();
/// assert_eq!(planned.sweep.runs.len() - trunks, 10);
/// assert!(planned.sweep.total_flops() < planned.sweep.represented_flops());
/// ```
pub fn make_plan(spec: &PlanSpec) -> Result<Planned, PlanError> {
    let a = spec;
    let d = a.settings.clone();
    d.check()?;
    if a.seeds == 0 {
        return Err(setting(
            "--seeds must be at least 1 (the number of times each run is trained)".into(),
        ));
    }
    let (mut runs, notes) = designed_runs(a, &d)?;
    if let Some(p) = &a.lr_law {
        if a.design == Design::Lr {
            return Err(setting("--lr-law sets each size's rate; the lr design tries several (give one or the other)".into()));
        }
        let law = isoflop_core::LrLaw::read(p)?;
        for r in &mut runs {
            // Three significant digits, as the lr design writes rates.
            let lr = format!("{:.3e}", law.at(r.params as f64));
            r.lr = Some(lr.parse().expect("a formatted number parses"));
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
    if runs.is_empty() {
        return Err(PlanError::Empty(
            "budgets too small for the smallest model?".into(),
        ));
    }
    let mut warnings = Vec::new();
    if let Some(t) = &a.command {
        check_template(t, Path::new("--command"))?;
        warnings = crate::plan::template_warnings(t);
        if a.design == Design::Wsd {
            return Err(setting("--design wsd trains trunks and branches with isoflop's own trainer; it takes no --command".into()));
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
    // What `Sweep::read` will check of the file, checked before it is written: a plan is
    // never a file its own reader refuses.
    s.check(&a.out)?;
    Ok(Planned {
        sweep: s,
        notes,
        warnings,
    })
}

/// A number of `what` (an option and its part), or the error naming both.
fn number(text: &str, what: &str) -> Result<f64, PlanError> {
    text.trim()
        .parse()
        .map_err(|e| setting(format!("{what}: {:?} is not a number ({e})", text.trim())))
}

/// The runs of the design the options name (sizes x horizons, learning rates, or IsoFLOP
/// budgets), the options checked, with the design's notes.
fn designed_runs(
    a: &PlanSpec,
    d: &TrainSettings,
) -> Result<(Vec<PlannedRun>, Vec<String>), PlanError> {
    if let Some(range) = &a.sizes {
        let (lo, hi) = range
            .split_once("..")
            .ok_or_else(|| setting("--sizes takes LO..HI, e.g. 0.2e6..5e6".into()))?;
        let (lo, hi) = (number(lo, "--sizes LO")?, number(hi, "--sizes HI")?);
        if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
            return Err(setting(format!(
                "--sizes needs 0 < LO <= HI, got {lo}..{hi}"
            )));
        }
        if hi > MAX_PARAMS {
            return Err(setting(format!(
                "--sizes HI {hi:e} is above the largest model the planner builds ({MAX_PARAMS:e})"
            )));
        }
        if a.n_sizes == 0 || a.horizons == 0 {
            return Err(setting(
                "--n-sizes and --horizons must be at least 1".into(),
            ));
        }
        if a.design != Design::Lr {
            return Ok(horizon_design(lo, hi, a.n_sizes, a.horizons, 256, d));
        }
        if a.lrs == 0 || !(a.lr_span >= 1.0 && a.lr_span.is_finite()) {
            return Err(setting(format!(
                "--lrs must be at least 1 and --lr-span (largest over smallest rate) at least 1; got {} and {}",
                a.lrs, a.lr_span
            )));
        }
        if !(a.tokens_per_param > 0.0 && a.tokens_per_param <= 1e6) {
            return Err(setting(format!(
                "--tokens-per-param must be in (0, 1e6], got {}",
                a.tokens_per_param
            )));
        }
        return Ok(lr_design(
            lo,
            hi,
            a.n_sizes,
            a.lrs,
            a.lr_span,
            a.tokens_per_param,
            256,
            d,
        ));
    }
    if a.design == Design::Lr {
        return Err(setting(
            "--design lr takes --sizes LO..HI (and --n-sizes, --lrs, --lr-span)".into(),
        ));
    }
    if a.budgets.is_empty() {
        return Err(setting(
            "give --budgets (IsoFLOP design) or --sizes LO..HI (horizons design)".into(),
        ));
    }
    isoflop_core::units::check_budgets(&a.budgets)
        .map_err(|e| setting(format!("--budgets: {e}")))?;
    if let Some(b) = a.budgets.iter().find(|b| **b > MAX_BUDGET) {
        return Err(setting(format!("--budgets {b:e}: above {MAX_BUDGET:e} FLOPs the models and token counts no longer fit the planner's integers; plan at most {MAX_BUDGET:e}")));
    }
    if a.sizes_per_budget == 0 {
        return Err(setting("--sizes-per-budget must be at least 1".into()));
    }
    if !(a.spread >= 1.0 && a.spread.is_finite()) {
        return Err(setting(format!(
            "--spread is the largest over the smallest size at a budget, so at least 1; got {}",
            a.spread
        )));
    }
    // The wsd design snaps each budget's sizes to one shared ladder: more branches per
    // trunk.
    Ok(isoflop_design_on(
        &a.budgets,
        a.sizes_per_budget,
        a.spread,
        256,
        d,
        a.design == Design::Wsd,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "clap")]
    #[test]
    fn no_options_on_the_command_line_are_the_one_default() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            spec: PlanSpec,
        }
        let parsed = Cli::try_parse_from(["plan"]).unwrap().spec;
        assert_eq!(parsed, PlanSpec::default());
    }

    #[test]
    fn options_no_plan_can_use_are_refused_by_name() {
        let with = |f: &dyn Fn(&mut PlanSpec)| {
            let mut s = PlanSpec {
                budgets: vec![1e12],
                ..Default::default()
            };
            f(&mut s);
            make_plan(&s).unwrap_err().to_string()
        };
        assert!(with(&|s| s.spread = 0.5).contains("--spread"));
        assert!(with(&|s| s.seeds = 0).contains("--seeds must be at least 1"));
        assert!(with(&|s| s.budgets.clear()).contains("give --budgets"));
        assert!(with(&|s| s.budgets = vec![1e40]).contains("1e40"));
        assert!(with(&|s| s.sizes = Some("1e6..x".into())).contains("--sizes HI: \"x\""));
        assert!(with(&|s| {
            s.design = Design::Wsd;
            s.command = Some("python t.py --out {out}".into());
        })
        .contains("takes no --command"));
    }
}
