//! Laws as a family. Each form (Chinchilla's L(N, D) in [`crate::law`], the data-constrained
//! law in [`crate::data_constrained`], Kaplan et al.'s in [`crate::kaplan`]) has a name,
//! parameters, a fit, a prediction for a run and an allocation; [`compare`] scores several
//! forms fitted to one table by the same measure.
//!
//! Adding a form is one file: a law type implementing [`LawForm`], its fit (by [`minimize_huber`]
//! where no faster path exists), its presets, and a line in the CLI's `--law` list.

use crate::lbfgs::{self, Options};
use crate::objective::HUBER_DELTA;
use isoflop_core::Observation;

/// A law of the final loss of a run.
pub trait LawForm {
    /// The form's name, as `isoflop fit --law` spells it.
    fn form(&self) -> &'static str;
    /// The loss the law predicts for the run `o` (its N, D and, where the form uses it, U).
    fn predict(&self, o: &Observation) -> f64;
}

impl LawForm for crate::law::ParametricLaw {
    fn form(&self) -> &'static str {
        "chinchilla"
    }
    fn predict(&self, o: &Observation) -> f64 {
        self.loss(o.params, o.tokens)
    }
}

/// Huber's loss with threshold `delta`.
pub fn huber(r: f64, delta: f64) -> f64 {
    if r.abs() <= delta {
        0.5 * r * r
    } else {
        delta * (r.abs() - 0.5 * delta)
    }
}

/// How well a law describes a set of runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// The form's name.
    pub form: String,
    /// Points scored.
    pub points: usize,
    /// The fit's objective per point: the mean of Huber_1e-3(ln L_pred - ln L).
    pub objective_per_point: f64,
    /// Root mean square of ln L_pred - ln L (about the relative error of the loss).
    pub rmse_log: f64,
    /// Mean of |L_pred - L| / L.
    pub mean_abs_rel_error: f64,
}

/// Scores `law` on `points` (each form by the same measures, so forms can be compared).
pub fn score(law: &dyn LawForm, points: &[Observation]) -> Score {
    let n = points.len().max(1) as f64;
    let (mut obj, mut sq, mut rel) = (0.0, 0.0, 0.0);
    for o in points {
        let p = law.predict(o);
        let r = p.ln() - o.loss.ln();
        obj += huber(r, HUBER_DELTA);
        sq += r * r;
        rel += (p - o.loss).abs() / o.loss;
    }
    Score {
        form: law.form().to_string(),
        points: points.len(),
        objective_per_point: obj / n,
        rmse_log: (sq / n).sqrt(),
        mean_abs_rel_error: rel / n,
    }
}

/// Scores every law on the same points, best (lowest objective per point) first.
pub fn compare(laws: &[&dyn LawForm], points: &[Observation]) -> Vec<Score> {
    let mut v: Vec<Score> = laws.iter().map(|l| score(*l, points)).collect();
    v.sort_by(|a, b| a.objective_per_point.total_cmp(&b.objective_per_point));
    v
}

/// Minimises `f` (a sum of Huber losses in log space, or any smooth objective) from every
/// start by L-BFGS with central-difference gradients; returns the best point, its value and
/// whether it converged.
/// For forms with few parameters and no analytic gradient.
pub fn minimize_huber<const N: usize>(
    f: impl Fn(&[f64; N]) -> f64 + Sync,
    starts: &[[f64; N]],
    opts: &Options,
) -> Option<([f64; N], f64, bool)> {
    use rayon::prelude::*;
    let fg = |x: &[f64; N], g: &mut [f64; N]| {
        let fx = f(x);
        for i in 0..N {
            let h = 1e-6 * x[i].abs().max(1.0);
            let (mut xp, mut xm) = (*x, *x);
            xp[i] += h;
            xm[i] -= h;
            g[i] = (f(&xp) - f(&xm)) / (2.0 * h);
        }
        fx
    };
    starts
        .par_iter()
        .map(|x0| lbfgs::minimize(fg, *x0, opts))
        .filter(|m| m.f.is_finite())
        .min_by(|a, b| a.f.total_cmp(&b.f))
        // With central differences the last digits of the gradient are noise: an objective
        // at zero (an exact fit) or a gradient below 1e-8 is converged too, whichever rule
        // stopped the run.
        .map(|m| {
            (
                m.x,
                m.f,
                m.converged() || m.f <= 1e-15 || m.grad_max <= 1e-8,
            )
        })
}

/// Finds the minimum of a unimodal `f` over ln x in [ln lo, ln hi]: a scan of 400 points,
/// then golden-section search around the best. Returns (x, f(x)).
pub fn argmin_log(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> Option<(f64, f64)> {
    if !(lo > 0.0 && hi > lo) {
        return None;
    }
    let (a, b) = (lo.ln(), hi.ln());
    let n = 400;
    let at = |k: usize| a + (b - a) * k as f64 / n as f64;
    let (k, _) = (0..=n)
        .map(|k| (k, f(at(k).exp())))
        .filter(|(_, v)| v.is_finite())
        .min_by(|x, y| x.1.total_cmp(&y.1))?;
    let (mut l, mut r) = (at(k.saturating_sub(1)), at((k + 1).min(n)));
    let phi = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..200 {
        let (m1, m2) = (r - phi * (r - l), l + phi * (r - l));
        let (f1, f2) = (f(m1.exp()), f(m2.exp()));
        if f1.is_nan() || f2.is_nan() {
            break;
        }
        if f1 <= f2 {
            r = m2;
        } else {
            l = m1;
        }
        if (r - l).abs() < 1e-13 {
            break;
        }
    }
    let x = ((l + r) / 2.0).exp();
    Some((x, f(x)))
}
/// Law forms compared on runs none of them was fitted to.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FormsHeldOut {
    /// The rule that chose the held-out runs, in words (validate's default split).
    pub split: String,
    /// Runs each form was fitted to.
    pub fitted_runs: usize,
    /// Runs held out and scored.
    pub held_runs: usize,
    /// Each form's score on the held-out runs, best first.
    pub scores: Vec<Score>,
}
