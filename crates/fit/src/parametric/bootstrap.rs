//! Approach 3's bootstrap: resamples of runs (or of sizes, or m-out-of-n points for big
//! tables) refitted from the optima near the best, and percentile intervals of each
//! parameter.

use super::*;

/// The bootstrap of a converged fit: each resample refitted from the optima near the best,
/// its laws and percentile intervals put into `fit`.
pub(super) fn bootstrap(
    fit: &mut ParametricFit,
    res: &GridResult,
    obj: &Objective,
    points: &[Observation],
    opts: &ParametricOptions,
    say: &dyn Fn(String),
) {
    let n = obj.len();
    let best = res.best;
    // Refit from the optimum and from the other local optima whose full-data objective
    // is within 1.5x the best: competing basins, not the degenerate valleys (such as
    // E -> 0) that sit at twice the objective and more.
    let boot_starts: Vec<[f64; 5]> = res
        .optima
        .iter()
        .filter(|(_, f)| *f <= 1.5 * best.f)
        .map(|(x, _)| *x)
        .collect();
    // A big table's resamples hold BOOT_POINTS points (m-out-of-n), each one's distance
    // from the full-data optimum scaled by sqrt(m/n): the spread of an n-point estimate.
    let m = match (opts.boot.unit, opts.boot_points) {
        (BootUnit::Size, _) => n,
        (_, Some(m)) => m.clamp(6, n),
        (_, None) if n > SCREEN_ABOVE => BOOT_POINTS.min(n),
        (_, None) => n,
    };
    let scale = (m as f64 / n as f64).sqrt();
    say(format!(
        "Approach 3: bootstrap, {} resamples of {m} points",
        opts.boot.resamples
    ));
    let refit = |idx: &[usize]| {
        let sub = obj.subset(idx);
        let r = run_starts(&sub, &boot_starts, &opts.lbfgs, opts.reach_rtol, false);
        let mut x = r.best.x;
        if m < n {
            for (xi, bi) in x.iter_mut().zip(&best.x) {
                *xi = bi + scale * (*xi - bi);
            }
        }
        let law = ParametricLaw::from_log(&x);
        (r.best.converged() && law.is_valid()).then_some(law)
    };
    let laws = match opts.boot.unit {
        BootUnit::Run => bootstrap_m(n, m, opts.boot.resamples, opts.boot.seed, refit),
        BootUnit::Size => bootstrap_clusters(
            &clusters(points.iter().map(|p| p.params), opts.boot.unit),
            opts.boot.resamples,
            opts.boot.seed,
            refit,
        ),
    };
    let usable: Vec<ParametricLaw> = laws.into_iter().flatten().collect();
    if usable.len() < opts.boot.resamples {
        fit.warnings.push(format!(
            "Approach 3 bootstrap: {} of {} resamples did not converge to a valid law and are left out of the intervals",
            opts.boot.resamples - usable.len(),
            opts.boot.resamples
        ));
    }
    fit.intervals = law_intervals(
        &usable,
        opts.boot.resamples,
        opts.boot.seed,
        opts.boot.level,
    )
    .map(|mut i| {
        i.resample_points = (m < n).then_some(m);
        i
    });
    fit.samples = usable;
}

/// Percentile intervals of each parameter over bootstrap laws.
pub fn law_intervals(
    laws: &[ParametricLaw],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Option<LawIntervals> {
    let iv = |f: &dyn Fn(&ParametricLaw) -> f64| percentile_interval(laws.iter().map(f), level);
    Some(LawIntervals {
        resamples,
        usable: laws.len(),
        seed,
        e: iv(&|l| l.e)?,
        a: iv(&|l| l.a)?,
        b: iv(&|l| l.b)?,
        alpha: iv(&|l| l.alpha)?,
        beta: iv(&|l| l.beta)?,
        params_exponent: iv(&|l| l.params_exponent())?,
        tokens_exponent: iv(&|l| l.tokens_exponent())?,
        g: iv(&|l| l.g())?,
        resample_points: None,
    })
}
