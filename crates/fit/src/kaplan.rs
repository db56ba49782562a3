//! Kaplan et al. 2020's joint law ("Scaling Laws for Neural Language Models", eq. 1.5):
//!
//! ```text
//! L(N, D) = [ (N_c / N)^(alpha_N / alpha_D) + D_c / D ]^alpha_D
//! ```
//!
//! with no irreducible term. Fitted in log space, x = (ln N_c, alpha_N, ln D_c, alpha_D), by
//! the same Huber objective on ln L as the Chinchilla form (delta 1e-3), L-BFGS from a grid
//! of starts. Kaplan et al. fitted N without embeddings; a table's `params` are what it
//! holds, so compare laws fitted to one table, not these numbers with the paper's.

use crate::error::FitError;
use crate::forms::{huber, minimize_huber, LawForm};
use crate::lbfgs::Options;
use crate::objective::HUBER_DELTA;
use isoflop_core::Observation;

/// L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KaplanLaw {
    /// N_c, parameters.
    pub n_c: f64,
    /// alpha_N.
    pub alpha_n: f64,
    /// D_c, tokens.
    pub d_c: f64,
    /// alpha_D.
    pub alpha_d: f64,
}

impl KaplanLaw {
    /// Kaplan et al. 2020, eq. 1.5 and Table 2: N_c 8.8e13 (non-embedding parameters),
    /// alpha_N 0.076, D_c 5.4e13 tokens, alpha_D 0.095.
    pub const KAPLAN_2020: KaplanLaw = KaplanLaw {
        n_c: 8.8e13,
        alpha_n: 0.076,
        d_c: 5.4e13,
        alpha_d: 0.095,
    };

    /// The predicted loss.
    pub fn loss(&self, params: f64, tokens: f64) -> f64 {
        ((self.n_c / params).powf(self.alpha_n / self.alpha_d) + self.d_c / tokens)
            .powf(self.alpha_d)
    }

    fn from_log(x: &[f64; 4]) -> KaplanLaw {
        KaplanLaw {
            n_c: x[0].exp(),
            alpha_n: x[1],
            d_c: x[2].exp(),
            alpha_d: x[3],
        }
    }

    /// True when every parameter is positive and finite.
    pub fn is_valid(&self) -> bool {
        [self.n_c, self.alpha_n, self.d_c, self.alpha_d]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    }
}

impl LawForm for KaplanLaw {
    fn form(&self) -> &'static str {
        "kaplan"
    }
    fn predict(&self, o: &Observation) -> f64 {
        self.loss(o.params, o.tokens)
    }
}

/// A fitted Kaplan law.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct KaplanFit {
    /// The law.
    pub law: KaplanLaw,
    /// Points fitted.
    pub points: usize,
    /// The objective (sum of Huber_1e-3 of log errors).
    pub objective: f64,
    /// Whether the best start converged to a valid law.
    pub converged: bool,
}

/// Fits the Kaplan form to final losses.
///
/// # Errors
/// [`FitError::TooFewPoints`] with fewer than 5 points; [`FitError::Unsupported`] when no
/// start reaches a finite objective.
///
/// # Example
/// ```
/// use isoflop_fit::kaplan::{fit_kaplan, KaplanLaw};
/// use isoflop_fit::synthetic::point;
/// // Final losses drawn from Kaplan et al. 2020's law (their Table 2 constants).
/// let truth = KaplanLaw::KAPLAN_2020;
/// let mut points = Vec::new();
/// for n in [1e7, 1e8, 1e9, 1e10] {
///     for d in [1e9, 1e10, 1e11] {
///         points.push(point(n, d, truth.loss(n, d)));
///     }
/// }
/// let fit = fit_kaplan(&points).unwrap();
/// assert!(fit.converged);
/// assert!((fit.law.alpha_n - truth.alpha_n).abs() < 1e-3);
/// ```
pub fn fit_kaplan(points: &[Observation]) -> Result<KaplanFit, FitError> {
    if points.len() < 5 {
        return Err(FitError::TooFewPoints {
            approach: "Kaplan law",
            have: points.len(),
            need: 5,
            why: "four parameters and one degree of freedom",
        });
    }
    let f = |x: &[f64; 4]| {
        let law = KaplanLaw::from_log(x);
        points
            .iter()
            .map(|o| huber(law.loss(o.params, o.tokens).ln() - o.loss.ln(), HUBER_DELTA))
            .sum::<f64>()
    };
    // ln N_c in {10, 20, 30, 40}, alpha_N in {0.05, 0.2, 0.5}, ln D_c in {10, 20, 30, 40},
    // alpha_D in {0.05, 0.2, 0.5}: 144 starts around the published values' scale.
    let mut starts = Vec::new();
    for ln_nc in [10.0, 20.0, 30.0, 40.0] {
        for an in [0.05, 0.2, 0.5] {
            for ln_dc in [10.0, 20.0, 30.0, 40.0] {
                for ad in [0.05, 0.2, 0.5] {
                    starts.push([ln_nc, an, ln_dc, ad]);
                }
            }
        }
    }
    let opts = Options {
        max_iter: 2000,
        ..Options::default()
    };
    let (x, objective, converged) =
        minimize_huber(f, &starts, &opts).ok_or_else(|| FitError::Unsupported {
            approach: "Kaplan law",
            reason: "no start reached a finite objective".into(),
        })?;
    let law = KaplanLaw::from_log(&x);
    Ok(KaplanFit {
        law,
        points: points.len(),
        objective,
        converged: converged && law.is_valid(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_its_parameters_from_points_drawn_from_it() {
        let truth = KaplanLaw {
            n_c: 3e12,
            alpha_n: 0.09,
            d_c: 2e13,
            alpha_d: 0.11,
        };
        let mut pts = Vec::new();
        let mut rng = isoflop_core::Rng::new(4);
        for i in 0..8 {
            for j in 0..8 {
                let n = 1e7 * 10f64.powf(i as f64 * 0.45);
                let d = 1e8 * 10f64.powf(j as f64 * 0.45);
                let l = truth.loss(n, d) * (0.002 * rng.normal()).exp();
                pts.push(Observation {
                    line: 0,
                    run: None,
                    step: None,
                    params: n,
                    tokens: d,
                    flops: 6.0 * n * d,
                    loss: l,
                    budget: None,
                    unique_tokens: None,
                });
            }
        }
        let fit = fit_kaplan(&pts).unwrap();
        assert!(fit.converged, "{fit:?}");
        let l = fit.law;
        assert!((l.alpha_n / truth.alpha_n - 1.0).abs() < 0.05, "{l:?}");
        assert!((l.alpha_d / truth.alpha_d - 1.0).abs() < 0.05, "{l:?}");
        assert!((l.n_c.ln() / truth.n_c.ln() - 1.0).abs() < 0.05, "{l:?}");
        assert!((l.d_c.ln() / truth.d_c.ln() - 1.0).abs() < 0.05, "{l:?}");
    }
}
