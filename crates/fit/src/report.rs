//! One call that fits every approach a run table supports: what `isoflop fit` prints and
//! what the figures and the report draw.

use crate::allocate::{LawSet, Sampled};
use crate::envelope::{fit_envelope, EnvelopeFit, EnvelopeOptions};
use crate::error::FitError;
use crate::isoflop::{fit_isoflop, Grouping, IsoFlopFit, IsoFlopOptions};
use crate::parametric::{fit_parametric, ParametricFit, ParametricOptions};
use isoflop_core::table::drop_highest_loss;
use isoflop_core::RunTable;

/// Settings for [`crate::study::fit_table`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FitSettings {
    /// Which approaches (1, 2, 3) to fit.
    pub approaches: Vec<u8>,
    /// True when the user named the approaches: one that cannot be fitted is then an error.
    pub explicit: bool,
    /// Drop the k highest-loss final points before Approaches 2 and 3 (Epoch drops 5).
    pub drop_top: usize,
    /// Approach 1 settings.
    pub envelope: EnvelopeOptions,
    /// Approach 2 settings.
    pub isoflop: IsoFlopOptions,
    /// Approach 3 settings.
    pub parametric: ParametricOptions,
    /// The law forms to fit: `chinchilla` (the three approaches), `data-constrained`,
    /// `kaplan`. A form named here that cannot be fitted is an error.
    #[serde(default = "default_laws")]
    pub laws: Vec<String>,
}

fn default_laws() -> Vec<String> {
    vec!["chinchilla".into()]
}

/// The law forms [`FitSettings::laws`] accepts.
pub const LAW_FORMS: [&str; 3] = ["chinchilla", "data-constrained", "kaplan"];

impl Default for FitSettings {
    fn default() -> Self {
        FitSettings {
            approaches: vec![1, 2, 3],
            explicit: false,
            drop_top: 0,
            envelope: EnvelopeOptions::default(),
            isoflop: IsoFlopOptions::default(),
            parametric: ParametricOptions::default(),
            laws: default_laws(),
        }
    }
}

impl FitSettings {
    /// Refuses settings no fit can use, each named as `isoflop fit` and `isoflop.fit` both
    /// spell it: approaches other than 1, 2 and 3, an unknown law form, a Huber threshold,
    /// smoothing width or budget tolerance that is not positive. [`crate::study::fit_table`] checks first.
    ///
    /// # Errors
    /// [`FitError::InvalidOption`] naming the setting and the value.
    pub fn check(&self) -> Result<(), FitError> {
        let bad = |m: String| Err(FitError::InvalidOption(m));
        if let Some(a) = self.approaches.iter().find(|a| !(1..=3).contains(*a)) {
            return bad(format!("approach {a} is not 1, 2 or 3"));
        }
        if let Some(l) = self.laws.iter().find(|l| !LAW_FORMS.contains(&l.as_str())) {
            return bad(format!(
                "law form '{l}' is unknown; choose from {}",
                LAW_FORMS.join(", ")
            ));
        }
        let positive = |v: f64| v > 0.0 && v.is_finite();
        if !positive(self.parametric.delta) {
            return bad(format!(
                "delta (the Huber threshold) must be positive, got {}",
                self.parametric.delta
            ));
        }
        if !positive(self.envelope.smooth_steps) {
            return bad(format!(
                "smooth steps (Approach 1's Gaussian, in training steps) must be positive, got {}",
                self.envelope.smooth_steps
            ));
        }
        let tol = match &self.isoflop.grouping {
            Grouping::Auto { tol_decades } | Grouping::Nominal { tol_decades, .. } => *tol_decades,
        };
        if !positive(tol) {
            return bad(format!("budget tolerance must be positive, got {tol}"));
        }
        check_resamples(
            self.parametric.boot.resamples,
            isoflop_core::machine::available_memory(),
        )
        .map_err(FitError::InvalidOption)
    }

    /// The settings with `set` applied to every approach's bootstrap.
    fn each_boot(mut self, set: impl Fn(&mut crate::stats::Bootstrap)) -> Self {
        for b in [
            &mut self.envelope.boot,
            &mut self.isoflop.boot,
            &mut self.parametric.boot,
        ] {
            set(b);
        }
        self
    }

    /// The settings with `boot` as every approach's bootstrap.
    pub fn with_boot(self, boot: crate::stats::Bootstrap) -> Self {
        self.each_boot(|b| *b = boot)
    }

    /// The settings with every approach's bootstrap drawing `unit`s.
    pub fn with_boot_unit(self, unit: crate::stats::BootUnit) -> Self {
        self.each_boot(|b| b.unit = unit)
    }

    /// Sets resamples and seed for all three approaches.
    pub fn with_bootstrap(self, resamples: usize, seed: u64) -> Self {
        self.each_boot(|b| {
            b.resamples = resamples;
            b.seed = seed;
        })
    }
}

/// Bytes the results of one bootstrap resample take, generously: each approach keeps its
/// refit (a frontier of 4 numbers, a law of 5 to 7) and its summary statistics, and the
/// percentile intervals sort copies of them.
pub const BYTES_PER_RESAMPLE: u64 = 512;

/// Refuses, before any work, a bootstrap whose results would not fit in half of the
/// `available` memory (assumed 8 GB where the system does not say): `--boot 1000000000`
/// is a clear error, not an abort allocating 40 GB.
///
/// # Errors
/// The count asked for, the memory it needs and the largest count that fits.
pub fn check_resamples(resamples: usize, available: Option<u64>) -> Result<(), String> {
    let budget = available.unwrap_or(8 << 30) / 2;
    let need = (resamples as u64).saturating_mul(BYTES_PER_RESAMPLE);
    if need > budget {
        return Err(format!(
            "--boot {resamples}: the bootstrap's results alone would take about {}, more than half of this machine's {} free; at most {} resamples fit",
            isoflop_core::machine::bytes(need as f64),
            isoflop_core::machine::bytes((2 * budget) as f64),
            budget / BYTES_PER_RESAMPLE
        ));
    }
    Ok(())
}

/// A fitted approach, or why it was not fitted.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome<T> {
    /// The fit.
    Fitted(T),
    /// Not fitted, and why.
    Skipped(String),
    /// Not asked for.
    NotRequested,
}

impl<T> Outcome<T> {
    /// The fit, if there is one.
    pub fn fitted(&self) -> Option<&T> {
        match self {
            Outcome::Fitted(t) => Some(t),
            _ => None,
        }
    }
}

/// Everything a fit of one table produced.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FitReport {
    /// The table's file.
    pub source: String,
    /// Rows read.
    pub rows: usize,
    /// Runs (final points) found.
    pub runs: usize,
    /// Final points dropped by `drop_top`.
    pub dropped: usize,
    /// What reading the table derived or noticed.
    pub notes: Vec<String>,
    /// Approach 1.
    pub approach1: Outcome<EnvelopeFit>,
    /// Approach 2.
    pub approach2: Outcome<IsoFlopFit>,
    /// Approach 3.
    pub approach3: Outcome<ParametricFit>,
    /// The settings used.
    pub settings: FitSettings,
    /// The smallest and largest FLOPs of the final points fitted.
    #[serde(default)]
    pub flops_range: Option<[f64; 2]>,
    /// What is wrong with the table as a whole (one model size, one token count, losses
    /// that cannot be nats).
    #[serde(default)]
    pub table_warnings: Vec<String>,
    /// The data-constrained law, where asked for.
    #[serde(default)]
    pub data_constrained: Option<Outcome<crate::data_constrained::DataConstrainedFit>>,
    /// Kaplan et al.'s form, where asked for.
    #[serde(default)]
    pub kaplan: Option<Outcome<crate::kaplan::KaplanFit>>,
    /// Where two or more forms were fitted: each scored on the same final points it was
    /// fitted to, best first.
    #[serde(default)]
    pub comparison: Vec<crate::forms::Score>,
    /// Where two or more forms were fitted: each refitted without the runs of `isoflop
    /// validate`'s default split and scored on them, best first; or why it could not be.
    #[serde(default)]
    pub held_out: Option<Outcome<crate::forms::FormsHeldOut>>,
    /// Approaches 1 and 2 refitted on losses drawn exactly from Approach 3's law at the same
    /// rows ([`crate::design`]): what the design alone does to their a. Made where
    /// Approach 3 and one of the others were fitted.
    #[serde(default)]
    pub design_check: Option<DesignCheck>,
    /// Which columns gave N and C (the counting convention) and the losses' unit.
    #[serde(default)]
    pub counted: isoflop_core::Counted,
}

impl FitReport {
    /// The laws fitted, one per form: Approach 3's where it converged, the data-constrained
    /// law, Kaplan's.
    pub fn forms(&self) -> Vec<&dyn crate::forms::LawForm> {
        let mut laws: Vec<&dyn crate::forms::LawForm> = Vec::new();
        if let Some(f) = self.approach3.fitted().filter(|f| f.diagnostics.converged) {
            laws.push(&f.law);
        }
        if let Some(f) = self.data_constrained.as_ref().and_then(|o| o.fitted()) {
            laws.push(&f.law);
        }
        if let Some(f) = self.kaplan.as_ref().and_then(|o| o.fitted()) {
            laws.push(&f.law);
        }
        laws
    }
}

/// A bias larger than this (in a) is also a warning.
pub const WARN_BIAS: f64 = 0.05;

/// Approaches 1 and 2 on losses drawn exactly from a law at the table's own N and D.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DesignCheck {
    /// The law's a = beta/(alpha+beta), the value an unbiased approach returns.
    pub law_a: f64,
    /// Approach 1's a on the law's losses, where it could be fitted.
    pub approach1_a: Option<f64>,
    /// Approach 2's a on the law's losses, where it could be fitted.
    pub approach2_a: Option<f64>,
}

impl DesignCheck {
    /// Approach 1's bias in a (its a less the law's).
    pub fn approach1_bias(&self) -> Option<f64> {
        self.approach1_a.map(|a| a - self.law_a)
    }

    /// Approach 2's bias in a.
    pub fn approach2_bias(&self) -> Option<f64> {
        self.approach2_a.map(|a| a - self.law_a)
    }

    /// A warning per approach whose bias exceeds [`WARN_BIAS`].
    pub fn warnings(&self) -> Vec<String> {
        [
            ("Approach 1", self.approach1_a),
            ("Approach 2", self.approach2_a),
        ]
        .into_iter()
        .filter_map(|(name, a)| {
            let a = a?;
            let bias = a - self.law_a;
            (bias.abs() > WARN_BIAS).then(|| {
                format!(
                    "{name}: on losses drawn exactly from Approach 3's law (a = {:.4}) at these runs' sizes and tokens it gives a = {a:.4}, a bias of {bias:+.4} from the design alone (sizes, budgets, curves)",
                    self.law_a
                )
            })
        })
        .collect()
    }
}

/// A final loss above this many nats per token warns: ln 262,144, a uniform guess over a
/// 256k-token vocabulary (larger than any common LLM's); such numbers are perplexities, or
/// not per token.
pub const MAX_PLAUSIBLE_LOSS: f64 = 12.48;

/// What the final points cannot tell: warnings for a table whose N or D takes one value,
/// and for losses too large to be nats per token.
pub fn table_warnings(points: &[isoflop_core::Observation]) -> Vec<String> {
    let mut w = Vec::new();
    if points.len() >= 2 {
        for (what, f) in [
            (
                "model size N",
                (|o: &isoflop_core::Observation| o.params) as fn(&_) -> f64,
            ),
            ("token count D", |o| o.tokens),
        ] {
            if crate::stats::distinct(points.iter().map(f)) < 2 {
                w.push(format!(
                    "every run has the same {what} ({:.4e}): the table cannot separate the effect of {what} from the rest; Approach 3 is refused and Approaches 1 and 2 see no trade-off",
                    f(&points[0])
                ));
            }
        }
    }
    if let Some(max) = points.iter().map(|o| o.loss).reduce(f64::max) {
        if max > MAX_PLAUSIBLE_LOSS {
            w.push(format!(
                "losses up to {max:.4} exceed {MAX_PLAUSIBLE_LOSS} nats per token (a uniform guess over 262,144 tokens): isoflop reads losses as nats per token; are these perplexities, bits over a whole sequence, or another unit?"
            ));
        }
    }
    w
}

impl FitReport {
    /// Every warning of every approach, in order.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.table_warnings.clone();
        if let Some(f) = self.approach1.fitted() {
            w.extend(f.warnings.iter().cloned());
        }
        if let Some(f) = self.approach2.fitted() {
            w.extend(f.warnings.iter().cloned());
        }
        if let Some(f) = self.approach3.fitted() {
            w.extend(f.warnings.iter().cloned());
        }
        if let Some(d) = &self.design_check {
            w.extend(d.warnings());
        }
        w
    }

    /// The laws, with their bootstrap samples, for allocation.
    pub fn laws(&self) -> LawSet {
        LawSet {
            format: crate::allocate::LawFormat::default(),
            source: self.source.clone(),
            approach1: self.approach1.fitted().map(|f| Sampled {
                estimate: f.frontier,
                samples: f.samples.clone(),
            }),
            approach2: self.approach2.fitted().map(|f| Sampled {
                estimate: f.frontier,
                samples: f.samples.clone(),
            }),
            approach3: self
                .approach3
                .fitted()
                .filter(|f| f.diagnostics.converged)
                .map(|f| Sampled {
                    estimate: f.law,
                    samples: f.samples.clone(),
                }),
            fitted_flops: self.flops_range,
            data_constrained: self
                .data_constrained
                .as_ref()
                .and_then(|o| o.fitted())
                .filter(|f| f.converged)
                .map(|f| Sampled {
                    estimate: f.law,
                    samples: f.samples.clone(),
                }),
            kaplan: self
                .kaplan
                .as_ref()
                .and_then(|o| o.fitted())
                .filter(|f| f.converged)
                .map(|f| f.law),
            residuals: self
                .approach3
                .fitted()
                .map(|f| f.residuals.clone())
                .unwrap_or_default(),
            published: None,
        }
    }
}

/// Every requested approach and law form the table supports, compared where two forms or
/// more were fitted, without the checks [`crate::study::fit_table`] adds (the design check,
/// the forms held out): what a validation's, a design check's or a held-out comparison's
/// own refits are.
///
/// # Errors
/// As [`crate::study::fit_table`].
pub fn fit_approaches(table: &RunTable, settings: &FitSettings) -> Result<FitReport, FitError> {
    settings.check()?;
    let finals = table.final_rows();
    let (points, dropped) = drop_highest_loss(&finals, settings.drop_top);
    let after_drop = if dropped > 0 {
        format!(
            " (--drop-top {} dropped {dropped} of the table's {} runs, leaving {})",
            settings.drop_top,
            finals.len(),
            points.len()
        )
    } else {
        String::new()
    };
    if points.is_empty() && dropped > 0 {
        return Err(FitError::InvalidOption(format!(
            "nothing is left to fit{after_drop}; give a --drop-top below the number of runs"
        )));
    }
    let form = |name: &str| settings.laws.iter().any(|l| l == name);
    let chinchilla = form("chinchilla");
    let want = |k: u8| chinchilla && settings.approaches.contains(&k);
    let mut errors: Vec<FitError> = Vec::new();
    let dc = form("data-constrained").then(|| {
        settle(
            Some(crate::data_constrained::fit_data_constrained(
                &points,
                settings.parametric.boot.resamples.min(200),
                settings.parametric.boot.seed,
                settings.parametric.boot.unit,
            )),
            true,
            &mut errors,
        )
    });
    let kaplan =
        form("kaplan").then(|| settle(Some(crate::kaplan::fit_kaplan(&points)), true, &mut errors));
    let a1 = settle(
        want(1).then(|| fit_envelope(&table.curves(), &settings.envelope)),
        settings.explicit,
        &mut errors,
    );
    let a2 = settle(
        want(2).then(|| fit_isoflop(&points, &settings.isoflop)),
        settings.explicit,
        &mut errors,
    );
    let a3 = settle(
        want(3).then(|| fit_parametric(&points, &settings.parametric)),
        settings.explicit,
        &mut errors,
    );
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let mut report = FitReport {
        source: table.source.display().to_string(),
        rows: table.rows.len(),
        runs: finals.len(),
        dropped,
        notes: table.notes.clone(),
        approach1: a1,
        approach2: a2,
        approach3: a3,
        settings: settings.clone(),
        flops_range: points
            .iter()
            .map(|o| o.flops)
            .fold(None, |r: Option<[f64; 2]>, c| {
                Some(r.map_or([c, c], |[lo, hi]| [lo.min(c), hi.max(c)]))
            }),
        table_warnings: table_warnings(&points),
        data_constrained: dc,
        kaplan,
        comparison: Vec::new(),
        held_out: None,
        design_check: None,
        counted: table.counted.clone(),
    };
    compare_forms(&mut report, &points);
    refuse_if_nothing(&report, &after_drop)?;
    Ok(report)
}

/// With two law forms or more, their comparison on the points fitted.
fn compare_forms(report: &mut FitReport, points: &[isoflop_core::Observation]) {
    let laws = report.forms();
    if laws.len() >= 2 {
        report.comparison = crate::forms::compare(&laws, points);
    }
}

/// An error naming why each approach was skipped when nothing at all was fitted.
fn refuse_if_nothing(report: &FitReport, after_drop: &str) -> Result<(), FitError> {
    let other_forms = report
        .data_constrained
        .as_ref()
        .is_some_and(|o| o.fitted().is_some())
        || report.kaplan.as_ref().is_some_and(|o| o.fitted().is_some());
    if !other_forms
        && report.approach1.fitted().is_none()
        && report.approach2.fitted().is_none()
        && report.approach3.fitted().is_none()
    {
        let why: Vec<String> = [
            report.approach1.skip_reason(),
            report.approach2.skip_reason(),
            report.approach3.skip_reason(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        return Err(FitError::Unsupported {
            approach: "every approach",
            reason: format!("nothing could be fitted{after_drop}: {}", why.join("; ")),
        });
    }
    Ok(())
}

fn settle<T>(
    r: Option<Result<T, FitError>>,
    explicit: bool,
    errors: &mut Vec<FitError>,
) -> Outcome<T> {
    match r {
        None => Outcome::NotRequested,
        Some(Ok(f)) => Outcome::Fitted(f),
        Some(Err(e)) => {
            let msg = e.to_string();
            if explicit {
                errors.push(e);
            }
            Outcome::Skipped(msg)
        }
    }
}

impl<T> Outcome<T> {
    fn skip_reason(&self) -> Option<&String> {
        match self {
            Outcome::Skipped(s) => Some(s),
            _ => None,
        }
    }
}
