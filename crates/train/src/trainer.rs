//! The training loop: the schedule, held-out evaluation (AdamW and checkpoints: state.rs),
//! the run's files (see [`isoflop_core::record`]), checkpoints and resume.
//!
//! A run folder moves through three states: `config.json` alone or with a checkpoint
//! (unfinished), and `summary.json` (finished, diverged or failed). A checkpoint
//! (`checkpoint.ot`: weights, AdamW moments, step and elapsed seconds, in one file written
//! whole and renamed into place) is saved every `checkpoint_every` steps and when the caller
//! raises the stop flag; `curve.csv` is rewritten with it. Batches depend only on (seed,
//! step), so a resumed run trains on exactly the batches of an uninterrupted one.

use crate::branch::{train_from_trunk, trunk_problem};
use crate::data::Corpus;
use crate::error::{io, Result, TrainError};
use crate::start::{prepare, remove_stale_temporaries, restart, resume_point, Start};
use crate::steps::{run_loop, From, Session};
use isoflop_core::lease::{Lease, LeaseError, LEASE_FILE};
use isoflop_core::record::{self, RunConfig};
pub use isoflop_core::record::{CHECKPOINT_FILE, PROGRESS_FILE};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use tch::Device;

pub use crate::config::Settings;
pub use crate::event::{Event, Outcome, Progress};
pub use crate::model::{device, init_model};
pub use crate::state::{ADAM_BETAS, ADAM_EPS};
pub use crate::steps::evaluate;
// The divergence rule lives with the one writer of run records, which every trainer uses.
pub use isoflop_core::writer::{loss_jump, JUMP_FACTOR, JUMP_NATS, JUMP_WINDOW};

/// Trains the run described by `config` on `corpus`, writing its files to `out`.
///
/// With `resume`, an unfinished run of the same config in `out` continues from its
/// checkpoint and an ended one is returned as it is; without it, a folder holding any run is
/// refused. `stop` is polled after every step: when raised, a checkpoint is written and
/// [`Outcome::Stopped`] returned.
///
/// # Errors
/// [`TrainError::Folder`] when `out` holds a different run, an ended run without `resume`,
/// or other files; [`TrainError::Io`] and [`TrainError::Torch`] on I/O and libtorch errors.
/// A diverging loss is not an error: the run ends with status `diverged`.
pub fn train(
    config: &RunConfig,
    corpus: &Corpus,
    out: &Path,
    resume: bool,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome> {
    if config.branch.is_some() {
        return Err(TrainError::Setting(format!(
            "run {} is a cooldown branch; it trains with its trunk's folder (train_branch, --branch-from)",
            config.run
        )));
    }
    train_run(config, corpus, out, None, resume, stop, on_event)
}

/// Trains the cooldown branch `config` (made by [`crate::branch::branch_config`]) of the trunk in
/// `trunk`, writing its files to `out`, as [`train`] does. A fresh branch starts from the
/// checkpoint the trunk kept at the branch point (weights, AdamW moments, step; batches
/// follow from the seed and the step, held-out batches are every run's) with the trunk's
/// curve rows up to there;
/// an unfinished one resumes from its own checkpoint, else from the trunk's again.
///
/// # Errors
/// As [`train`]; and [`TrainError::TrunkNotReady`] when the trunk has not reached the
/// branch point (or stopped short of it by a fault of the machine), [`TrainError::Folder`]
/// when the trunk ended without it (failed, diverged, or its checkpoint deleted).
pub fn train_branch(
    config: &RunConfig,
    corpus: &Corpus,
    out: &Path,
    trunk: &Path,
    resume: bool,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome> {
    let Some(at) = config.branch.as_ref().map(|b| b.step) else {
        return Err(TrainError::Setting(format!(
            "run {} is not a branch (see branch_config)",
            config.run
        )));
    };
    let started = out.join(record::SUMMARY_FILE).exists() || record::checkpoint_step(out).is_some();
    if !started && !record::branch_point_ready(trunk, at) {
        // Nothing is written for a branch that cannot start.
        return Err(trunk_problem(trunk, at));
    }
    train_run(config, corpus, out, Some(trunk), resume, stop, on_event)
}

#[allow(clippy::too_many_arguments)]
fn train_run(
    config: &RunConfig,
    corpus: &Corpus,
    out: &Path,
    trunk: Option<&Path>,
    resume: bool,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome> {
    if config.shape.vocab < corpus.vocab {
        return Err(TrainError::Setting(format!(
            "the model's vocabulary {} is smaller than the corpus's {}",
            config.shape.vocab, corpus.vocab
        )));
    }
    if config.batch == 0 || config.steps == 0 || config.log_every == 0 {
        return Err(TrainError::Setting(
            "batch, steps and log_every must be at least 1".into(),
        ));
    }
    std::fs::create_dir_all(out).map_err(io(out))?;
    let lease = Lease::acquire(out).map_err(|e| match e {
        LeaseError::Held(h) => TrainError::Held {
            path: out.to_path_buf(),
            pid: h.pid,
            host: h.host,
        },
        LeaseError::Io(source) => TrainError::Io {
            path: out.join(LEASE_FILE),
            source,
        },
    })?;
    remove_stale_temporaries(out);
    let start = prepare(out, config, resume, on_event)?;
    if let Start::Done(summary) = start {
        return Ok(Outcome::Ended(summary));
    }
    let dev = device(&config.device)?;
    if dev == Device::Cpu && config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    // A branch starts from its trunk here, at the same thread count as any run.
    if let (Start::Fresh, Some(trunk)) = (&start, trunk) {
        return train_from_trunk(config, corpus, out, trunk, stop, on_event, lease);
    }
    let mut session = Session::new(config, corpus, out, lease, dev);
    let from = match start {
        Start::Resume => match resume_point(out, &mut session.state, on_event)? {
            Some(from) => from,
            // A model half-filled by a failed load is rebuilt from its seed.
            None => {
                let lease = session.lease;
                return match trunk {
                    Some(trunk) => {
                        train_from_trunk(config, corpus, out, trunk, stop, on_event, lease)
                    }
                    // From step 0, replacing whatever the folder's curve held.
                    None => restart(config, corpus, out, stop, on_event, lease, &mut |_| {
                        Ok(From::beginning())
                    }),
                };
            }
        },
        _ => From::beginning(),
    };
    run_loop(session, from, stop, on_event)
}
