//! What a run tells its caller while it trains, and how it ended. The library never prints:
//! the binary (`isoflop train`) draws the progress and prints the notes.

use isoflop_core::record::RunSummary;

/// What one step of progress looks like to a caller (for a progress bar).
#[derive(Clone, Debug)]
pub struct Progress {
    /// Steps completed.
    pub step: u64,
    /// Steps in all.
    pub steps: u64,
    /// This step's training loss.
    pub loss: f64,
    /// Tokens per second over this session.
    pub tokens_per_sec: f64,
    /// Seconds since the run began (resumed segments included).
    pub secs: f64,
}

/// What happens while a run trains.
#[derive(Clone, Debug)]
pub enum Event {
    /// A step was completed.
    Progress(Progress),
    /// A line about the run's folder a person should read (a checkpoint that does not
    /// verify, a resume from an older one), naming the folder or file.
    Note(String),
}

/// How a call to [`crate::trainer::train`] ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The run reached its horizon, or diverged: its summary is written.
    Ended(RunSummary),
    /// The stop flag was raised: a checkpoint at this step was written.
    Stopped {
        /// Steps completed.
        step: u64,
    },
}
