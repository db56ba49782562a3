//! Errors of a study: each names the file or folder it concerns and keeps its cause.

use std::path::PathBuf;

/// Why a study (or one of its stages) could not go on.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The fit options cannot be used.
    #[error(transparent)]
    Options(isoflop_fit::FitError),
    /// The runs could not be read.
    #[error("reading runs from {}", path.display())]
    Read {
        /// The table or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: isoflop_core::CoreError,
    },
    /// The fit refused the table.
    #[error("fitting {}", path.display())]
    Fit {
        /// The table or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: isoflop_fit::FitError,
    },
    /// Nothing usable came out of the fit.
    #[error("Approach 3 did not converge and no other approach could be fitted")]
    Unusable,
    /// The figures or the report could not be written.
    #[error("writing figures to {}", path.display())]
    Draw {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: isoflop_plot::report::PlotError,
    },
    /// A file of the study could not be written.
    #[error("writing {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The study's folder holds files isoflop did not write, under names it writes.
    #[error("{0}")]
    Foreign(String),
    /// No run of the sweep has ended.
    #[error("no run of {} has finished; nothing to collect", sweep.display())]
    NothingToCollect {
        /// The sweep file.
        sweep: PathBuf,
    },
    /// The sweep file cannot be read.
    #[error(transparent)]
    Plan(#[from] isoflop_sweep::plan::PlanError),
    /// Reading a table's columns or the sweep's runs failed.
    #[error(transparent)]
    Core(#[from] isoflop_core::CoreError),
    /// Training the runs (the caller's dispatch) failed.
    #[error(transparent)]
    Dispatch(Box<dyn std::error::Error + Send + Sync>),
}
