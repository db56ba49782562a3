//! Inference-aware allocation (Sardana et al. 2024, "Beyond Chinchilla-Optimal"): a model
//! that will serve T tokens costs c_t N D FLOPs to train and c_i N T to serve (6 and 2 per
//! parameter per token by default). For a target loss, the allocation minimises the sum
//! along the law's iso-loss curve; for a total budget, it minimises the loss on
//! c_t N D + c_i N T = C. Each is compared with the Chinchilla-optimal model of the same
//! loss (the one that minimises training FLOPs alone), served the same T tokens.

use crate::error::FitError;
use crate::forms::argmin_log;
use crate::law::ParametricLaw;

/// FLOPs per parameter per token.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Costs {
    /// Training (6: forward and backward).
    pub train: f64,
    /// Inference (2: forward).
    pub inference: f64,
}

impl Default for Costs {
    fn default() -> Self {
        Costs {
            train: 6.0,
            inference: 2.0,
        }
    }
}

/// A model, its training and its serving.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Plan {
    /// N.
    pub params: f64,
    /// D, training tokens.
    pub tokens: f64,
    /// The predicted loss.
    pub loss: f64,
    /// c_t N D.
    pub training_flops: f64,
    /// c_i N T.
    pub inference_flops: f64,
    /// Their sum.
    pub total_flops: f64,
}

/// The inference-aware allocation beside the Chinchilla-optimal model of the same loss.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InferenceAllocation {
    /// T, the tokens the model will serve.
    pub inference_tokens: f64,
    /// The per-token costs used.
    pub costs: Costs,
    /// The allocation that minimises training plus inference FLOPs.
    pub aware: Plan,
    /// The Chinchilla-optimal model of the same loss, served the same tokens.
    pub chinchilla: Plan,
    /// aware N / Chinchilla N (below 1: smaller).
    pub params_ratio: f64,
    /// aware D / Chinchilla D (above 1: trained longer).
    pub tokens_ratio: f64,
    /// Chinchilla's total FLOPs minus the aware allocation's.
    pub flops_saved: f64,
}

fn plan(law: &ParametricLaw, n: f64, d: f64, t: f64, c: Costs) -> Plan {
    let (train, serve) = (c.train * n * d, c.inference * n * t);
    Plan {
        params: n,
        tokens: d,
        loss: law.loss(n, d),
        training_flops: train,
        inference_flops: serve,
        total_flops: train + serve,
    }
}

/// [`argmin_log`], with the error of a search that found nothing finite.
fn search(f: impl Fn(f64) -> f64, lo: f64, hi: f64) -> Result<(f64, f64), FitError> {
    argmin_log(f, lo, hi).ok_or_else(|| {
        FitError::InvalidOption("no allocation found: the law is not finite there".into())
    })
}

fn check(t: f64, c: Costs) -> Result<(), FitError> {
    if !(t >= 0.0 && t.is_finite()) {
        return Err(FitError::InvalidOption(format!(
            "--inference-tokens must be zero or positive, got {t}"
        )));
    }
    if !(c.train > 0.0 && c.inference >= 0.0 && c.train.is_finite() && c.inference.is_finite()) {
        return Err(FitError::InvalidOption(format!(
            "the FLOPs per parameter per token must be positive (training {}, inference {})",
            c.train, c.inference
        )));
    }
    Ok(())
}

/// D on the iso-loss curve of `loss` at N (None where N alone is too small for that loss).
fn tokens_for(law: &ParametricLaw, loss: f64, n: f64) -> Option<f64> {
    let rest = loss - law.e - law.a / n.powf(law.alpha);
    (rest > 0.0).then(|| (law.b / rest).powf(1.0 / law.beta))
}

/// The smallest N that can reach `loss` (with infinite data).
fn min_params(law: &ParametricLaw, loss: f64) -> f64 {
    (law.a / (loss - law.e)).powf(1.0 / law.alpha)
}

/// The cheapest way to reach `loss` serving `t` tokens, beside Chinchilla's.
///
/// # Errors
/// [`FitError::InvalidOption`] for a loss at or below E (no model reaches it), a negative
/// or non-finite `t`, or costs that are not positive.
pub fn for_loss(
    law: &ParametricLaw,
    loss: f64,
    t: f64,
    c: Costs,
) -> Result<InferenceAllocation, FitError> {
    check(t, c)?;
    if !(loss > law.e) {
        return Err(FitError::InvalidOption(format!(
            "a loss of {loss} is at or below the law's irreducible loss E = {:.4}: no model reaches it",
            law.e
        )));
    }
    let lo = min_params(law, loss) * (1.0 + 1e-9);
    let cost = |tt: f64| {
        move |n: f64| {
            tokens_for(law, loss, n)
                .map_or(f64::INFINITY, |d| c.train * n * d + c.inference * n * tt)
        }
    };
    let (n, _) = search(cost(t), lo, lo * 1e9)?;
    let (n0, _) = search(cost(0.0), lo, lo * 1e9)?;
    let d = tokens_for(law, loss, n).expect("n is above the minimum");
    let d0 = tokens_for(law, loss, n0).expect("n0 is above the minimum");
    Ok(compare(
        law,
        plan(law, n, d, t, c),
        plan(law, n0, d0, t, c),
        t,
        c,
    ))
}

/// The lowest loss for a total budget `flops` of training plus serving `t` tokens, beside
/// the Chinchilla-optimal model of that loss.
///
/// # Errors
/// As [`for_loss`], and for a non-positive budget.
pub fn for_flops(
    law: &ParametricLaw,
    flops: f64,
    t: f64,
    c: Costs,
) -> Result<InferenceAllocation, FitError> {
    check(t, c)?;
    if !(flops > 0.0 && flops.is_finite()) {
        return Err(FitError::InvalidOption(format!(
            "the budget must be positive, got {flops}"
        )));
    }
    // N < C / (c_i T): serving alone must leave something to train with.
    let hi = if t > 0.0 && c.inference > 0.0 {
        flops / (c.inference * t) * (1.0 - 1e-9)
    } else {
        (flops / c.train).sqrt() * 1e6
    };
    let d_of = |n: f64| (flops - c.inference * n * t) / (c.train * n);
    let f = |n: f64| {
        let d = d_of(n);
        if d > 0.0 {
            law.loss(n, d)
        } else {
            f64::INFINITY
        }
    };
    let lo = (hi * 1e-12).min((flops / c.train).sqrt() * 1e-6);
    let (n, _) = search(f, lo, hi)?;
    let aware = plan(law, n, d_of(n), t, c);
    let same = for_loss(law, aware.loss, t, c)?;
    Ok(compare(law, aware, same.chinchilla, t, c))
}

fn compare(
    _law: &ParametricLaw,
    aware: Plan,
    chinchilla: Plan,
    t: f64,
    c: Costs,
) -> InferenceAllocation {
    InferenceAllocation {
        inference_tokens: t,
        costs: c,
        aware,
        chinchilla,
        params_ratio: aware.params / chinchilla.params,
        tokens_ratio: aware.tokens / chinchilla.tokens,
        flops_saved: chinchilla.total_flops - aware.total_flops,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAW: ParametricLaw = ParametricLaw::CHINCHILLA_UNROUNDED;

    #[test]
    fn with_no_inference_it_is_the_chinchilla_optimum() {
        let c = 5.76e23;
        let n = LAW.optimal_params(c);
        let loss = LAW.loss(n, LAW.optimal_tokens(c));
        let a = for_loss(&LAW, loss, 0.0, Costs::default()).unwrap();
        assert!((a.aware.params / n - 1.0).abs() < 1e-5, "{a:?}");
        assert!((a.aware.training_flops / c - 1.0).abs() < 1e-5);
        assert!(a.flops_saved.abs() < 1e-6 * c);
        let b = for_flops(&LAW, c, 0.0, Costs::default()).unwrap();
        assert!((b.aware.params / n - 1.0).abs() < 1e-5, "{b:?}");
    }

    #[test]
    fn more_inference_means_smaller_models_trained_longer() {
        let loss = 2.0;
        let mut last: Option<InferenceAllocation> = None;
        for t in [0.0, 1e10, 1e11, 1e12, 1e13, 1e14] {
            let a = for_loss(&LAW, loss, t, Costs::default()).unwrap();
            assert!((a.aware.loss - loss).abs() < 1e-9);
            if let Some(p) = last {
                assert!(a.aware.params < p.aware.params, "N at T {t}");
                assert!(a.aware.tokens > p.aware.tokens, "D at T {t}");
                assert!(a.flops_saved >= p.flops_saved - 1e-6 * p.aware.total_flops);
            }
            last = Some(a);
        }
    }

    #[test]
    fn the_total_equals_a_brute_force_minimum_along_the_iso_loss_curve() {
        let (loss, t, c) = (2.1, 2e12, Costs::default());
        let a = for_loss(&LAW, loss, t, c).unwrap();
        let lo = min_params(&LAW, loss);
        let mut best = f64::INFINITY;
        for k in 1..=400_000 {
            let n = lo * 10f64.powf(6.0 * k as f64 / 400_000.0);
            if let Some(d) = tokens_for(&LAW, loss, n) {
                best = best.min(c.train * n * d + c.inference * n * t);
            }
        }
        assert!(
            (a.aware.total_flops / best - 1.0).abs() < 1e-6,
            "{} vs {best}",
            a.aware.total_flops
        );
        assert!(a.aware.total_flops <= a.chinchilla.total_flops);
    }

    #[test]
    fn bad_targets_say_why() {
        let e = for_loss(&LAW, 1.5, 1e12, Costs::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("irreducible") && e.contains("1.5"), "{e}");
        let e = for_loss(&LAW, 2.0, -1.0, Costs::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--inference-tokens") && e.contains("-1"), "{e}");
    }
}
