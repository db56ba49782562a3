//! A study's folder and the names of the files isoflop writes into it: the one place those
//! names are spelled. `isoflop run` writes all of them into `--out`; a sweep's chained Slurm
//! job writes them into the sweep's results folder, beside the run folders; `isoflop
//! collect` writes the table, `isoflop plot` the report and the figures' index.

use std::path::{Path, PathBuf};

/// The sweep file `isoflop run` plans (`isoflop plan`'s default `--out`).
pub const SWEEP_FILE: &str = "sweep.toml";
/// The table of every run's rows (`isoflop collect`).
pub const RUNS_TABLE: &str = "runs.csv";
/// The fitted laws with their bootstrap samples (`isoflop fit --out`).
pub const LAW_FILE: &str = "law.json";
/// The whole fit report (`isoflop fit --json`).
pub const FIT_FILE: &str = "fit.json";
/// The validation on the largest budget (`isoflop validate --json`).
pub const VALIDATION_FILE: &str = "validation.json";
/// The report a person opens in a browser.
pub const REPORT_FILE: &str = "report.html";
/// The figures' data and captions.
pub const FIGURES_INDEX: &str = "figures.json";

/// The folder, in a sweep's results, where its chained Slurm job writes the study
/// (`isoflop run --sweep FILE --out RESULTS/study --no-train`).
pub const CHAINED_STUDY_DIR: &str = "study";

/// A study's folder: where its sweep file, table, laws, fit, validation, figures and report
/// are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudyDir(PathBuf);

impl StudyDir {
    /// The study in `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StudyDir(root.into())
    }
    /// The folder.
    pub fn root(&self) -> &Path {
        &self.0
    }
    /// [`SWEEP_FILE`] in it.
    pub fn sweep(&self) -> PathBuf {
        self.0.join(SWEEP_FILE)
    }
    /// [`RUNS_TABLE`] in it.
    pub fn runs_table(&self) -> PathBuf {
        self.0.join(RUNS_TABLE)
    }
    /// [`LAW_FILE`] in it.
    pub fn law(&self) -> PathBuf {
        self.0.join(LAW_FILE)
    }
    /// [`FIT_FILE`] in it.
    pub fn fit(&self) -> PathBuf {
        self.0.join(FIT_FILE)
    }
    /// [`VALIDATION_FILE`] in it.
    pub fn validation(&self) -> PathBuf {
        self.0.join(VALIDATION_FILE)
    }
    /// [`REPORT_FILE`] in it.
    pub fn report(&self) -> PathBuf {
        self.0.join(REPORT_FILE)
    }
}
