//! Power-law frontiers N_opt = k_N C^a and D_opt = k_D C^b, fitted by least squares in log
//! space: what Approaches 1 and 2 produce.

use crate::stats::{fit_line, percentile_interval, Interval};

/// N_opt(C) = k_N C^a and D_opt(C) = k_D C^b, fitted separately.
///
/// The two are fitted independently, as in Hoffmann et al. (2022): the pair does not in
/// general satisfy C = 6 N D (the paper's Approach 1 gives 67B parameters and 1.5T tokens
/// at 5.76e23 FLOPs, whose 6ND is 6.0e23). [`Frontier::tokens_from_flops`] gives the
/// alternative D = C / (6 N_opt).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Frontier {
    /// a, the exponent of N_opt.
    pub params_exponent: f64,
    /// k_N.
    pub params_coef: f64,
    /// b, the exponent of D_opt.
    pub tokens_exponent: f64,
    /// k_D.
    pub tokens_coef: f64,
}

impl Frontier {
    /// Fits both power laws to (C, N_opt, D_opt) triples. `None` with fewer than two distinct C.
    pub fn fit(flops: &[f64], params: &[f64], tokens: &[f64]) -> Option<Frontier> {
        let lc: Vec<f64> = flops.iter().map(|c| c.ln()).collect();
        let ln: Vec<f64> = params.iter().map(|n| n.ln()).collect();
        let ld: Vec<f64> = tokens.iter().map(|d| d.ln()).collect();
        let (a, kn) = fit_line(&lc, &ln)?;
        let (b, kd) = fit_line(&lc, &ld)?;
        Some(Frontier {
            params_exponent: a,
            params_coef: kn.exp(),
            tokens_exponent: b,
            tokens_coef: kd.exp(),
        })
    }

    /// N_opt at `flops`.
    pub fn optimal_params(&self, flops: f64) -> f64 {
        self.params_coef * flops.powf(self.params_exponent)
    }

    /// D_opt at `flops`, from its own power law.
    pub fn optimal_tokens(&self, flops: f64) -> f64 {
        self.tokens_coef * flops.powf(self.tokens_exponent)
    }

    /// D = C / (6 N_opt): the token count that spends exactly `flops` on N_opt.
    pub fn tokens_from_flops(&self, flops: f64) -> f64 {
        flops / (6.0 * self.optimal_params(flops))
    }

    /// The budget at which `params` is optimal: C = (N / k_N)^(1/a).
    pub fn flops_for_params(&self, params: f64) -> f64 {
        (params / self.params_coef).powf(1.0 / self.params_exponent)
    }

    /// True when both exponents and coefficients are finite and positive.
    pub fn is_valid(&self) -> bool {
        [
            self.params_exponent,
            self.params_coef,
            self.tokens_exponent,
            self.tokens_coef,
        ]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0)
    }
}

/// Bootstrap intervals of a frontier's two exponents (Approaches 1 and 2).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FrontierIntervals {
    /// Resamples requested.
    pub resamples: usize,
    /// Resamples that produced a frontier.
    pub usable: usize,
    /// Seed.
    pub seed: u64,
    /// a.
    pub params_exponent: Interval,
    /// b.
    pub tokens_exponent: Interval,
}

impl FrontierIntervals {
    /// Percentile intervals of the two exponents over bootstrap frontiers; `None` with fewer
    /// than two.
    pub fn from_samples(
        samples: &[Frontier],
        resamples: usize,
        seed: u64,
        level: f64,
    ) -> Option<Self> {
        let iv = |f: &dyn Fn(&Frontier) -> f64| percentile_interval(samples.iter().map(f), level);
        Some(FrontierIntervals {
            resamples,
            usable: samples.len(),
            seed,
            params_exponent: iv(&|f| f.params_exponent)?,
            tokens_exponent: iv(&|f| f.tokens_exponent)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_exact_power_laws_and_inverts() {
        let c = [1e18, 1e19, 1e20, 1e21];
        let n: Vec<f64> = c.iter().map(|c: &f64| 0.1 * c.powf(0.5)).collect();
        let d: Vec<f64> = c.iter().map(|c: &f64| 1.7 * c.powf(0.5)).collect();
        let f = Frontier::fit(&c, &n, &d).unwrap();
        assert!(
            (f.params_exponent - 0.5).abs() < 1e-12 && (f.params_coef / 0.1 - 1.0).abs() < 1e-9
        );
        assert!(
            (f.tokens_exponent - 0.5).abs() < 1e-12 && (f.tokens_coef / 1.7 - 1.0).abs() < 1e-9
        );
        let c0 = 3.3e22;
        assert!((f.flops_for_params(f.optimal_params(c0)) / c0 - 1.0).abs() < 1e-10);
        assert!((f.tokens_from_flops(c0) * 6.0 * f.optimal_params(c0) / c0 - 1.0).abs() < 1e-12);
    }
}
