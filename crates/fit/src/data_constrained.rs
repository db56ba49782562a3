//! The data-constrained law of Muennighoff et al. 2023 ("Scaling Data-Constrained Language
//! Models", eq. 5 to 7 and the released code): with U unique tokens repeated to D tokens,
//!
//! ```text
//! L(N, D, U) = E + A / N'^alpha + B / D'^beta
//! D' = U + U R_D* (1 - exp(-R_D / R_D*)),   R_D = D/U - 1  (repetitions beyond the first epoch)
//! N' = U_N + U_N R_N* (1 - exp(-R_N / R_N*)),  U_N = min(N_opt(U), N),  R_N = N/U_N - 1
//! ```
//!
//! where N_opt(U) is the size for which U tokens are compute-optimal under the Chinchilla
//! part of the law (N = G (D G)^(beta/alpha), the closed form of [`crate::law`]). With D = U
//! and N <= N_opt(U) it is the Chinchilla law exactly.
//!
//! The fit starts with the paper's procedure in two steps: the Chinchilla parameters from the
//! single-epoch runs (D = U) by the paper's Approach 3 fit, then R_D* and R_N* from all runs
//! with those held fixed (where the paper fits R_D* and R_N* one after the other, we fit the
//! two together, from a grid of starts). A third step refines all seven together on all
//! runs: a single-epoch run with N > N_opt(U) is shaped by R_N*, so the first step alone is
//! biased wherever such runs exist (docs/deviations.md).

use crate::error::FitError;
use crate::forms::{argmin_log, huber, minimize_huber, LawForm};
use crate::law::ParametricLaw;
use crate::lbfgs::Options;
use crate::objective::HUBER_DELTA;
use crate::parametric::{fit_parametric, ParametricOptions};
use crate::stats::{bootstrap_clusters, clusters, percentile_interval, BootUnit, Interval};
use isoflop_core::Observation;

/// The data-constrained law: the Chinchilla part and the two decay constants.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataConstrainedLaw {
    /// E, A, B, alpha, beta.
    pub base: ParametricLaw,
    /// R_D*: repetitions of the data at which their value has decayed by 1/e.
    pub rd_star: f64,
    /// R_N*: the same for parameters beyond what the unique tokens can use.
    pub rn_star: f64,
}

impl DataConstrainedLaw {
    /// Muennighoff et al. 2023's released fit (datablations): ln A 6.255414, ln B 7.3049974,
    /// ln E 0.6254804, alpha = beta = 0.3526596, R_D* 15.387756, R_N* 5.309743.
    pub fn muennighoff2023() -> DataConstrainedLaw {
        DataConstrainedLaw {
            base: ParametricLaw {
                e: 0.6254804f64.exp(),
                a: 6.255414f64.exp(),
                b: 7.3049974f64.exp(),
                alpha: 0.3526596,
                beta: 0.3526596,
            },
            rd_star: 15.387756,
            rn_star: 5.309743,
        }
    }

    /// N_opt(U): the size for which `tokens` are compute-optimal under the base law.
    pub fn params_for_tokens(&self, tokens: f64) -> f64 {
        let l = &self.base;
        let g = l.g();
        g * (tokens * g).powf(l.beta / l.alpha)
    }

    /// The effective tokens D' and parameters N' of a run.
    pub fn effective(&self, params: f64, tokens: f64, unique: f64) -> (f64, f64) {
        let rd = (tokens / unique - 1.0).max(0.0);
        let d = unique + unique * self.rd_star * (1.0 - (-rd / self.rd_star).exp());
        let un = self.params_for_tokens(unique).min(params);
        let rn = (params / un - 1.0).max(0.0);
        let n = un + un * self.rn_star * (1.0 - (-rn / self.rn_star).exp());
        (n, d)
    }

    /// L(N, D, U).
    pub fn loss(&self, params: f64, tokens: f64, unique: f64) -> f64 {
        let (n, d) = self.effective(params, tokens, unique);
        let l = &self.base;
        l.e + l.a / n.powf(l.alpha) + l.b / d.powf(l.beta)
    }

    /// The size N (and D = C/(6N)) that minimises the loss at `flops` with `unique` tokens
    /// available: a one-dimensional search in ln N.
    ///
    /// # Errors
    /// [`FitError::InvalidOption`] for a non-positive budget or unique-token count.
    ///
    /// # Example
    /// ```
    /// use isoflop_fit::data_constrained::DataConstrainedLaw;
    /// // Muennighoff et al. 2023: 9.26e21 FLOPs with 25B unique tokens; the paper gives
    /// // about 6.8B parameters and 227B tokens (9.1 epochs).
    /// let a = DataConstrainedLaw::muennighoff2023().allocate(9.26e21, 25e9).unwrap();
    /// assert!((a.params / 6.8e9 - 1.0).abs() < 0.01);
    /// assert!((a.tokens / 227e9 - 1.0).abs() < 0.01);
    /// ```
    pub fn allocate(&self, flops: f64, unique: f64) -> Result<DataAllocation, FitError> {
        if !(flops > 0.0 && flops.is_finite() && unique > 0.0 && unique.is_finite()) {
            return Err(FitError::InvalidOption(format!(
                "the budget and the unique tokens must be positive, got {flops} and {unique}"
            )));
        }
        let f = |n: f64| self.loss(n, flops / (6.0 * n), unique);
        let (n, loss) = argmin_log(f, 1e-6 * (flops / 6.0).sqrt(), 1e6 * (flops / 6.0).sqrt())
            .ok_or_else(|| FitError::InvalidOption("no allocation found".into()))?;
        let d = flops / (6.0 * n);
        Ok(DataAllocation {
            flops,
            unique_tokens: unique,
            params: n,
            tokens: d,
            epochs: d / unique,
            loss,
            intervals: None,
        })
    }
}

impl LawForm for DataConstrainedLaw {
    fn form(&self) -> &'static str {
        "data-constrained"
    }
    fn predict(&self, o: &Observation) -> f64 {
        self.loss(o.params, o.tokens, o.unique_tokens.unwrap_or(o.tokens))
    }
}

/// The optimal model for a budget when only `unique_tokens` are available.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataAllocation {
    /// Training FLOPs (6ND).
    pub flops: f64,
    /// U.
    pub unique_tokens: f64,
    /// N.
    pub params: f64,
    /// D.
    pub tokens: f64,
    /// D / U.
    pub epochs: f64,
    /// The predicted loss.
    pub loss: f64,
    /// Percentile intervals over the bootstrap laws, where the law has them.
    pub intervals: Option<DataAllocationIntervals>,
}

/// Intervals of a data-constrained allocation.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataAllocationIntervals {
    /// Laws used.
    pub samples: usize,
    /// N.
    pub params: Interval,
    /// D.
    pub tokens: Interval,
    /// D / U.
    pub epochs: Interval,
    /// Loss.
    pub loss: Interval,
}

/// A fitted data-constrained law.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DataConstrainedFit {
    /// The law.
    pub law: DataConstrainedLaw,
    /// Single-epoch runs the base law was fitted to.
    pub single_epoch_runs: usize,
    /// All runs (R_D* and R_N* were fitted to these).
    pub runs: usize,
    /// The objective at the fitted law (sum of Huber_1e-3 of log errors over all runs).
    pub objective: f64,
    /// Whether all three steps converged.
    pub converged: bool,
    /// Bootstrap laws (both steps refitted on each resample of the runs).
    pub samples: Vec<DataConstrainedLaw>,
    /// 95% percentile intervals of R_D* and R_N*, where resampled.
    pub rd_star_interval: Option<Interval>,
    /// See `rd_star_interval`.
    pub rn_star_interval: Option<Interval>,
    /// Warnings.
    pub warnings: Vec<String>,
}

/// The fit's objective: the sum over runs of Huber_1e-3 of the log error.
fn objective(law: &DataConstrainedLaw, points: &[Observation]) -> f64 {
    points
        .iter()
        .map(|o| huber(law.predict(o).ln() - o.loss.ln(), HUBER_DELTA))
        .sum()
}

/// Step 2: R_D* and R_N* (in log space) for a fixed base law, from a grid of starts.
fn fit_decays(
    base: ParametricLaw,
    points: &[Observation],
    starts: &[[f64; 2]],
) -> Option<([f64; 2], f64, bool)> {
    let f = |x: &[f64; 2]| {
        let law = DataConstrainedLaw {
            base,
            rd_star: x[0].exp(),
            rn_star: x[1].exp(),
        };
        objective(&law, points)
    };
    minimize_huber(f, starts, &Options::default())
}

/// Step 3: all seven parameters refined together from `start`, on every run. A single-epoch
/// run with more parameters than its unique tokens make compute-optimal (N > U_N) is not a
/// run of the base law (R_N* shapes its loss), so step 1 alone is biased where such runs
/// exist: on runs drawn without noise from the released law, steps 1 and 2 gave R_D* 10.7
/// and alpha 0.53 (truth 15.4 and 0.35); this step recovers the law.
fn refine(
    start: DataConstrainedLaw,
    points: &[Observation],
) -> Option<(DataConstrainedLaw, f64, bool)> {
    // x = the base law's log coordinates (ParametricLaw::to_log), then ln R_D*, ln R_N*.
    let unpack = |x: &[f64; 7]| DataConstrainedLaw {
        base: ParametricLaw::from_log(&[x[0], x[1], x[2], x[3], x[4]]),
        rd_star: x[5].exp(),
        rn_star: x[6].exp(),
    };
    let [la, lb, le, alpha, beta] = start.base.to_log();
    let x0 = [
        la,
        lb,
        le,
        alpha,
        beta,
        start.rd_star.ln(),
        start.rn_star.ln(),
    ];
    let (x, f, converged) = minimize_huber(
        |x| objective(&unpack(x), points),
        &[x0],
        &Options::default(),
    )?;
    (f <= objective(&start, points)).then(|| (unpack(&x), f, converged))
}

/// Fits the data-constrained law to runs with unique tokens: the paper's two steps (the
/// base law from the single-epoch runs, then R_D* and R_N* from all runs), then every
/// parameter refined together from there (see `refine`).
/// `resamples` bootstrap laws are drawn (0 for none), seeded with `seed`.
///
/// # Errors
/// [`FitError::Unsupported`] when a run lacks its unique tokens, when fewer than 6 runs are
/// single-epoch, or when no run repeats its data; the base fit's own errors.
pub fn fit_data_constrained(
    points: &[Observation],
    resamples: usize,
    seed: u64,
    unit: BootUnit,
) -> Result<DataConstrainedFit, FitError> {
    const NAME: &str = "data-constrained law";
    if let Some(o) = points.iter().find(|o| o.unique_tokens.is_none()) {
        return Err(FitError::Unsupported {
            approach: NAME,
            reason: format!(
                "line {}: the run has no unique tokens; the table needs a unique_tokens (U) column with a value on every row",
                o.line
            ),
        });
    }
    let single: Vec<Observation> = points
        .iter()
        .filter(|o| {
            o.unique_tokens
                .is_some_and(|u| o.tokens <= u * (1.0 + 1e-9))
        })
        .cloned()
        .collect();
    if points.len() == single.len() {
        return Err(FitError::Unsupported {
            approach: NAME,
            reason: "no run repeats its data (D > U): R_D* and R_N* cannot be fitted".into(),
        });
    }
    let base_opts = ParametricOptions {
        boot: crate::stats::Bootstrap {
            resamples: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let base = fit_parametric(&single, &base_opts).map_err(|e| FitError::Unsupported {
        approach: NAME,
        reason: format!(
            "the Chinchilla part, from the {} single-epoch runs: {e}",
            single.len()
        ),
    })?;
    let grid: Vec<[f64; 2]> = [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0]
        .iter()
        .flat_map(|&a| [0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0].map(|b| [a, b]))
        .collect();
    let (x, objective, converged2) =
        fit_decays(base.law, points, &grid).ok_or_else(|| FitError::Unsupported {
            approach: NAME,
            reason: "R_D* and R_N* could not be fitted".into(),
        })?;
    let two_step = DataConstrainedLaw {
        base: base.law,
        rd_star: x[0].exp(),
        rn_star: x[1].exp(),
    };
    let (law, objective, converged3) =
        refine(two_step, points).unwrap_or((two_step, objective, false));
    let converged = base.diagnostics.converged && converged2 && converged3;
    let mut warnings = base.warnings.clone();
    if !converged {
        warnings.push("data-constrained law: a step of the fit did not converge".into());
    }
    let mut fit = DataConstrainedFit {
        law,
        single_epoch_runs: single.len(),
        runs: points.len(),
        objective,
        converged,
        samples: Vec::new(),
        rd_star_interval: None,
        rn_star_interval: None,
        warnings,
    };
    if resamples > 0 && fit.converged {
        let opts = ParametricOptions {
            boot: crate::stats::Bootstrap {
                resamples: 0,
                ..Default::default()
            },
            grid: crate::parametric::Grid {
                alpha: vec![base.x[3]],
                beta: vec![base.x[4]],
                ln_e: vec![base.x[2]],
                ln_a: vec![base.x[0]],
                ln_b: vec![base.x[1]],
            },
            ..Default::default()
        };
        let units = clusters(points.iter().map(|p| p.params), unit);
        let laws = bootstrap_clusters(&units, resamples, seed, |idx| {
            let pts: Vec<Observation> = idx.iter().map(|&i| points[i].clone()).collect();
            let single: Vec<Observation> = pts
                .iter()
                .filter(|o| {
                    o.unique_tokens
                        .is_some_and(|u| o.tokens <= u * (1.0 + 1e-9))
                })
                .cloned()
                .collect();
            let b = fit_parametric(&single, &opts).ok()?;
            if !b.diagnostics.converged {
                return None;
            }
            let (x, _, ok) = fit_decays(b.law, &pts, &[x])?;
            let two_step = DataConstrainedLaw {
                base: b.law,
                rd_star: x[0].exp(),
                rn_star: x[1].exp(),
            };
            let (law, _, ok3) = refine(two_step, &pts)?;
            (ok && ok3).then_some(law)
        });
        fit.samples = laws.into_iter().flatten().collect();
        fit.rd_star_interval = percentile_interval(fit.samples.iter().map(|l| l.rd_star), 0.95);
        fit.rn_star_interval = percentile_interval(fit.samples.iter().map(|l| l.rn_star), 0.95);
    }
    Ok(fit)
}

/// [`DataConstrainedLaw::allocate`] by `law`, with intervals over `samples` (bootstrap laws).
///
/// # Errors
/// As [`DataConstrainedLaw::allocate`].
pub fn allocate_with_intervals(
    law: &DataConstrainedLaw,
    samples: &[DataConstrainedLaw],
    flops: f64,
    unique: f64,
    level: f64,
) -> Result<DataAllocation, FitError> {
    let mut a = law.allocate(flops, unique)?;
    let s: Vec<DataAllocation> = samples
        .iter()
        .filter_map(|l| l.allocate(flops, unique).ok())
        .collect();
    if s.len() >= 2 {
        let iv = |f: &dyn Fn(&DataAllocation) -> f64| percentile_interval(s.iter().map(f), level);
        if let (Some(params), Some(tokens), Some(epochs), Some(loss)) = (
            iv(&|x| x.params),
            iv(&|x| x.tokens),
            iv(&|x| x.epochs),
            iv(&|x| x.loss),
        ) {
            a.intervals = Some(DataAllocationIntervals {
                samples: s.len(),
                params,
                tokens,
                epochs,
                loss,
            });
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_sizes_draws_whole_sizes() {
        // 4 sizes of 21 runs each: a resample by size holds 84 runs in 4 blocks of 21, so
        // its intervals differ from a resample by run; with every run its own size (N
        // nudged apart) the two are the same draws.
        let truth = DataConstrainedLaw::muennighoff2023();
        let pts = crate::synthetic::data_constrained_runs(&truth);
        let run = fit_data_constrained(&pts, 20, 1, BootUnit::Run).unwrap();
        let size = fit_data_constrained(&pts, 20, 1, BootUnit::Size).unwrap();
        assert_ne!(run.rd_star_interval, size.rd_star_interval);
        let mut apart = pts.clone();
        for (i, p) in apart.iter_mut().enumerate() {
            p.params *= 1.0 + 1e-9 * i as f64;
        }
        let run = fit_data_constrained(&apart, 20, 1, BootUnit::Run).unwrap();
        let size = fit_data_constrained(&apart, 20, 1, BootUnit::Size).unwrap();
        assert_eq!(run.rd_star_interval, size.rd_star_interval);
    }

    #[test]
    fn recovers_the_released_law_from_runs_drawn_from_it() {
        // 4 sizes x 3 amounts of unique data x 7 epoch counts, no noise. Most single-epoch
        // runs have more parameters than their data make compute-optimal, so the paper's
        // first step alone (the base law from them) is biased; the joint step removes it.
        let truth = DataConstrainedLaw::muennighoff2023();
        let pts = crate::synthetic::data_constrained_runs(&truth);
        let f = fit_data_constrained(&pts, 0, 0, BootUnit::Run).unwrap();
        assert!(f.converged, "{f:?}");
        let (l, t) = (f.law, truth);
        for (got, want) in [
            (l.base.e, t.base.e),
            (l.base.a, t.base.a),
            (l.base.b, t.base.b),
            (l.base.alpha, t.base.alpha),
            (l.base.beta, t.base.beta),
            (l.rd_star, t.rd_star),
            (l.rn_star, t.rn_star),
        ] {
            assert!((got / want - 1.0).abs() < 1e-3, "{l:?}");
        }
    }

    #[test]
    fn the_preset_reproduces_the_released_codes_numbers() {
        // datablations' own values for its released fit.
        let law = DataConstrainedLaw::muennighoff2023();
        assert!((law.loss(6.34e9, 242e9, 25e9) - 2.22564).abs() < 5e-6);
        assert!((law.loss(8.67e9, 178e9, 25e9) - 2.22696).abs() < 5e-6);
    }

    #[test]
    fn without_repetition_it_is_the_chinchilla_law_exactly() {
        let law = DataConstrainedLaw::muennighoff2023();
        for (n, d) in [(1e8, 2e9), (1e9, 2e10), (7e10, 1.4e12)] {
            // D = U, and N not beyond what U tokens can use.
            assert!(n <= law.params_for_tokens(d));
            assert_eq!(law.loss(n, d, d), law.base.loss(n, d));
        }
    }

    #[test]
    fn the_allocation_under_25b_unique_tokens_matches_a_brute_force_search() {
        // The paper's example: the compute of 8.67B parameters on 178B tokens, 25B unique.
        let law = DataConstrainedLaw::muennighoff2023();
        let c = 6.0 * 8.67e9 * 178e9;
        let a = law.allocate(c, 25e9).unwrap();
        assert!((a.params / 6.8e9 - 1.0).abs() < 0.03, "{a:?}");
        assert!((a.tokens / 227e9 - 1.0).abs() < 0.03, "{a:?}");
        assert!((a.epochs - 9.1).abs() < 0.15, "{a:?}");
        // Brute force: N on a grid of 200,000 points over six decades.
        let (mut best_n, mut best_l) = (0.0, f64::INFINITY);
        for k in 0..=200_000 {
            let n = 10f64.powf(7.0 + 6.0 * k as f64 / 200_000.0);
            let l = law.loss(n, c / (6.0 * n), 25e9);
            if l < best_l {
                (best_n, best_l) = (n, l);
            }
        }
        assert!(
            (a.params / best_n - 1.0).abs() < 1e-3,
            "{} vs {best_n}",
            a.params
        );
        assert!(a.loss <= best_l + 1e-12);
    }
}
