//! Where a sweep's runs run: an executor. The contract every executor keeps, and the only
//! one it may rely on:
//! - a run is trained by `isoflop sweep-task SWEEP_FILE --index I` (or, in this process,
//!   [`Runner::run_one`], which is what that command calls), on storage that every worker
//!   shares with the sweep file's results folder;
//! - a run's state lives only in its folder (see `isoflop_core::record`), and a run held by a
//!   live process (its `.lease`) is never trained twice, so an executor may start any run
//!   any number of times, in any order, on any machine;
//! - a task whose run has ended exits at once; an unfinished one resumes.
//!
//! Adding an executor (say Kubernetes Indexed Jobs, whose `JOB_COMPLETION_INDEX` plays the
//! part of `SLURM_ARRAY_TASK_ID`) is one new file here with a type that implements
//! [`Executor`], and one variant of the CLI's `--executor`.

pub mod local;
pub mod slurm;

use crate::error::SweepError;
use crate::exec::{RunOutcome, Runner};

pub use local::Local;
pub use slurm::Slurm;

/// What dispatching a sweep did.
#[derive(Clone, Debug, PartialEq)]
pub enum Dispatched {
    /// The runs ran here, to their ends: each one's outcome.
    Ran(Vec<(String, RunOutcome)>),
    /// The runs were handed to a scheduler; they run later, elsewhere.
    Submitted {
        /// What was submitted, for the user.
        summary: String,
    },
}

/// What an executor that runs the runs here reports as it goes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event<'a> {
    /// A run that had not ended is being started (a trainer will train or resume it,
    /// unless another process holds it).
    Started,
    /// Another process is training a run: the pool waits for it, then takes it up again.
    Waiting,
    /// A run's trainer returned (or, [`crate::exec::RunOutcome::HeldElsewhere`], a run
    /// waited for ended in its holder).
    Ended(&'a RunOutcome),
}

/// Runs (or submits) every run of a sweep.
pub trait Executor {
    /// Dispatches the runs of `runner.sweep`. An executor that runs them here calls
    /// `on_event` as each one starts and ends.
    ///
    /// # Errors
    /// [`SweepError`] where nothing could be dispatched (a folder that cannot be written,
    /// a scheduler that refused the job).
    fn dispatch(
        &self,
        runner: &Runner,
        on_event: &(dyn Fn(&str, Event) + Sync),
    ) -> Result<Dispatched, SweepError>;
}
