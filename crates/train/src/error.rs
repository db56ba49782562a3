//! Errors of the training crate: bad data, impossible shapes, a folder holding another run.

use std::path::PathBuf;

/// Why training could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The corpus cannot be used.
    #[error("{path}: {problem}")]
    Data {
        /// The corpus.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The shape cannot be built.
    #[error(transparent)]
    Shape(#[from] isoflop_core::shape::ShapeError),
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Setting(String),
    /// The output folder holds a different run, or a finished one.
    #[error("{path}: {problem}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What is there.
        problem: String,
    },
    /// Another live process holds the run's lease: nothing was trained.
    #[error("{path}: is being trained by process {pid} on {host} (its lease is {path}/.lease)")]
    Held {
        /// The run folder.
        path: PathBuf,
        /// The holder's process.
        pid: u32,
        /// The holder's host.
        host: String,
    },
    /// A branch's trunk has not (yet) written the checkpoint the branch starts from: it is
    /// still training, or stopped by a fault of the machine; training the trunk on makes it.
    #[error("{path}: {problem}")]
    TrunkNotReady {
        /// The trunk's folder.
        path: PathBuf,
        /// Where the trunk stands.
        problem: String,
    },
    /// libtorch reported an error.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

impl TrainError {
    /// True for a failure of the machine rather than of the run (an I/O error, a libtorch
    /// error): training it again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TrainError::Io { .. } | TrainError::Torch(_) | TrainError::TrunkNotReady { .. }
        )
    }
}

/// A result with [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

/// The [`TrainError::Io`] of an operation on `path`.
pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A [`TrainError::Folder`]: `path` holds what the run cannot use.
pub(crate) fn folder_err(path: &std::path::Path, problem: impl Into<String>) -> TrainError {
    TrainError::Folder {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}
