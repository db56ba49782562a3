//! Approach 3: fitting the parametric law L(N, D) = E + A/N^alpha + B/D^beta
//! ([`crate::law`]) by minimising the Huber objective ([`crate::objective`]): by default by
//! variable projection and a polish ([`crate::vpnls`]), or with L-BFGS from every start of a
//! grid, the paper's procedure (`search`); big tables screened on a subsample; the
//! bootstrap.

use crate::error::FitError;
pub use crate::law::ParametricLaw;
use crate::lbfgs::{self, Options, Termination};
pub use crate::objective::{Kernel, Objective, HUBER_DELTA};
use crate::screen::sample_without_replacement;
pub use crate::screen::{Screen, Screening, BOOT_POINTS, SCREEN_ABOVE, SCREEN_POINTS};
use crate::stats::{
    bootstrap_clusters, bootstrap_m, clusters, percentile_interval, BootUnit, Interval,
};
use isoflop_core::Observation;
use rayon::prelude::*;

/// A grid of starting points in log space (ln_a, ln_b, ln_e, alpha, beta).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Grid {
    /// Values of alpha.
    pub alpha: Vec<f64>,
    /// Values of beta.
    pub beta: Vec<f64>,
    /// Values of ln_e = ln E.
    #[serde(alias = "e")]
    pub ln_e: Vec<f64>,
    /// Values of ln_a = ln A.
    #[serde(alias = "a")]
    pub ln_a: Vec<f64>,
    /// Values of ln_b = ln B.
    #[serde(alias = "b")]
    pub ln_b: Vec<f64>,
}

impl Grid {
    /// Hoffmann et al. 2022, Appendix D.2: alpha, beta in {0, 0.5, ..., 2}; ln_e in
    /// {-1, -0.5, ..., 1}; ln_a, ln_b in {0, 5, ..., 25}: 4,500 starts.
    pub fn paper() -> Self {
        let r = |lo: f64, step: f64, n: usize| (0..n).map(|i| lo + step * i as f64).collect();
        Grid {
            alpha: r(0.0, 0.5, 5),
            beta: r(0.0, 0.5, 5),
            ln_e: r(-1.0, 0.5, 5),
            ln_a: r(0.0, 5.0, 6),
            ln_b: r(0.0, 5.0, 6),
        }
    }

    /// All starts x = (ln_a, ln_b, ln_e, alpha, beta), looping alpha, beta, ln_e, ln_a, ln_b
    /// (Epoch's order).
    pub fn starts(&self) -> Vec<[f64; 5]> {
        let mut v = Vec::with_capacity(self.len());
        for &al in &self.alpha {
            for &be in &self.beta {
                for &ln_e in &self.ln_e {
                    for &ln_a in &self.ln_a {
                        for &ln_b in &self.ln_b {
                            v.push([ln_a, ln_b, ln_e, al, be]);
                        }
                    }
                }
            }
        }
        v
    }

    /// Number of starts.
    pub fn len(&self) -> usize {
        self.alpha.len() * self.beta.len() * self.ln_e.len() * self.ln_a.len() * self.ln_b.len()
    }

    /// True when the grid has no starts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How Approach 3 searches for the optimum of the paper's objective.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// L-BFGS from every start of the grid (Hoffmann et al. 2022, Appendix D.2).
    Lbfgs,
    /// Variable projection ([`crate::vpnls`]): (E, A, B) solved for each (alpha, beta) of a
    /// grid, the best exponents refined, then L-BFGS polishes the few best points on the
    /// paper's objective. No start points.
    #[default]
    Vpnls,
}

impl std::fmt::Display for Solver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Solver::Lbfgs => "lbfgs",
            Solver::Vpnls => "vpnls",
        })
    }
}

impl std::str::FromStr for Solver {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "lbfgs" => Ok(Solver::Lbfgs),
            "vpnls" => Ok(Solver::Vpnls),
            other => Err(format!("solver '{other}': give lbfgs or vpnls")),
        }
    }
}

/// Settings of an Approach 3 fit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ParametricOptions {
    /// The Huber threshold (1e-3 in the paper).
    pub delta: f64,
    /// How the optimum is searched for.
    #[serde(default)]
    pub solver: Solver,
    /// The starts (of the `lbfgs` solver).
    pub grid: Grid,
    /// The optimizer's tolerances.
    pub lbfgs: Options,
    /// A start "reached" the best objective when within this relative distance of it.
    pub reach_rtol: f64,
    /// The bootstrap.
    #[serde(flatten)]
    pub boot: crate::stats::Bootstrap,
    /// The objective's inner loop; `None`: [`Kernel::active`]. The results agree to
    /// rounding; only the speed differs.
    #[serde(default)]
    pub kernel: Option<Kernel>,
    /// Screening of the starts on a subsample, for big tables (see [`Screen`]).
    #[serde(default)]
    pub screen: Screen,
    /// Points per bootstrap resample; `None`: every point up to [`SCREEN_ABOVE`], then
    /// [`BOOT_POINTS`] (the m-out-of-n bootstrap).
    #[serde(default)]
    pub boot_points: Option<usize>,
    /// Called with a line of progress at each phase of a fit of more than
    /// [`SCREEN_ABOVE`] points (the CLI prints it on stderr).
    #[serde(skip)]
    pub progress: Option<fn(&str)>,
}

impl Default for ParametricOptions {
    fn default() -> Self {
        ParametricOptions {
            delta: HUBER_DELTA,
            solver: Solver::Vpnls,
            grid: Grid::paper(),
            lbfgs: Options::default(),
            reach_rtol: 1e-6,
            boot: crate::stats::Bootstrap::default(),
            kernel: None,
            screen: Screen::Auto,
            boot_points: None,
            progress: None,
        }
    }
}

/// What the optimizer did across the grid.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Diagnostics {
    /// Starts run.
    pub starts: usize,
    /// Starts whose L-BFGS run converged.
    pub converged_starts: usize,
    /// Starts that ended within `reach_rtol` of the best objective.
    pub reached_best: usize,
    /// Why the best start stopped.
    pub termination: Termination,
    /// Largest gradient component at the optimum.
    pub grad_max: f64,
    /// Iterations over all starts.
    pub iterations: usize,
    /// Objective evaluations over all starts.
    pub evaluations: usize,
    /// Projections solved by the `vpnls` solver (each a non-negative least-squares fit of
    /// (E, A, B) at one (alpha, beta)); absent for `lbfgs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projections: Option<usize>,
    /// True when the best start converged and the law is valid (all parameters positive).
    pub converged: bool,
}

impl Diagnostics {
    /// How the search went, in words: the projections and the points polished (variable
    /// projection), or the starts that reached the best (the grid).
    pub fn search_words(&self) -> String {
        match self.projections {
            Some(p) => format!(
                "variable projection: {p} projections, {} refined point(s) polished by L-BFGS, {} converged",
                self.starts, self.converged_starts
            ),
            None => format!(
                "{} of {} starts reached it, {} converged",
                self.reached_best, self.starts, self.converged_starts
            ),
        }
    }
}

/// Bootstrap intervals for the law's parameters and derived quantities.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LawIntervals {
    /// Resamples requested.
    pub resamples: usize,
    /// Resamples whose refit converged to a valid law (the intervals use only these).
    pub usable: usize,
    /// The seed.
    pub seed: u64,
    /// E.
    #[serde(rename = "E")]
    pub e: Interval,
    /// A.
    #[serde(rename = "A")]
    pub a: Interval,
    /// B.
    #[serde(rename = "B")]
    pub b: Interval,
    /// alpha.
    pub alpha: Interval,
    /// beta.
    pub beta: Interval,
    /// a = beta/(alpha+beta).
    pub params_exponent: Interval,
    /// b = alpha/(alpha+beta).
    pub tokens_exponent: Interval,
    /// G.
    #[serde(rename = "G")]
    pub g: Interval,
    /// Points per resample where fewer than the table's (the m-out-of-n bootstrap, its
    /// deviations scaled by sqrt(m/n)); `None`: ordinary resamples of every point.
    #[serde(default)]
    pub resample_points: Option<usize>,
}

/// The result of an Approach 3 fit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ParametricFit {
    /// The fitted law.
    pub law: ParametricLaw,
    /// Log-space optimum x = (ln_a, ln_b, ln_e, alpha, beta).
    pub x: [f64; 5],
    /// The objective at the optimum.
    pub objective: f64,
    /// Points fitted.
    pub points: usize,
    /// a = beta/(alpha+beta).
    pub params_exponent: f64,
    /// b = alpha/(alpha+beta).
    pub tokens_exponent: f64,
    /// G.
    #[serde(rename = "G")]
    pub g: f64,
    /// Optimizer diagnostics.
    pub diagnostics: Diagnostics,
    /// Distinct local optima found from the grid, best first (at most 8).
    pub local_optima: Vec<([f64; 5], f64)>,
    /// Bootstrap intervals, when resamples were asked for.
    pub intervals: Option<LawIntervals>,
    /// Bootstrap laws (the usable ones), kept for prediction intervals.
    pub samples: Vec<ParametricLaw>,
    /// Warnings for the user.
    pub warnings: Vec<String>,
    /// Where the starts were screened on a subsample (a big table), what was done.
    #[serde(default)]
    pub screening: Option<Screening>,
    /// What makes the law degenerate, where something does (E collapsed to zero, an
    /// exponent or coefficient run off to an extreme): it may fit and still not describe
    /// scaling. Empty for a law that looks sound.
    #[serde(default)]
    pub degenerate: Vec<String>,
    /// ln L - ln L_fit of the fitted points (evenly thinned to at most 2,000): the scatter
    /// that prediction intervals add to the parameters' uncertainty.
    #[serde(default)]
    pub residuals: Vec<f64>,
}

/// Why `law`, fitted to points whose smallest loss is `min_loss`, is degenerate (empty when
/// it is not).
pub fn degeneracy(law: &ParametricLaw, min_loss: f64) -> Vec<String> {
    let mut v = Vec::new();
    if law.e < 0.01 * min_loss {
        v.push(format!(
            "E collapsed to {:.2e}: the law puts all of the loss into the power terms, as a fit of too narrow a range does",
            law.e
        ));
    }
    for (name, x) in [("alpha", law.alpha), ("beta", law.beta)] {
        if !(0.02..=2.5).contains(&x) {
            v.push(format!("{name} = {x:.4} sits at an implausible extreme"));
        }
    }
    for (name, x) in [("A", law.a), ("B", law.b)] {
        if x.ln() > 40.0 {
            v.push(format!(
                "{name} = {x:.3e} ran off (ln {name} = {:.1})",
                x.ln()
            ));
        }
    }
    v
}

/// Fits the parametric law to final losses by the paper's procedure.
///
/// Bootstrap resamples refit from the full-data optimum and from any other distinct local
/// optimum of the grid whose objective is within 1.5x the best, not from the whole grid: the
/// resampled objective's minima lie near the full objective's, and this keeps a
/// 4,000-resample bootstrap in seconds (see docs/deviations.md).
///
/// # Errors
/// [`FitError::TooFewPoints`] with fewer than 6 points (five parameters need at least one
/// degree of freedom); [`FitError::Unsupported`] when every point has one N or one D;
/// [`FitError::InvalidOption`] for an empty grid or a non-positive delta.
///
/// # Example
/// ```
/// use isoflop_core::Observation;
/// use isoflop_fit::{fit_parametric, ParametricLaw, ParametricOptions};
/// let truth = ParametricLaw::EPOCH_2024;
/// let mut points = Vec::new();
/// for n in [1e8, 3e8, 1e9, 3e9] {
///     for d in [3e9, 1e10, 3e10, 1e11] {
///         points.push(Observation { line: 0, run: None, step: None, params: n, tokens: d,
///             flops: 6.0 * n * d, loss: truth.loss(n, d), budget: None, unique_tokens: None });
///     }
/// }
/// let boot = isoflop_fit::stats::Bootstrap { resamples: 0, ..Default::default() };
/// let opts = ParametricOptions { boot, ..Default::default() };
/// let fit = fit_parametric(&points, &opts).unwrap();
/// assert!(fit.diagnostics.converged);
/// assert!((fit.law.beta - truth.beta).abs() < 1e-3);
/// ```
pub fn fit_parametric(
    points: &[Observation],
    opts: &ParametricOptions,
) -> Result<ParametricFit, FitError> {
    check_points(points, opts)?;
    let obj = Objective::new(points, opts.delta);
    let obj = opts.kernel.map_or(obj.clone(), |k| obj.with_kernel(k));
    let n = obj.len();
    let say = |line: String| {
        if let Some(p) = opts.progress.filter(|_| n > SCREEN_ABOVE) {
            p(&line)
        }
    };
    let (res, screening, starts, projections) = match opts.solver {
        Solver::Lbfgs => {
            let starts = opts.grid.starts();
            let (res, screening) = search(&obj, &starts, opts, &say);
            (res, screening, starts.len(), None)
        }
        Solver::Vpnls => {
            let (res, screening, projections) = search_vpnls(&obj, points, opts, &say);
            let polished = res.starts;
            (res, screening, polished, Some(projections))
        }
    };
    let best = res.best;
    let law = ParametricLaw::from_log(&best.x);
    let mut warnings = Vec::new();
    if !best.converged() {
        warnings.push(format!(
            "Approach 3 did not converge: the best start stopped by {:?} at objective {:.6e}",
            best.termination, best.f
        ));
    }
    if !law.is_valid() {
        warnings.push(format!(
            "Approach 3: the best law has a non-positive exponent (alpha {:.4}, beta {:.4}); it does not describe a falling loss",
            law.alpha, law.beta
        ));
    }
    let diagnostics = Diagnostics {
        starts,
        converged_starts: res.converged,
        reached_best: res.reached,
        termination: best.termination,
        grad_max: best.grad_max,
        iterations: res.iterations,
        evaluations: res.evaluations,
        projections,
        converged: best.converged() && law.is_valid(),
    };
    let min_loss = points.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
    let degenerate = if diagnostics.converged {
        degeneracy(&law, min_loss)
    } else {
        Vec::new()
    };
    for d in &degenerate {
        warnings.push(format!("Approach 3: the law is degenerate: {d}"));
    }
    let stride = points.len().div_ceil(2000).max(1);
    let residuals: Vec<f64> = points
        .iter()
        .step_by(stride)
        .map(|p| p.loss.ln() - law.loss(p.params, p.tokens).ln())
        .filter(|r| r.is_finite())
        .collect();
    let mut fit = ParametricFit {
        law,
        x: best.x,
        objective: best.f,
        points: points.len(),
        params_exponent: law.params_exponent(),
        tokens_exponent: law.tokens_exponent(),
        g: law.g(),
        diagnostics,
        local_optima: res.optima.clone(),
        intervals: None,
        samples: Vec::new(),
        warnings,
        screening,
        degenerate,
        residuals,
    };
    if opts.boot.resamples > 0 && fit.diagnostics.converged {
        bootstrap(&mut fit, &res, &obj, points, opts, &say);
    }
    Ok(fit)
}

/// Refuses what no fit can use: fewer than 6 points, one N or one D, an empty grid, a
/// non-positive delta.
fn check_points(points: &[Observation], opts: &ParametricOptions) -> Result<(), FitError> {
    const NAME: &str = "Approach 3";
    if points.len() < 6 {
        return Err(FitError::TooFewPoints {
            approach: NAME,
            have: points.len(),
            need: 6,
            why: "five parameters and one degree of freedom",
        });
    }
    for (what, v) in [
        (
            "model sizes N",
            points.iter().map(|p| p.params).collect::<Vec<_>>(),
        ),
        ("token counts D", points.iter().map(|p| p.tokens).collect()),
    ] {
        if crate::stats::distinct(v.iter().copied()) < 2 {
            return Err(FitError::Unsupported {
                approach: NAME,
                reason: format!(
                    "every point has the same {what} ({:.4e}): the law's terms in N and D cannot be told apart; runs at two or more {what} are needed",
                    v[0]
                ),
            });
        }
    }
    if opts.grid.is_empty() {
        return Err(FitError::InvalidOption(
            "the grid of starts is empty".into(),
        ));
    }
    if !(opts.delta > 0.0) {
        return Err(FitError::InvalidOption(format!(
            "Huber delta must be positive, got {}",
            opts.delta
        )));
    }
    Ok(())
}

mod bootstrap;
mod search;
use bootstrap::bootstrap;
pub use bootstrap::law_intervals;
pub use search::POLISH_FTOL;
use search::{run_starts, search, search_vpnls, GridResult};

#[cfg(test)]
mod tests;
