//! The learning rate that suits each model size, from a learning-rate sweep (`isoflop plan
//! --design lr`): for each size, the rate of least final loss, interpolated by a parabola
//! in ln(rate) through the best rate tried and its two neighbours; then a power law
//! lr(N) = coef * N^exponent fitted by least squares in log-log space to the sizes whose
//! best rate lies inside the rates tried (Porian et al. 2024, "Resolving Discrepancies in
//! Compute-Optimal Scaling of Language Models"; DeepSeek-AI 2024 fit the same form). A size
//! whose best rate is the smallest or largest tried is censored: its optimum lies outside
//! the sweep, so it is reported and left out of the law.

use crate::error::FitError;
use isoflop_core::LrLaw;

/// One ended run of a learning-rate sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrPoint {
    /// Total parameters.
    pub params: f64,
    /// Peak learning rate.
    pub lr: f64,
    /// Final loss; `f64::INFINITY` for a run that diverged, which counts as worse than every
    /// run that finished (a diverged largest rate still marks its neighbour as inside).
    pub loss: f64,
}

/// The best rate of one size.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SizeOptimum {
    /// Total parameters.
    pub params: f64,
    /// The rate of least loss (interpolated where not censored).
    pub lr: f64,
    /// The least loss among the rates tried.
    pub loss: f64,
    /// Rates tried.
    pub tried: usize,
    /// Where the best rate is the smallest or largest tried: why it is left out of the law.
    pub censored: Option<String>,
}

/// A learning-rate fit.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LrFit {
    /// Each size's best rate, smallest size first.
    pub sizes: Vec<SizeOptimum>,
    /// The power law through the sizes that are not censored.
    pub law: LrLaw,
    /// The standard error of the exponent (with at least three sizes in the law).
    pub exponent_se: Option<f64>,
}

const APPROACH: &str = "learning-rate fit";

/// Fits each size's best rate and the power law through them.
///
/// # Errors
/// [`FitError::TooFewPoints`] where fewer than two sizes have an optimum inside their rates
/// (each size needs three rates or more); [`FitError::Unsupported`] for a non-positive or
/// non-finite value.
pub fn fit_lr(points: &[LrPoint]) -> Result<LrFit, FitError> {
    let sizes = size_optima(points)?;
    let (law, exponent_se) = law_through(&sizes)?;
    Ok(LrFit {
        sizes,
        law,
        exponent_se,
    })
}

/// Each size's best rate (censored where it is the smallest or largest tried, or where
/// fewer than three rates were tried), smallest size first.
///
/// # Errors
/// [`FitError::Unsupported`] for a non-positive or non-finite value.
pub fn size_optima(points: &[LrPoint]) -> Result<Vec<SizeOptimum>, FitError> {
    let usable = |p: &LrPoint| {
        p.params > 0.0
            && p.lr > 0.0
            && p.params.is_finite()
            && p.lr.is_finite()
            && (p.loss.is_finite() || p.loss == f64::INFINITY)
    };
    if let Some(p) = points.iter().find(|p| !usable(p)) {
        return Err(FitError::Unsupported {
            approach: APPROACH,
            reason: format!(
                "a run with params {}, lr {}, loss {}: params and lr must be finite and positive, the loss finite (or infinite for a diverged run)",
                p.params, p.lr, p.loss
            ),
        });
    }
    let mut sizes: Vec<f64> = points.iter().map(|p| p.params).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    let mut out = Vec::new();
    for n in sizes {
        let mut mine: Vec<&LrPoint> = points.iter().filter(|p| p.params == n).collect();
        mine.sort_by(|a, b| a.lr.total_cmp(&b.lr));
        let k = (0..mine.len())
            .min_by(|&i, &j| mine[i].loss.total_cmp(&mine[j].loss))
            .expect("a size has a point");
        let censored = if mine[k].loss.is_infinite() {
            Some(format!(
                "every rate tried ({:.3e} to {:.3e}) diverged; try smaller",
                mine[0].lr,
                mine[mine.len() - 1].lr
            ))
        } else if mine.len() < 3 {
            Some(format!(
                "only {} rate(s) tried; three are needed",
                mine.len()
            ))
        } else if k == 0 {
            Some(format!(
                "its best rate is the smallest tried ({:.3e}); try smaller",
                mine[0].lr
            ))
        } else if k == mine.len() - 1 {
            Some(format!(
                "its best rate is the largest tried ({:.3e}); try larger",
                mine[k].lr
            ))
        } else {
            None
        };
        let lr = match censored {
            Some(_) => mine[k].lr,
            // A diverged neighbour has no loss to draw a parabola through.
            None if mine[k - 1].loss.is_infinite() || mine[k + 1].loss.is_infinite() => mine[k].lr,
            None => {
                let (x, y): (Vec<f64>, Vec<f64>) = (k - 1..=k + 1)
                    .map(|i| (mine[i].lr.ln(), mine[i].loss))
                    .unzip();
                vertex(&x, &y).exp()
            }
        };
        out.push(SizeOptimum {
            params: n,
            lr,
            loss: mine[k].loss,
            tried: mine.len(),
            censored,
        });
    }
    Ok(out)
}

/// The power law lr(N) = coef N^exponent through the sizes that are not censored (least
/// squares in log-log space), with the exponent's standard error from three sizes on.
///
/// # Errors
/// [`FitError::TooFewPoints`] where fewer than two sizes are not censored.
pub fn law_through(sizes: &[SizeOptimum]) -> Result<(LrLaw, Option<f64>), FitError> {
    let usable: Vec<(f64, f64)> = sizes
        .iter()
        .filter(|s| s.censored.is_none())
        .map(|s| (s.params.ln(), s.lr.ln()))
        .collect();
    if usable.len() < 2 {
        return Err(FitError::TooFewPoints {
            approach: APPROACH,
            have: usable.len(),
            need: 2,
            why: "sizes whose best rate lies inside the rates tried, for a power law",
        });
    }
    let m = usable.len() as f64;
    let (mx, my) = (
        usable.iter().map(|p| p.0).sum::<f64>() / m,
        usable.iter().map(|p| p.1).sum::<f64>() / m,
    );
    let sxx: f64 = usable.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = usable.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
    let intercept = my - slope * mx;
    let exponent_se = (usable.len() >= 3).then(|| {
        let rss: f64 = usable
            .iter()
            .map(|p| (p.1 - intercept - slope * p.0).powi(2))
            .sum();
        (rss / (m - 2.0) / sxx).sqrt()
    });
    Ok((
        LrLaw {
            coef: intercept.exp(),
            exponent: slope,
        },
        exponent_se,
    ))
}

/// The x of the vertex of the parabola through three points (x ascending, the middle one
/// lowest), which lies between the outer two.
fn vertex(x: &[f64], y: &[f64]) -> f64 {
    let (d1, d2) = ((y[1] - y[0]) / (x[1] - x[0]), (y[2] - y[1]) / (x[2] - x[1]));
    let curvature = (d2 - d1) / (x[2] - x[0]);
    if curvature <= 0.0 {
        return x[1];
    }
    // The derivative is d1 at (x0 + x1) / 2 and grows by 2 * curvature per unit of x.
    ((x[0] + x[1]) / 2.0 - d1 / (2.0 * curvature)).clamp(x[0], x[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Losses quadratic in ln(lr) around lr*(N) = 0.05 N^-0.3: the parabola through any
    /// three rates is exact, so the law comes back to rounding.
    fn sweep(sizes: &[f64], rates: &[f64]) -> Vec<LrPoint> {
        let mut v = Vec::new();
        for &n in sizes {
            let best = 0.05 * n.powf(-0.3);
            for &r in rates {
                let lr = best * r;
                v.push(LrPoint {
                    params: n,
                    lr,
                    loss: 2.0 + 5.0 / n.powf(0.2) + 0.1 * (lr / best).ln().powi(2),
                });
            }
        }
        v
    }

    #[test]
    fn recovers_a_known_power_law_and_each_sizes_best_rate() {
        let rates = [0.3, 0.55, 1.2, 2.1, 4.0];
        let f = fit_lr(&sweep(&[1e5, 4e5, 1.6e6, 6.4e6], &rates)).unwrap();
        assert!((f.law.exponent + 0.3).abs() < 1e-9, "{f:?}");
        assert!((f.law.coef / 0.05 - 1.0).abs() < 1e-8, "{f:?}");
        assert!(f.exponent_se.unwrap() < 1e-9);
        for s in &f.sizes {
            assert!(s.censored.is_none());
            assert!((s.lr / (0.05 * s.params.powf(-0.3)) - 1.0).abs() < 1e-9);
        }
        assert!((f.law.at(1e6) - 0.05 * 1e6f64.powf(-0.3)).abs() < 1e-12);
    }

    #[test]
    fn a_diverged_largest_rate_is_worse_than_every_finished_one() {
        let p = |lr: f64, loss: f64| LrPoint {
            params: 1e5,
            lr,
            loss,
        };
        // Without the diverged 8e-3 the best rate, 4e-3, would be the largest tried.
        let s = size_optima(&[
            p(1e-3, 3.0),
            p(2e-3, 2.9),
            p(4e-3, 2.8),
            p(8e-3, f64::INFINITY),
        ])
        .unwrap();
        assert_eq!(s[0].censored, None);
        assert_eq!((s[0].lr, s[0].loss), (4e-3, 2.8));
        let s = size_optima(&[p(1e-3, 3.0), p(2e-3, 2.9), p(4e-3, 2.8)]).unwrap();
        assert!(s[0].censored.as_deref().unwrap().contains("largest tried"));
        // Every rate diverged: censored, and says which way to look.
        let s = size_optima(&[p(1e-3, f64::INFINITY), p(2e-3, f64::INFINITY)]).unwrap();
        assert!(s[0]
            .censored
            .as_deref()
            .unwrap()
            .contains("diverged; try smaller"));
        // NaN and -inf are still refused.
        assert!(size_optima(&[p(1e-3, f64::NAN)]).is_err());
        assert!(size_optima(&[p(1e-3, f64::NEG_INFINITY)]).is_err());
    }

    #[test]
    fn a_best_rate_at_the_edge_is_censored_and_left_out() {
        let mut pts = sweep(&[1e5, 4e5, 1.6e6], &[0.5, 1.1, 2.0]);
        // The largest size only tried rates above its best.
        pts.extend(sweep(&[6.4e6], &[2.0, 4.0, 8.0]));
        let f = fit_lr(&pts).unwrap();
        let last = f.sizes.last().unwrap();
        assert!(last.censored.as_deref().unwrap().contains("smallest tried"));
        assert!((f.law.exponent + 0.3).abs() < 1e-9);
        // Too few sizes inside their rates is an error naming the need.
        let e = fit_lr(&sweep(&[1e5], &[0.5, 1.1, 2.0]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 2"), "{e}");
        let e = fit_lr(&[LrPoint {
            params: 1e5,
            lr: -1.0,
            loss: 2.0,
        }])
        .unwrap_err()
        .to_string();
        assert!(e.contains("lr -1"), "{e}");
    }
}
