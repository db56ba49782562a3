//! Synthetic runs drawn from a known law, with seeded noise: what the tests (and anyone
//! checking a fitting procedure) use to see that each approach recovers the truth.

use crate::parametric::ParametricLaw;
use isoflop_core::{Observation, Rng};
use std::collections::BTreeMap;

/// The known law the synthetic tests recover: Epoch's 2024 fit, rounded (E 1.8, A 480,
/// B 2100, alpha 0.35, beta 0.37).
pub const TRUTH: ParametricLaw = ParametricLaw {
    e: 1.8,
    a: 480.0,
    b: 2100.0,
    alpha: 0.35,
    beta: 0.37,
};

/// IsoFLOP runs: at each budget, nine sizes log-spaced (0.15 decades apart) around the law's
/// optimum, D = C/(6N), loss from the law times (1 + noise * N(0, 1)). Rows carry `budget`.
pub fn isoflop_points(
    law: &ParametricLaw,
    budgets: &[f64],
    noise: f64,
    seed: u64,
) -> Vec<Observation> {
    grid(law, budgets, noise, seed, |c, k| {
        law.optimal_params(c) * 10f64.powf((k as f64 - 4.0) * 0.15)
    })
}

/// Cosine-schedule training curves: eight sizes (1e7 to 1.26e9 parameters, 2x apart), each
/// trained for four horizons (2.5 to 160 tokens per parameter, 4x apart), 200 rows logged
/// every 50 steps. A model of size N at tokens t of horizon H has the law's loss L(N, t) plus
/// a penalty for the unfinished schedule, 0.08 (1 + cos(pi t/H))/2, which vanishes at t = H
/// (the shape cosine schedules show), times (1 + noise * N(0, 1)).
pub fn cosine_curves(
    law: &ParametricLaw,
    noise: f64,
    seed: u64,
) -> BTreeMap<String, Vec<Observation>> {
    let mut rng = Rng::new(seed);
    let mut out = BTreeMap::new();
    for i in 0..8 {
        let n = 1e7 * 10f64.powf(i as f64 * 0.3);
        for h in 0..4 {
            let horizon = 20.0 * n * 4f64.powf(h as f64 - 1.5);
            let name = format!("n{i}-h{h}");
            let steps = 200;
            let rows = (1..=steps)
                .map(|s| {
                    let t = horizon * s as f64 / steps as f64;
                    let unfinished =
                        0.08 * (1.0 + (std::f64::consts::PI * t / horizon).cos()) / 2.0;
                    let loss = (law.loss(n, t) + unfinished) * (1.0 + noise * rng.normal());
                    Observation {
                        line: 0,
                        run: Some(name.clone()),
                        step: Some(50.0 * s as f64),
                        params: n,
                        tokens: t,
                        flops: 6.0 * n * t,
                        loss,
                        budget: None,
                        unique_tokens: None,
                    }
                })
                .collect();
            out.insert(name, rows);
        }
    }
    out
}

/// A final point (N, D, loss) with C = 6ND.
pub fn point(params: f64, tokens: f64, loss: f64) -> Observation {
    Observation {
        line: 0,
        run: None,
        step: None,
        params,
        tokens,
        flops: 6.0 * params * tokens,
        loss,
        budget: None,
        unique_tokens: None,
    }
}

/// An 8 x 8 grid of (N, D), N from 1e7 and D from 1e8 in steps of 0.4 decades, losses from
/// `law` with multiplicative log-normal noise of `noise`, seeded.
pub fn grid_points(law: &ParametricLaw, noise: f64, seed: u64) -> Vec<Observation> {
    let mut rng = isoflop_core::Rng::new(seed);
    let mut v = Vec::new();
    for i in 0..8 {
        for j in 0..8 {
            let n = 1e7 * 10f64.powf(i as f64 * 0.4);
            let d = 1e8 * 10f64.powf(j as f64 * 0.4);
            v.push(point(n, d, law.loss(n, d) * (noise * rng.normal()).exp()));
        }
    }
    v
}

/// IsoFLOP runs as `isoflop plan` lays them out without knowing the law: at each budget, nine
/// sizes log-spaced over `width` (x) centred on 20 tokens per parameter (N = sqrt(C/120)),
/// D = C/(6N), loss from `law` times (1 + noise * N(0, 1)). Rows carry `budget`.
pub fn planned_grid(
    law: &ParametricLaw,
    budgets: &[f64],
    width: f64,
    noise: f64,
    seed: u64,
) -> Vec<Observation> {
    grid(law, budgets, noise, seed, |c, k| {
        (c / 120.0f64).sqrt() * width.powf(k as f64 / 8.0 - 0.5)
    })
}

/// Nine runs per budget at the sizes `size(C, k)`, k = 0..9, D = C/(6N), loss from `law`
/// times (1 + noise * N(0, 1)); rows carry `budget`.
fn grid(
    law: &ParametricLaw,
    budgets: &[f64],
    noise: f64,
    seed: u64,
    size: impl Fn(f64, usize) -> f64,
) -> Vec<Observation> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::new();
    for &c in budgets {
        for k in 0..9 {
            let n = size(c, k);
            let d = c / (6.0 * n);
            let mut o = point(n, d, law.loss(n, d) * (1.0 + noise * rng.normal()));
            o.flops = c;
            o.budget = Some(c);
            v.push(o);
        }
    }
    v
}

/// Runs drawn without noise from a data-constrained law: 4 sizes (1e8 to 3e9) x 3 amounts
/// of unique tokens (1e9 to 2.5e10) x 7 epoch counts (1 to 64), D = epochs x U. Most of the
/// single-epoch runs have more parameters than their unique tokens make compute-optimal.
pub fn data_constrained_runs(
    law: &crate::data_constrained::DataConstrainedLaw,
) -> Vec<Observation> {
    let mut rows = Vec::new();
    for n in [1e8, 3e8, 1e9, 3e9] {
        for u in [1e9, 5e9, 2.5e10] {
            for epochs in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0] {
                let d = u * epochs;
                rows.push(Observation {
                    line: 0,
                    run: Some(format!("n{n:e}-u{u:e}-x{epochs}")),
                    step: None,
                    params: n,
                    tokens: d,
                    flops: 6.0 * n * d,
                    loss: law.loss(n, d, u),
                    budget: None,
                    unique_tokens: Some(u),
                });
            }
        }
    }
    rows
}
