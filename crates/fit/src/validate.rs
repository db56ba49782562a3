//! Validation by extrapolation: fit every approach on part of the runs (the smaller budgets)
//! and score its predictions of the rest (OLMo-core's model ladder does this before spending
//! compute on a law).
//!
//! For each held-out run: Approach 3's predicted final loss at its N and D, with a 95%
//! prediction interval (each bootstrap law's prediction plus a residual of the fitted runs
//! drawn at random, so the interval holds the runs' scatter as well as the parameters'
//! uncertainty), the observed loss and the error. For each held-out budget: N_opt by each
//! approach against the vertex of the held-out runs' own parabola, and Approach 3's L_min
//! against the vertex's loss. A rolling-origin backtest repeats this for every origin.

use crate::error::FitError;
use crate::forms::Score;
use crate::isoflop::group_budgets;
use crate::report::{fit_approaches, FitReport, FitSettings};
use crate::stats::{percentile_interval, Interval};
use isoflop_core::{Observation, Rng, RunTable};

/// Which runs are held out.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holdout {
    /// Runs with more FLOPs than this.
    FlopsAbove(f64),
    /// Runs with more parameters than this.
    ParamsAbove(f64),
    /// The runs of the K largest budgets.
    TopBudgets(usize),
    /// The largest budget where the table has three budgets or more, else the runs above
    /// the 80th percentile of FLOPs.
    Default,
}

/// A held-out run's prediction.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunCheck {
    /// The run.
    pub run: String,
    /// N.
    pub params: f64,
    /// D.
    pub tokens: f64,
    /// C.
    pub flops: f64,
    /// Decades of FLOPs beyond the largest fitted run.
    pub decades: f64,
    /// Observed final loss.
    pub observed: f64,
    /// Approach 3's prediction.
    pub predicted: f64,
    /// Its 95% prediction interval (parameters and scatter).
    pub interval: Option<Interval>,
    /// (predicted - observed) / observed.
    pub rel_error: f64,
}

/// A held-out budget's check.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BudgetCheck {
    /// The budget's FLOPs (geometric mean of its runs).
    pub flops: f64,
    /// Decades beyond the largest fitted run.
    pub decades: f64,
    /// The held-out runs' own parabola vertex (N, L), where usable.
    pub observed_params: Option<f64>,
    /// See `observed_params`.
    pub observed_loss: Option<f64>,
    /// Why the held-out parabola is unusable, if it is.
    pub refused: Option<String>,
    /// (approach, predicted N_opt, predicted L_min where the approach gives one).
    pub predicted: Vec<(String, f64, Option<f64>)>,
}

/// One approach's errors on the held-out runs.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// "approach1", "approach2", "approach3".
    pub approach: String,
    /// What is scored: "loss" (per run) or "n_opt" (per budget).
    pub quantity: String,
    /// How many predictions.
    pub n: usize,
    /// Mean of |relative error|.
    pub mean_abs_rel_error: f64,
    /// Max of |relative error|.
    pub max_abs_rel_error: f64,
    /// Mean of the signed relative error (positive: over-predicts).
    pub bias: f64,
    /// Loss only: the 95% interval the bias would have if the law were right (over the
    /// bootstrap laws, each held-out run given a residual of the fitted runs). A bias outside
    /// it says the law does not extrapolate: it is wrong, not unlucky.
    #[serde(default)]
    pub bias_interval: Option<Interval>,
    /// Share of observations inside their 95% prediction intervals, where there are some.
    pub coverage: Option<f64>,
    /// Decades of extrapolation, smallest and largest.
    pub decades: [f64; 2],
}

impl Summary {
    /// The summary's cells as text, for a table (text or HTML): approach, quantity, n,
    /// mean and max |error|, bias, the bias's interval if the law were right, coverage,
    /// decades.
    pub fn cells(&self) -> [String; 9] {
        let pct = |v: f64| format!("{:.2}%", 100.0 * v);
        [
            self.approach.clone(),
            self.quantity.clone(),
            self.n.to_string(),
            pct(self.mean_abs_rel_error),
            pct(self.max_abs_rel_error),
            pct(self.bias),
            self.bias_interval
                .as_ref()
                .map(|i| format!("[{}, {}]", pct(i.lo), pct(i.hi)))
                .unwrap_or_else(|| "-".into()),
            self.coverage
                .map(|c| format!("{:.0}%", 100.0 * c))
                .unwrap_or_else(|| "-".into()),
            format!("{:.2}..{:.2}", self.decades[0], self.decades[1]),
        ]
    }

    /// The headers of [`Summary::cells`].
    pub const HEADERS: [&'static str; 9] = [
        "approach",
        "of",
        "n",
        "mean |err|",
        "max |err|",
        "bias",
        "bias if law right",
        "coverage",
        "decades",
    ];
}

/// A row of the rolling-origin backtest.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BacktestRow {
    /// The largest fitted budget's FLOPs.
    pub origin: f64,
    /// The predicted budget's FLOPs.
    pub target: f64,
    /// log10(target / origin).
    pub decades: f64,
    /// Approach 3's mean |relative error| of the target budget's runs' losses.
    pub loss_error: Option<f64>,
    /// (approach, |relative error| of N_opt against the target's vertex).
    pub n_opt_errors: Vec<(String, f64)>,
}

/// A validation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Validation {
    /// The rule that chose the held-out runs, in words.
    pub split: String,
    /// Runs fitted.
    pub fitted_runs: usize,
    /// Runs held out.
    pub held_runs: usize,
    /// The largest fitted run's FLOPs.
    pub max_fitted_flops: f64,
    /// Per held-out run.
    pub runs: Vec<RunCheck>,
    /// Per held-out budget.
    pub budgets: Vec<BudgetCheck>,
    /// Per approach.
    pub summary: Vec<Summary>,
    /// The rolling-origin backtest, where asked for.
    pub backtest: Vec<BacktestRow>,
    /// The fit of the fitted runs.
    pub fit: FitReport,
    /// Where two or more forms were fitted: each form's law, fitted to the fitted runs,
    /// scored on the held-out runs, best first.
    #[serde(default)]
    pub forms: Vec<Score>,
}

pub use crate::forms::FormsHeldOut;

/// Refits every form of `settings.laws` on `points` less `validate`'s default hold-out
/// (without bootstrap: only the point laws are scored) and scores each on the held-out runs.
///
/// # Errors
/// The split's errors (too few runs or budgets on a side); fewer than two forms fitted on
/// the fitted runs.
pub(crate) fn forms_held_out(
    table: &RunTable,
    points: &[Observation],
    settings: &FitSettings,
) -> Result<FormsHeldOut, FitError> {
    let sp = split(table, points, Holdout::Default, settings)?;
    let mut light = settings
        .clone()
        .with_bootstrap(0, settings.parametric.boot.seed);
    light.approaches = vec![3];
    light.explicit = false;
    light.drop_top = 0;
    light.parametric.progress = None; // the full fit's progress is the one a user follows
    let fit = fit_approaches(&sp.table, &light)?;
    let laws = fit.forms();
    if laws.len() < 2 {
        return Err(FitError::InvalidOption(format!(
            "{}: only {} of the forms could be fitted to the other {} runs",
            sp.rule,
            laws.len(),
            sp.fitted.len()
        )));
    }
    Ok(FormsHeldOut {
        fitted_runs: sp.fitted.len(),
        held_runs: sp.held.len(),
        scores: crate::forms::compare(&laws, &sp.held),
        split: sp.rule,
    })
}

/// Fits `table`'s runs outside the hold-out and scores the predictions of the held-out ones.
/// `backtest` adds the rolling-origin backtest over budgets.
///
/// # Errors
/// [`FitError::InvalidOption`] naming the split and its counts when either side is too
/// small or a threshold lies outside the data; the fit's own errors.
///
/// # Example
/// ```
/// use isoflop_core::RunTable;
/// use isoflop_fit::validate::{validate, Holdout};
/// use isoflop_fit::FitSettings;
/// // Runs at five budgets from one law; hold out the largest budget and predict it.
/// let law = isoflop_fit::ParametricLaw::EPOCH_2024;
/// let points = isoflop_fit::synthetic::isoflop_points(&law, &[1e18, 1e19, 1e20, 1e21, 1e22], 0.0, 0);
/// let table = RunTable { rows: points, ..RunTable::default() };
/// let mut settings = FitSettings::default().with_bootstrap(0, 0);
/// settings.approaches = vec![3];
/// let v = validate(&table, &settings, Holdout::TopBudgets(1), false).unwrap();
/// assert_eq!(v.held_runs, 9);
/// // Noise-free runs: every held-out loss is predicted to within 0.1%.
/// assert!(v.runs.iter().all(|r| r.rel_error.abs() < 1e-3));
/// ```
pub fn validate(
    table: &RunTable,
    settings: &FitSettings,
    holdout: Holdout,
    backtest: bool,
) -> Result<Validation, FitError> {
    let finals = table.final_rows();
    let Split {
        rule,
        fitted: fitted_points,
        held: held_points,
        table: fitted,
    } = split(table, &finals, holdout, settings)?;
    let fit = fit_approaches(&fitted, settings)?;
    let max_fitted = fitted_points.iter().map(|o| o.flops).fold(0.0, f64::max);
    let (runs, bias_interval) =
        run_checks(&fit, &fitted_points, &held_points, max_fitted, settings);
    let budgets = budget_checks(&fit, &held_points, max_fitted, settings);
    let mut summary = summarise(&runs, &budgets);
    if let Some(s) = summary.iter_mut().find(|s| s.quantity == "loss") {
        s.bias_interval = bias_interval;
    }
    let laws = fit.forms();
    let forms = if laws.len() >= 2 {
        crate::forms::compare(&laws, &held_points)
    } else {
        Vec::new()
    };
    let backtest = if backtest {
        backtest_rows(table, &finals, settings)
    } else {
        Vec::new()
    };
    Ok(Validation {
        split: rule,
        fitted_runs: fitted_points.len(),
        held_runs: held_points.len(),
        max_fitted_flops: max_fitted,
        runs,
        budgets,
        summary,
        backtest,
        forms,
        fit,
    })
}

/// Per held-out run, the prediction with its interval; and the interval of the mean
/// error the law itself expects (see [`Summary::bias_interval`]).
fn run_checks(
    fit: &FitReport,
    fitted: &[Observation],
    held: &[Observation],
    max_fitted: f64,
    settings: &FitSettings,
) -> (Vec<RunCheck>, Option<Interval>) {
    let Some(f3) = fit.approach3.fitted().filter(|f| f.diagnostics.converged) else {
        return (Vec::new(), None);
    };
    let law = f3.law;
    let residuals: Vec<f64> = fitted
        .iter()
        .map(|o| o.loss.ln() - law.loss(o.params, o.tokens).ln())
        .filter(|r| r.is_finite())
        .collect();
    let mut all_draws: Vec<Vec<f64>> = Vec::new();
    let checks = held
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let predicted = law.loss(o.params, o.tokens);
            // Each bootstrap law's prediction plus a residual drawn at random; with no
            // bootstrap, the point law plus every residual.
            let draws: Vec<f64> = if f3.samples.is_empty() {
                residuals.iter().map(|r| predicted * r.exp()).collect()
            } else {
                let mut rng = Rng::stream(settings.parametric.boot.seed ^ 0x5eed, k as u64);
                f3.samples
                    .iter()
                    .map(|s| {
                        let r = residuals
                            .get(rng.below(residuals.len().max(1)))
                            .copied()
                            .unwrap_or(0.0);
                        s.loss(o.params, o.tokens) * r.exp()
                    })
                    .collect()
            };
            // Were the law right, the observed loss would be one more draw, and the error
            // (predicted - observed) / observed would look like (predicted - draw) / observed.
            all_draws.push(draws.iter().map(|p| (predicted - p) / o.loss).collect());
            RunCheck {
                run: run_key(o),
                params: o.params,
                tokens: o.tokens,
                flops: o.flops,
                decades: (o.flops / max_fitted).log10(),
                observed: o.loss,
                predicted,
                interval: percentile_interval(draws, 0.95),
                rel_error: (predicted - o.loss) / o.loss,
            }
        })
        .collect::<Vec<_>>();
    // Draw j of every run shares bootstrap law j: the mean error of draw j is one value of
    // the bias the law expects, its parameters' uncertainty and the scatter both in it.
    let m = all_draws.iter().map(Vec::len).min().unwrap_or(0);
    let means =
        (0..m).map(|j| all_draws.iter().map(|d| d[j]).sum::<f64>() / all_draws.len() as f64);
    let bias_interval = percentile_interval(means, 0.95);
    (checks, bias_interval)
}

/// Each approach's N_opt (and L_min, for Approach 3) at `c`.
fn predictions(fit: &FitReport, c: f64) -> Vec<(String, f64, Option<f64>)> {
    let mut v = Vec::new();
    if let Some(f) = fit.approach1.fitted() {
        v.push(("approach1".to_string(), f.frontier.optimal_params(c), None));
    }
    if let Some(f) = fit.approach2.fitted() {
        v.push(("approach2".to_string(), f.frontier.optimal_params(c), None));
    }
    if let Some(f) = fit.approach3.fitted().filter(|f| f.diagnostics.converged) {
        let n = f.law.optimal_params(c);
        v.push((
            "approach3".to_string(),
            n,
            Some(f.law.loss(n, c / (6.0 * n))),
        ));
    }
    v
}

fn budget_checks(
    fit: &FitReport,
    held: &[Observation],
    max_fitted: f64,
    settings: &FitSettings,
) -> Vec<BudgetCheck> {
    group_budgets(held, &settings.isoflop)
        .into_iter()
        .map(|(p, _)| BudgetCheck {
            flops: p.flops,
            decades: (p.flops / max_fitted).log10(),
            observed_params: p.optimal_params,
            observed_loss: p.min_loss,
            refused: p.refused.clone(),
            predicted: predictions(fit, p.flops),
        })
        .collect()
}

fn summary_of(
    approach: &str,
    quantity: &str,
    errs: &[(f64, f64, Option<bool>)],
) -> Option<Summary> {
    if errs.is_empty() {
        return None;
    }
    let n = errs.len() as f64;
    let covered: Vec<bool> = errs.iter().filter_map(|e| e.2).collect();
    Some(Summary {
        approach: approach.into(),
        quantity: quantity.into(),
        n: errs.len(),
        mean_abs_rel_error: errs.iter().map(|e| e.0.abs()).sum::<f64>() / n,
        max_abs_rel_error: errs.iter().map(|e| e.0.abs()).fold(0.0, f64::max),
        bias: errs.iter().map(|e| e.0).sum::<f64>() / n,
        bias_interval: None,
        coverage: (!covered.is_empty())
            .then(|| covered.iter().filter(|c| **c).count() as f64 / covered.len() as f64),
        decades: [
            errs.iter().map(|e| e.1).fold(f64::INFINITY, f64::min),
            errs.iter().map(|e| e.1).fold(f64::NEG_INFINITY, f64::max),
        ],
    })
}

fn summarise(runs: &[RunCheck], budgets: &[BudgetCheck]) -> Vec<Summary> {
    let mut out = Vec::new();
    let loss: Vec<(f64, f64, Option<bool>)> = runs
        .iter()
        .map(|r| {
            (
                r.rel_error,
                r.decades,
                r.interval
                    .as_ref()
                    .map(|i| i.lo <= r.observed && r.observed <= i.hi),
            )
        })
        .collect();
    out.extend(summary_of("approach3", "loss", &loss));
    for a in ["approach1", "approach2", "approach3"] {
        let errs: Vec<(f64, f64, Option<bool>)> = budgets
            .iter()
            .filter_map(|b| {
                let obs = b.observed_params?;
                let (_, n, _) = b.predicted.iter().find(|p| p.0 == a)?;
                Some(((n - obs) / obs, b.decades, None))
            })
            .collect();
        out.extend(summary_of(a, "n_opt", &errs));
    }
    out
}

fn backtest_rows(
    table: &RunTable,
    finals: &[Observation],
    settings: &FitSettings,
) -> Vec<BacktestRow> {
    let budgets = group_budgets(finals, &settings.isoflop);
    let mut rows = Vec::new();
    for k in 2..budgets.len() {
        let keep: std::collections::HashSet<String> = budgets[..k]
            .iter()
            .flat_map(|(_, idx)| idx.iter().map(|&i| run_key(&finals[i])))
            .collect();
        if keep.len() < 6 {
            continue;
        }
        let Ok(fit) = fit_approaches(&subset(table, &keep), settings) else {
            continue;
        };
        let origin = budgets[k - 1].0.flops;
        for (target, idx) in &budgets[k..] {
            let law = fit
                .approach3
                .fitted()
                .filter(|f| f.diagnostics.converged)
                .map(|f| f.law);
            let loss_error = law.map(|l| {
                idx.iter()
                    .map(|&i| {
                        let o = &finals[i];
                        ((l.loss(o.params, o.tokens) - o.loss) / o.loss).abs()
                    })
                    .sum::<f64>()
                    / idx.len() as f64
            });
            let n_opt_errors = match target.optimal_params {
                Some(obs) => predictions(&fit, target.flops)
                    .into_iter()
                    .map(|(a, n, _)| (a, ((n - obs) / obs).abs()))
                    .collect(),
                None => Vec::new(),
            };
            rows.push(BacktestRow {
                origin,
                target: target.flops,
                decades: (target.flops / origin).log10(),
                loss_error,
                n_opt_errors,
            });
        }
    }
    rows
}

mod split;
use split::*;

#[cfg(test)]
mod tests;
