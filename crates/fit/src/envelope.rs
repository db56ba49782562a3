//! Approach 1: the minimum-loss envelope of training curves.
//!
//! Each run's curve (loss against FLOPs) is smoothed by a Gaussian of standard deviation
//! `smooth_steps` training steps (the paper smooths "over 10 steps"; curves logged every k
//! steps get sigma = smooth_steps / k rows; curves without a step column count rows as
//! steps), then interpolated, linearly in ln C, at `points` log-spaced FLOP values spanning
//! all curves. At each value the run with the lowest loss gives (C, N, D): N is that run's
//! size and D its tokens at that point. N_opt = k C^a and D_opt = k' C^b are then fitted
//! separately by least squares in log space (Hoffmann et al. 2022, section 3.1), over the
//! envelope points that neither the smallest nor the largest model wins (see `interior`).

use crate::error::FitError;
use crate::frontier::Frontier;
use crate::frontier::FrontierIntervals;
use crate::stats::{bootstrap_clusters, clusters};
use isoflop_core::Observation;
use std::collections::BTreeMap;

/// Settings of an Approach 1 fit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EnvelopeOptions {
    /// Gaussian standard deviation in training steps (0 for none).
    pub smooth_steps: f64,
    /// Log-spaced FLOP values at which the envelope is taken (1,500 in the paper).
    pub points: usize,
    /// The bootstrap (of curves).
    #[serde(flatten)]
    pub boot: crate::stats::Bootstrap,
}

impl Default for EnvelopeOptions {
    fn default() -> Self {
        EnvelopeOptions {
            smooth_steps: 10.0,
            points: 1500,
            boot: crate::stats::Bootstrap::default(),
        }
    }
}

/// One point of the envelope.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvelopePoint {
    /// FLOPs.
    pub flops: f64,
    /// The winning run's name.
    pub run: String,
    /// Its size.
    pub params: f64,
    /// Its tokens at this FLOP count.
    pub tokens: f64,
    /// Its smoothed loss here.
    pub loss: f64,
}

/// The result of an Approach 1 fit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct EnvelopeFit {
    /// Curves used.
    pub runs: usize,
    /// The envelope, by increasing FLOPs.
    pub envelope: Vec<EnvelopePoint>,
    /// Runs that appear on the envelope.
    pub runs_on_envelope: Vec<String>,
    /// The frontier.
    pub frontier: Frontier,
    /// Bootstrap intervals.
    pub intervals: Option<FrontierIntervals>,
    /// Bootstrap frontiers, kept for prediction intervals.
    pub samples: Vec<Frontier>,
    /// Warnings.
    pub warnings: Vec<String>,
    /// Power laws L = k C^s fitted to each third of the envelope (Hoffmann et al. 2022,
    /// Appendix E: the frontier bends, so fits on its small end over-predict).
    #[serde(default)]
    pub thirds: Vec<EnvelopeThird>,
}

/// A power law L = coef C^exponent fitted (least squares in log-log) to a third of the
/// envelope's points.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvelopeThird {
    /// 0, 1, 2: first, middle, last third.
    pub part: usize,
    /// The FLOPs the third spans.
    pub flops: [f64; 2],
    /// The exponent s (negative: loss falls with compute).
    pub exponent: f64,
    /// k.
    pub coef: f64,
    /// The exponent's 95% interval (1.96 standard errors of the least-squares slope).
    pub interval: crate::stats::Interval,
}

/// The power laws of each third of `envelope` (at least 3 points each).
pub fn thirds(envelope: &[EnvelopePoint]) -> Vec<EnvelopeThird> {
    let n = envelope.len();
    if n < 9 {
        return Vec::new();
    }
    (0..3)
        .filter_map(|part| {
            let pts = &envelope[part * n / 3..(part + 1) * n / 3];
            let x: Vec<f64> = pts.iter().map(|p| p.flops.ln()).collect();
            let y: Vec<f64> = pts.iter().map(|p| p.loss.ln()).collect();
            let (slope, icpt) = crate::stats::fit_line(&x, &y)?;
            let m = x.len() as f64;
            let mx = x.iter().sum::<f64>() / m;
            let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
            let sse: f64 = x
                .iter()
                .zip(&y)
                .map(|(a, b)| (b - icpt - slope * a).powi(2))
                .sum();
            let se = (sse / (m - 2.0).max(1.0) / sxx).sqrt();
            Some(EnvelopeThird {
                part,
                flops: [pts[0].flops, pts[pts.len() - 1].flops],
                exponent: slope,
                coef: icpt.exp(),
                interval: crate::stats::Interval {
                    lo: slope - 1.96 * se,
                    hi: slope + 1.96 * se,
                    level: 0.95,
                },
            })
        })
        .collect()
}

/// A run's curve as Approach 1 smooths it: (FLOPs, smoothed loss), by FLOPs.
pub fn smoothed(rows: &[Observation], smooth_steps: f64) -> Option<Vec<(f64, f64)>> {
    let c = prepare("", rows, smooth_steps)?;
    Some(
        c.ln_flops
            .iter()
            .map(|l| l.exp())
            .zip(c.loss.iter().copied())
            .collect(),
    )
}

/// A prepared curve: ln C, smoothed loss and tokens, sorted by FLOPs.
#[derive(Clone, Debug)]
pub struct Curve {
    name: String,
    params: f64,
    ln_flops: Vec<f64>,
    loss: Vec<f64>,
    tokens: Vec<f64>,
}

/// Gaussian smoothing with standard deviation `sigma` rows, as a local linear fit: at each
/// row, the intercept of a least-squares line through the neighbouring rows weighted by a
/// Gaussian (truncated at 4 sigma). Unlike a weighted mean, this keeps a linear trend
/// exactly, so the end of a falling curve (its final loss, the point that matters most
/// here) is not pulled up towards earlier, higher losses.
pub fn gaussian_smooth(y: &[f64], sigma: f64) -> Vec<f64> {
    if sigma <= 0.0 || y.len() < 3 {
        return y.to_vec();
    }
    let half = (4.0 * sigma).ceil() as isize;
    let w: Vec<f64> = (-half..=half)
        .map(|k| (-0.5 * (k as f64 / sigma).powi(2)).exp())
        .collect();
    let n = y.len() as isize;
    (0..n)
        .map(|i| {
            let (mut s0, mut s1, mut s2, mut t0, mut t1) = (0.0, 0.0, 0.0, 0.0, 0.0);
            for k in (-half).max(-i)..=half.min(n - 1 - i) {
                let wk = w[(k + half) as usize];
                let (u, v) = (k as f64, y[(i + k) as usize]);
                s0 += wk;
                s1 += wk * u;
                s2 += wk * u * u;
                t0 += wk * v;
                t1 += wk * u * v;
            }
            let det = s0 * s2 - s1 * s1;
            if det.abs() <= 1e-12 * s0 * s2 {
                t0 / s0
            } else {
                (s2 * t0 - s1 * t1) / det
            }
        })
        .collect()
}

fn prepare(name: &str, rows: &[Observation], smooth_steps: f64) -> Option<Curve> {
    if rows.len() < 2 {
        return None;
    }
    let steps: Vec<f64> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| r.step.unwrap_or(i as f64))
        .collect();
    let mut gaps: Vec<f64> = steps
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|g| *g > 0.0)
        .collect();
    gaps.sort_by(f64::total_cmp);
    let spacing = gaps.get(gaps.len() / 2).copied().unwrap_or(1.0);
    let loss: Vec<f64> = rows.iter().map(|r| r.loss).collect();
    let loss = gaussian_smooth(&loss, smooth_steps / spacing);
    Some(Curve {
        name: name.to_string(),
        params: rows[rows.len() - 1].params,
        ln_flops: rows.iter().map(|r| r.flops.ln()).collect(),
        loss,
        tokens: rows.iter().map(|r| r.tokens).collect(),
    })
}

/// Linear interpolation in ln C; `None` outside the curve's range.
fn interp(c: &Curve, x: f64) -> Option<(f64, f64)> {
    let xs = &c.ln_flops;
    if x < xs[0] || x > xs[xs.len() - 1] {
        return None;
    }
    let i = xs.partition_point(|v| *v <= x).clamp(1, xs.len() - 1);
    let (x0, x1) = (xs[i - 1], xs[i]);
    let t = if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.0 };
    Some((
        c.loss[i - 1] + t * (c.loss[i] - c.loss[i - 1]),
        c.tokens[i - 1] + t * (c.tokens[i] - c.tokens[i - 1]),
    ))
}

fn envelope_of(curves: &[&Curve], points: usize) -> Vec<EnvelopePoint> {
    let lo = curves
        .iter()
        .map(|c| c.ln_flops[0])
        .fold(f64::INFINITY, f64::min);
    let hi = curves
        .iter()
        .map(|c| c.ln_flops[c.ln_flops.len() - 1])
        .fold(f64::NEG_INFINITY, f64::max);
    let mut out = Vec::with_capacity(points);
    for k in 0..points {
        let x = if points == 1 {
            lo
        } else {
            lo + (hi - lo) * k as f64 / (points - 1) as f64
        };
        let best = curves
            .iter()
            .filter_map(|c| interp(c, x).map(|(l, d)| (c, l, d)))
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((c, l, d)) = best {
            out.push(EnvelopePoint {
                flops: x.exp(),
                run: c.name.clone(),
                params: c.params,
                tokens: d,
                loss: l,
            });
        }
    }
    out
}

/// The envelope points won by neither the smallest nor the largest model of the study.
///
/// At the ends of the FLOP range the envelope is censored: below the range of the second
/// smallest model, the smallest wins because nothing else was trained there, not because it is
/// optimal (and likewise the largest at the top). Fitting those points flattens the exponent,
/// as an IsoFLOP vertex at the edge of the sampled sizes would; they are left out of the
/// power-law fit (and kept in the envelope for figures).
fn interior(env: &[EnvelopePoint], smallest: f64, largest: f64) -> Vec<EnvelopePoint> {
    env.iter()
        .filter(|p| p.params > smallest && p.params < largest)
        .cloned()
        .collect()
}

fn frontier_of(env: &[EnvelopePoint]) -> Option<Frontier> {
    let c: Vec<f64> = env.iter().map(|p| p.flops).collect();
    let n: Vec<f64> = env.iter().map(|p| p.params).collect();
    let d: Vec<f64> = env.iter().map(|p| p.tokens).collect();
    let mut sizes = n.clone();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() < 2 {
        return None;
    }
    Frontier::fit(&c, &n, &d)
}

/// Fits the envelope of the curves in `curves` (run name -> rows in training order).
///
/// # Errors
/// [`FitError::Unsupported`] when fewer than two runs have curves (two rows or more), or when
/// the envelope is made by runs of a single size.
///
/// # Example
/// ```
/// use isoflop_fit::{fit_envelope, synthetic, EnvelopeOptions, ParametricLaw};
/// // Cosine-schedule curves of eight sizes and four horizons each.
/// let law = ParametricLaw::EPOCH_2024;
/// let curves = synthetic::cosine_curves(&law, 0.0, 0);
/// let boot = isoflop_fit::stats::Bootstrap { resamples: 0, ..Default::default() };
/// let opts = EnvelopeOptions { boot, ..Default::default() };
/// let fit = fit_envelope(&curves, &opts).unwrap();
/// assert_eq!(fit.runs, 32);
/// // The envelope's frontier grows with compute, near the law's exponent.
/// assert!((fit.frontier.params_exponent - law.params_exponent()).abs() < 0.15);
/// ```
pub fn fit_envelope(
    curves: &BTreeMap<String, Vec<Observation>>,
    opts: &EnvelopeOptions,
) -> Result<EnvelopeFit, FitError> {
    const NAME: &str = "Approach 1";
    let prepared: Vec<Curve> = curves
        .iter()
        .filter_map(|(k, v)| prepare(k, v, opts.smooth_steps))
        .collect();
    if prepared.len() < 2 {
        return Err(FitError::Unsupported {
            approach: NAME,
            reason: format!(
                "{} run(s) with a training curve; the envelope needs curves (a run column with several rows per run) from at least 2 runs",
                prepared.len()
            ),
        });
    }
    if opts.points < 2 {
        return Err(FitError::InvalidOption(format!(
            "envelope points must be at least 2, got {}",
            opts.points
        )));
    }
    let all: Vec<&Curve> = prepared.iter().collect();
    let envelope = envelope_of(&all, opts.points);
    let size_range = |cs: &[&Curve]| {
        let lo = cs.iter().map(|c| c.params).fold(f64::INFINITY, f64::min);
        let hi = cs.iter().map(|c| c.params).fold(0.0, f64::max);
        (lo, hi)
    };
    let (smallest, largest) = size_range(&all);
    let inner = interior(&envelope, smallest, largest);
    let Some(frontier) = frontier_of(&inner) else {
        return Err(FitError::Unsupported {
            approach: NAME,
            reason: "fewer than 2 model sizes other than the smallest and largest make the envelope; it gives no exponent (train a wider range of sizes)".into(),
        });
    };
    let mut runs_on: Vec<String> = envelope.iter().map(|p| p.run.clone()).collect();
    runs_on.dedup();
    let mut uniq = runs_on.clone();
    uniq.sort();
    uniq.dedup();
    let mut fit = EnvelopeFit {
        runs: prepared.len(),
        envelope,
        runs_on_envelope: uniq,
        frontier,
        intervals: None,
        samples: Vec::new(),
        warnings: Vec::new(),
        thirds: Vec::new(),
    };
    fit.thirds = thirds(&fit.envelope);
    if let (Some(a), Some(c)) = (fit.thirds.first(), fit.thirds.get(2)) {
        let (wa, wc) = (
            (a.interval.hi - a.interval.lo) / 2.0,
            (c.interval.hi - c.interval.lo) / 2.0,
        );
        if (c.exponent - a.exponent).abs() > (wa * wa + wc * wc).sqrt() {
            fit.warnings.push(format!(
                "Approach 1: the loss frontier bends: L ~ C^{:.4} on the first third of the envelope and C^{:.4} on the last, a difference beyond their intervals (±{:.4}, ±{:.4}); a law fitted on the small end mispredicts the large (Hoffmann et al. 2022, Appendix E)",
                a.exponent, c.exponent, wa, wc
            ));
        }
    }
    let censored = fit.envelope.len() - inner.len();
    if censored > 0 {
        fit.warnings.push(format!(
            "Approach 1: {censored} of {} envelope points are won by the smallest or largest model (censored by the sizes trained) and are left out of the power-law fit",
            fit.envelope.len()
        ));
    }
    if fit.runs_on_envelope.len() < 3 {
        fit.warnings.push(format!(
            "Approach 1: only {} runs make the envelope; its exponents rest on few models",
            fit.runs_on_envelope.len()
        ));
    }
    if opts.boot.resamples > 0 {
        // Resampling runs with replacement: a duplicated curve does not change a minimum,
        // so each resample is the envelope of a random subset of the runs.
        let pts = (opts.points / 4).max(100);
        let units = clusters(prepared.iter().map(|c| c.params), opts.boot.unit);
        let samples: Vec<Frontier> =
            bootstrap_clusters(&units, opts.boot.resamples, opts.boot.seed, |idx| {
                let mut pick: Vec<usize> = idx.to_vec();
                pick.sort_unstable();
                pick.dedup();
                let sub: Vec<&Curve> = pick.iter().map(|&i| &prepared[i]).collect();
                let (lo, hi) = size_range(&sub);
                frontier_of(&interior(&envelope_of(&sub, pts), lo, hi))
            })
            .into_iter()
            .flatten()
            .collect();
        fit.intervals = FrontierIntervals::from_samples(
            &samples,
            opts.boot.resamples,
            opts.boot.seed,
            opts.boot.level,
        );
        fit.samples = samples;
    }
    Ok(fit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parametric::ParametricLaw;
    use crate::synthetic::cosine_curves;

    #[test]
    fn smoothing_keeps_constants_and_means() {
        let y = vec![2.0; 30];
        assert!(gaussian_smooth(&y, 3.0)
            .iter()
            .all(|v| (v - 2.0).abs() < 1e-12));
        let z: Vec<f64> = (0..50)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let s = gaussian_smooth(&z, 5.0);
        assert!(s[20..30].iter().all(|v| v.abs() < 1e-3), "{s:?}");
        // A linear trend survives exactly, ends included.
        let line: Vec<f64> = (0..40).map(|i| 5.0 - 0.1 * i as f64).collect();
        let s = gaussian_smooth(&line, 10.0);
        assert!(
            s.iter().zip(&line).all(|(a, b)| (a - b).abs() < 1e-9),
            "{s:?}"
        );
    }

    #[test]
    fn envelope_matches_brute_force_minimum() {
        let law = ParametricLaw::CHINCHILLA;
        let curves = cosine_curves(&law, 0.0, 1);
        let fit = fit_envelope(
            &curves,
            &EnvelopeOptions {
                smooth_steps: 0.0,
                points: 50,
                boot: crate::stats::Bootstrap {
                    resamples: 0,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
        // Independent check at each envelope FLOP value: scan every raw row of every run
        // bracketing it and compare minima.
        for p in &fit.envelope {
            let mut best = f64::INFINITY;
            for rows in curves.values() {
                let x = p.flops.ln();
                for w in rows.windows(2) {
                    let (x0, x1) = (w[0].flops.ln(), w[1].flops.ln());
                    if x0 <= x && x <= x1 {
                        let t = (x - x0) / (x1 - x0);
                        best = best.min(w[0].loss + t * (w[1].loss - w[0].loss));
                    }
                }
            }
            assert!(
                (p.loss - best).abs() < 1e-12,
                "at {:e}: {} vs {best}",
                p.flops,
                p.loss
            );
        }
    }

    #[test]
    fn recovers_the_frontier_exponent_from_cosine_curves() {
        let law = crate::synthetic::TRUTH;
        let curves = cosine_curves(&law, 0.002, 7);
        let fit = fit_envelope(
            &curves,
            &EnvelopeOptions {
                boot: crate::stats::Bootstrap {
                    resamples: 200,
                    seed: 1,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
        let a = law.params_exponent();
        let iv = fit.intervals.expect("intervals");
        assert!(
            iv.params_exponent.lo <= a && a <= iv.params_exponent.hi,
            "{:?} vs {a}, point {}",
            iv.params_exponent,
            fit.frontier.params_exponent
        );
        assert!((fit.frontier.params_exponent - a).abs() < 0.1);
        assert!(fit.runs_on_envelope.len() >= 4);
    }

    #[test]
    fn single_curve_is_refused() {
        let law = ParametricLaw::CHINCHILLA;
        let mut curves = cosine_curves(&law, 0.0, 1);
        let keep = curves.keys().next().unwrap().clone();
        curves.retain(|k, _| *k == keep);
        let e = fit_envelope(&curves, &EnvelopeOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 2"), "{e}");
    }

    #[test]
    fn the_envelopes_thirds_show_the_frontier_bending_towards_e() {
        // L = E + A/N^alpha + B/D^beta: as the loss nears E the frontier flattens in log-log,
        // so the last third's exponent is smaller in magnitude than the first's (Hoffmann
        // et al. 2022, Appendix E). Each third's exponent is checked against a
        // least-squares fit of the same points done here.
        let law = crate::synthetic::TRUTH;
        let curves = cosine_curves(&law, 0.0, 1);
        let fit = fit_envelope(
            &curves,
            &EnvelopeOptions {
                boot: crate::stats::Bootstrap {
                    resamples: 0,
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(fit.thirds.len(), 3);
        let n = fit.envelope.len();
        for t in &fit.thirds {
            let pts = &fit.envelope[t.part * n / 3..(t.part + 1) * n / 3];
            let x: Vec<f64> = pts.iter().map(|p| p.flops.ln()).collect();
            let y: Vec<f64> = pts.iter().map(|p| p.loss.ln()).collect();
            let (slope, _) = crate::stats::fit_line(&x, &y).unwrap();
            assert!(
                (t.exponent - slope).abs() < 1e-12 && t.exponent < 0.0,
                "{t:?}"
            );
        }
        let (first, last) = (&fit.thirds[0], &fit.thirds[2]);
        assert!(
            last.exponent.abs() < first.exponent.abs(),
            "{first:?} {last:?}"
        );
        assert!(
            fit.warnings.iter().any(|w| w.contains("bends")),
            "{:?}",
            fit.warnings
        );
    }
}
