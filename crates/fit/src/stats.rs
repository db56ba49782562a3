//! Small statistics shared by the approaches: least-squares lines, percentile intervals,
//! and the parallel seeded bootstrap driver.
//!
//! The bootstrap resamples runs (final points, or whole curves for Approach 1) with
//! replacement, or model sizes with all their runs ([`BootUnit::Size`]), refits, and reports
//! the central percentile interval of the refits ([`percentile_interval`]: the 2.5th and
//! 97.5th percentiles at the default level, interpolated linearly between order statistics
//! as numpy's default does). Resample k draws from stream k of the seed, so the results do
//! not depend on the number of threads.

use isoflop_core::Rng;
use rayon::prelude::*;

/// y = slope x + intercept by ordinary least squares. Needs two distinct x.
pub fn fit_line(x: &[f64], y: &[f64]) -> Option<(f64, f64)> {
    let n = x.len();
    if n < 2 || n != y.len() {
        return None;
    }
    let mx = x.iter().sum::<f64>() / n as f64;
    let my = y.iter().sum::<f64>() / n as f64;
    let sxx: f64 = x.iter().map(|v| (v - mx).powi(2)).sum();
    if sxx <= 1e-300 {
        return None;
    }
    let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let slope = sxy / sxx;
    Some((slope, my - slope * mx))
}

/// A two-sided percentile interval from bootstrap samples.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
    /// Coverage, e.g. 0.95.
    pub level: f64,
}

/// The `q`-quantile (0..=1) of `sorted` by linear interpolation between order statistics
/// (numpy's default, "linear", method).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let h = q * (n - 1) as f64;
    let i = h.floor() as usize;
    let frac = h - i as f64;
    if i + 1 >= n {
        sorted[n - 1]
    } else {
        sorted[i] + frac * (sorted[i + 1] - sorted[i])
    }
}

/// The central `level` percentile interval of the finite samples; `None` if there are
/// fewer than two.
pub fn percentile_interval(samples: impl IntoIterator<Item = f64>, level: f64) -> Option<Interval> {
    let mut v: Vec<f64> = samples.into_iter().filter(|x| x.is_finite()).collect();
    if v.len() < 2 {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    Some(Interval {
        lo: quantile_sorted(&v, tail),
        hi: quantile_sorted(&v, 1.0 - tail),
        level,
    })
}

/// Raised to stop a long bootstrap early (the Python package raises it on Ctrl-C): the
/// resamples not yet started are skipped. Whoever raises it discards the result.
pub static CANCEL: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn cancelled() -> bool {
    CANCEL.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs `refit` on `resamples` bootstrap resamples of `n` items (indices drawn with
/// replacement), in parallel. Resample `k` draws from its own stream of `seed`, so the
/// result does not depend on the number of threads. `refit` returns `None` when a resample
/// cannot be fitted; those are counted by the caller.
pub fn bootstrap<T, F>(n: usize, resamples: usize, seed: u64, refit: F) -> Vec<Option<T>>
where
    T: Send,
    F: Fn(&[usize]) -> Option<T> + Sync,
{
    bootstrap_m(n, n, resamples, seed, refit)
}

/// [`bootstrap`] with resamples of `m` indices (drawn with replacement from `0..n`): the
/// m-out-of-n bootstrap (Bickel, Götze and van Zwet 1997) when `m < n`; `m = n` is the
/// ordinary bootstrap, with the same streams.
pub fn bootstrap_m<T, F>(
    n: usize,
    m: usize,
    resamples: usize,
    seed: u64,
    refit: F,
) -> Vec<Option<T>>
where
    T: Send,
    F: Fn(&[usize]) -> Option<T> + Sync,
{
    (0..resamples)
        .into_par_iter()
        .map(|k| {
            if cancelled() {
                return None;
            }
            let mut rng = Rng::stream(seed, k as u64);
            let idx: Vec<usize> = (0..m).map(|_| rng.below(n)).collect();
            refit(&idx)
        })
        .collect()
}

/// Bootstrap resamples every fit takes by default (Epoch's refit and the paper's count).
pub const DEFAULT_RESAMPLES: usize = 1000;

/// The bootstrap of a fit: how many resamples, from which seed, what each draws, and the
/// intervals' coverage. One type, one default, for every approach and law form.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bootstrap {
    /// Resamples (0 for none).
    pub resamples: usize,
    /// Seed.
    pub seed: u64,
    /// Interval coverage.
    pub level: f64,
    /// What a resample draws: runs (the default) or sizes with all their runs.
    #[serde(default)]
    pub unit: BootUnit,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: DEFAULT_RESAMPLES,
            seed: 0,
            level: 0.95,
            unit: BootUnit::Run,
        }
    }
}

/// What a bootstrap resample draws with replacement.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BootUnit {
    /// Runs (points, or curves for Approach 1), each on its own: the paper's and Epoch's
    /// bootstrap, and the default.
    #[default]
    Run,
    /// Model sizes, each with all its runs. Where a size's runs share more than their size
    /// (cooldown branches of one trunk; one shape's quirks, which every run of it carries),
    /// they are not independent draws; resampling sizes also counts the uncertainty of
    /// which shapes were trained.
    Size,
}

impl std::str::FromStr for BootUnit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "run" => Ok(BootUnit::Run),
            "size" => Ok(BootUnit::Size),
            other => Err(format!("bootstrap unit '{other}': give run or size")),
        }
    }
}

/// The cluster of each item for `unit`: with [`BootUnit::Run`] each item its own (0..n),
/// with [`BootUnit::Size`] one per distinct parameter count, numbered in order of first
/// appearance.
pub fn clusters(params: impl Iterator<Item = f64>, unit: BootUnit) -> Vec<usize> {
    let mut seen: Vec<f64> = Vec::new();
    params
        .enumerate()
        .map(|(i, n)| match unit {
            BootUnit::Run => i,
            BootUnit::Size => match seen.iter().position(|&m| m == n) {
                Some(c) => c,
                None => {
                    seen.push(n);
                    seen.len() - 1
                }
            },
        })
        .collect()
}

/// [`bootstrap`] over clusters (`clusters[i]`: item i's cluster, numbered 0..K): each
/// resample draws K clusters with replacement and holds every item of each drawn cluster,
/// in draw order. With every item its own cluster (`0..n`) it is [`bootstrap`], stream for
/// stream.
pub fn bootstrap_clusters<T, F>(
    clusters: &[usize],
    resamples: usize,
    seed: u64,
    refit: F,
) -> Vec<Option<T>>
where
    T: Send,
    F: Fn(&[usize]) -> Option<T> + Sync,
{
    let k = clusters.iter().map(|&c| c + 1).max().unwrap_or(0);
    let mut members = vec![Vec::new(); k];
    for (i, &c) in clusters.iter().enumerate() {
        members[c].push(i);
    }
    bootstrap(k, resamples, seed, |draw| {
        let idx: Vec<usize> = draw
            .iter()
            .flat_map(|&c| members[c].iter().copied())
            .collect();
        refit(&idx)
    })
}

/// How many distinct values `v` takes (relative tolerance 1e-9).
pub(crate) fn distinct(v: impl Iterator<Item = f64>) -> usize {
    let mut v: Vec<f64> = v.collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| (*a - *b).abs() <= 1e-9 * b.abs().max(a.abs()));
    v.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_resamples_hold_whole_clusters_and_singletons_are_the_plain_bootstrap() {
        let plain = bootstrap(7, 50, 3, |idx| Some(idx.to_vec()));
        let single = bootstrap_clusters(
            &clusters((0..7).map(f64::from), BootUnit::Run),
            50,
            3,
            |idx| Some(idx.to_vec()),
        );
        assert_eq!(plain, single);
        // Three sizes of 2, 3 and 1 runs, interleaved.
        let params = [10.0, 20.0, 10.0, 20.0, 30.0, 20.0];
        let c = clusters(params.iter().copied(), BootUnit::Size);
        assert_eq!(c, vec![0, 1, 0, 1, 2, 1]);
        for idx in bootstrap_clusters(&c, 200, 9, |idx| Some(idx.to_vec()))
            .into_iter()
            .flatten()
        {
            // Every drawn size comes with all its runs: each size's count is a multiple of
            // its run count, and three sizes are drawn.
            let count = |n: f64| idx.iter().filter(|&&i| params[i] == n).count();
            let draws = count(10.0) / 2 + count(20.0) / 3 + count(30.0);
            assert!(count(10.0) % 2 == 0 && count(20.0) % 3 == 0, "{idx:?}");
            assert_eq!(draws, 3, "{idx:?}");
        }
        assert_eq!("size".parse::<BootUnit>(), Ok(BootUnit::Size));
        assert!("trunk"
            .parse::<BootUnit>()
            .unwrap_err()
            .contains("run or size"));
    }

    #[test]
    fn line_through_exact_points() {
        let (s, c) = fit_line(&[1.0, 2.0, 3.0], &[5.0, 7.0, 9.0]).unwrap();
        assert!((s - 2.0).abs() < 1e-12 && (c - 3.0).abs() < 1e-12);
        assert!(fit_line(&[1.0, 1.0], &[1.0, 2.0]).is_none());
    }

    #[test]
    fn quantiles_match_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [2.5, 97.5]) = [1.075, 3.925]
        let iv = percentile_interval([4.0, 1.0, 3.0, 2.0], 0.95).unwrap();
        assert!((iv.lo - 1.075).abs() < 1e-12 && (iv.hi - 3.925).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_seeded_and_thread_independent() {
        let f = |idx: &[usize]| Some(idx.iter().sum::<usize>());
        let a = bootstrap(50, 20, 9, f);
        let b = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| bootstrap(50, 20, 9, f));
        assert_eq!(a, b);
        assert_ne!(a, bootstrap(50, 20, 10, f));
    }
}
