//! Errors of the sweep crate.

use std::path::PathBuf;

/// Why a sweep could not be run or read.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// A file or folder could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A run id that is not a plain folder name.
    #[error("run id {id:?} {problem}")]
    BadId {
        /// The id.
        id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A run folder that is a symbolic link leading outside the results folder.
    #[error("run {id}: {problem}")]
    Outside {
        /// The run.
        id: String,
        /// What is wrong, naming the link's target.
        problem: String,
    },
    /// An array task's index beyond the sweep's runs.
    #[error("{path}: no run at index {index} (it has {runs})")]
    NoSuchIndex {
        /// The sweep file.
        path: PathBuf,
        /// The index asked for.
        index: usize,
        /// Runs in the file.
        runs: usize,
    },
    /// Slurm refused or could not be reached.
    #[error("{0}")]
    Slurm(String),
}
