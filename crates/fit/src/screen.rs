//! Big tables: Approach 3's starts screened on a subsample, the optima polished on all
//! points, and the m-out-of-n bootstrap's resample size (see docs/deviations.md).

/// Tables with more points than this are fitted by screening ([`Screen::Auto`]).
pub const SCREEN_ABOVE: usize = 20_000;
/// The subsample the starts are screened on, by default.
pub const SCREEN_POINTS: usize = 4_096;
/// Above [`SCREEN_ABOVE`] points, bootstrap resamples hold this many points (the m-out-of-n
/// bootstrap), their deviations from the full-data optimum scaled by sqrt(m/n).
pub const BOOT_POINTS: usize = 20_000;

/// How the grid of starts meets a big table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Screen {
    /// Screen on [`SCREEN_POINTS`] points when the table has more than [`SCREEN_ABOVE`].
    #[default]
    Auto,
    /// Every start on every point (the paper's procedure), whatever the size.
    Off,
    /// Screen on this many points (when the table has more).
    Points(usize),
}

impl Screen {
    /// The subsample size for a table of `n` points, `None` for the full procedure.
    pub fn subsample(self, n: usize) -> Option<usize> {
        match self {
            Screen::Auto => (n > SCREEN_ABOVE).then_some(SCREEN_POINTS),
            Screen::Off => None,
            Screen::Points(m) => (m >= 6 && m < n).then_some(m),
        }
    }
}

/// What a screened fit did: every start on a subsample, then the distinct optima it found
/// polished on all points.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Screening {
    /// Points in the subsample (drawn without replacement, seeded).
    pub subsample: usize,
    /// Points in the table.
    pub points: usize,
    /// Optima polished on all points.
    pub polished: usize,
}

/// `m` distinct indices of `0..n`, drawn by a seeded partial Fisher-Yates shuffle, sorted.
pub(crate) fn sample_without_replacement(n: usize, m: usize, seed: u64) -> Vec<usize> {
    let mut rng = isoflop_core::Rng::stream(seed, u64::MAX - 1);
    let mut all: Vec<usize> = (0..n).collect();
    for i in 0..m.min(n) {
        let j = i + rng.below(n - i);
        all.swap(i, j);
    }
    all.truncate(m.min(n));
    all.sort_unstable();
    all
}
