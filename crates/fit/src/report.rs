//! One call that fits every approach a run table supports: what `isoflop fit` prints and
//! what the figures and the report draw.

use crate::allocate::{LawSet, Sampled};
use crate::envelope::{fit_envelope, EnvelopeFit, EnvelopeOptions};
use crate::error::FitError;
use crate::isoflop::{fit_isoflop, IsoFlopFit, IsoFlopOptions};
use crate::parametric::{fit_parametric, ParametricFit, ParametricOptions};
use isoflop_core::table::drop_highest_loss;
use isoflop_core::RunTable;

/// Settings for [`fit_table`].
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FitSettings {
    /// Which approaches (1, 2, 3) to fit.
    pub approaches: Vec<u8>,
    /// True when the user named the approaches: one that cannot be fitted is then an error.
    pub explicit: bool,
    /// Drop the k highest-loss final points before Approaches 2 and 3 (Epoch drops 5).
    pub drop_top: usize,
    /// Approach 1 settings.
    pub envelope: EnvelopeOptions,
    /// Approach 2 settings.
    pub isoflop: IsoFlopOptions,
    /// Approach 3 settings.
    pub parametric: ParametricOptions,
}

impl Default for FitSettings {
    fn default() -> Self {
        FitSettings {
            approaches: vec![1, 2, 3],
            explicit: false,
            drop_top: 0,
            envelope: EnvelopeOptions::default(),
            isoflop: IsoFlopOptions::default(),
            parametric: ParametricOptions::default(),
        }
    }
}

impl FitSettings {
    /// Sets resamples and seed for all three approaches.
    pub fn with_bootstrap(mut self, resamples: usize, seed: u64) -> Self {
        self.envelope.resamples = resamples;
        self.envelope.seed = seed;
        self.isoflop.resamples = resamples;
        self.isoflop.seed = seed;
        self.parametric.resamples = resamples;
        self.parametric.seed = seed;
        self
    }
}

/// A fitted approach, or why it was not fitted.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome<T> {
    /// The fit.
    Fitted(T),
    /// Not fitted, and why.
    Skipped(String),
    /// Not asked for.
    NotRequested,
}

impl<T> Outcome<T> {
    /// The fit, if there is one.
    pub fn fitted(&self) -> Option<&T> {
        match self {
            Outcome::Fitted(t) => Some(t),
            _ => None,
        }
    }
}

/// Everything a fit of one table produced.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FitReport {
    /// The table's file.
    pub source: String,
    /// Rows read.
    pub rows: usize,
    /// Runs (final points) found.
    pub runs: usize,
    /// Final points dropped by `drop_top`.
    pub dropped: usize,
    /// What reading the table derived or noticed.
    pub notes: Vec<String>,
    /// Approach 1.
    pub approach1: Outcome<EnvelopeFit>,
    /// Approach 2.
    pub approach2: Outcome<IsoFlopFit>,
    /// Approach 3.
    pub approach3: Outcome<ParametricFit>,
    /// The settings used.
    pub settings: FitSettings,
}

impl FitReport {
    /// Every warning of every approach, in order.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if let Some(f) = self.approach1.fitted() {
            w.extend(f.warnings.iter().cloned());
        }
        if let Some(f) = self.approach2.fitted() {
            w.extend(f.warnings.iter().cloned());
        }
        if let Some(f) = self.approach3.fitted() {
            w.extend(f.warnings.iter().cloned());
        }
        w
    }

    /// The laws, with their bootstrap samples, for allocation.
    pub fn laws(&self) -> LawSet {
        LawSet {
            source: self.source.clone(),
            approach1: self.approach1.fitted().map(|f| Sampled {
                estimate: f.frontier,
                samples: f.samples.clone(),
            }),
            approach2: self.approach2.fitted().map(|f| Sampled {
                estimate: f.frontier,
                samples: f.samples.clone(),
            }),
            approach3: self
                .approach3
                .fitted()
                .filter(|f| f.diagnostics.converged)
                .map(|f| Sampled {
                    estimate: f.law,
                    samples: f.samples.clone(),
                }),
        }
    }
}

/// Fits every requested approach that the table supports.
///
/// # Errors
/// When no approach could be fitted, or when `settings.explicit` is set and a requested
/// approach could not be: the error names the approach and why.
pub fn fit_table(table: &RunTable, settings: &FitSettings) -> Result<FitReport, FitError> {
    let finals = table.final_rows();
    let (points, dropped) = drop_highest_loss(&finals, settings.drop_top);
    let want = |k: u8| settings.approaches.contains(&k);
    let mut errors: Vec<FitError> = Vec::new();
    let a1 = settle(
        want(1).then(|| fit_envelope(&table.curves(), &settings.envelope)),
        settings.explicit,
        &mut errors,
    );
    let a2 = settle(
        want(2).then(|| fit_isoflop(&points, &settings.isoflop)),
        settings.explicit,
        &mut errors,
    );
    let a3 = settle(
        want(3).then(|| fit_parametric(&points, &settings.parametric)),
        settings.explicit,
        &mut errors,
    );
    if let Some(e) = errors.into_iter().next() {
        return Err(e);
    }
    let report = FitReport {
        source: table.source.display().to_string(),
        rows: table.rows.len(),
        runs: finals.len(),
        dropped,
        notes: table.notes.clone(),
        approach1: a1,
        approach2: a2,
        approach3: a3,
        settings: settings.clone(),
    };
    if report.approach1.fitted().is_none()
        && report.approach2.fitted().is_none()
        && report.approach3.fitted().is_none()
    {
        let why: Vec<String> = [
            report.approach1.skip_reason(),
            report.approach2.skip_reason(),
            report.approach3.skip_reason(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        return Err(FitError::Unsupported {
            approach: "every approach",
            reason: format!("nothing could be fitted: {}", why.join("; ")),
        });
    }
    Ok(report)
}

fn settle<T>(
    r: Option<Result<T, FitError>>,
    explicit: bool,
    errors: &mut Vec<FitError>,
) -> Outcome<T> {
    match r {
        None => Outcome::NotRequested,
        Some(Ok(f)) => Outcome::Fitted(f),
        Some(Err(e)) => {
            let msg = e.to_string();
            if explicit {
                errors.push(e);
            }
            Outcome::Skipped(msg)
        }
    }
}

impl<T> Outcome<T> {
    fn skip_reason(&self) -> Option<&String> {
        match self {
            Outcome::Skipped(s) => Some(s),
            _ => None,
        }
    }
}
