//! The local executor: a pool of worker threads on this machine, each starting one run at a
//! time as its own process, largest runs first.

use super::{Dispatched, Executor};
use crate::error::SweepError;
use crate::exec::{RunOutcome, Runner};
use crate::plan::PlannedRun;

/// A pool of `jobs` runs at once on this machine.
#[derive(Clone, Copy, Debug)]
pub struct Local {
    /// Runs at once.
    pub jobs: usize,
}

impl Executor for Local {
    fn dispatch(
        &self,
        runner: &Runner,
        on_event: &(dyn Fn(&str, &RunOutcome) + Sync),
    ) -> Result<Dispatched, SweepError> {
        Ok(Dispatched::Ran(run_local(runner, self.jobs, on_event)))
    }
}

/// Runs every run of the sweep on a pool of `jobs` workers, largest runs first; `on_event`
/// hears (run id, outcome) as each one ends.
pub fn run_local(
    runner: &Runner,
    jobs: usize,
    on_event: &(dyn Fn(&str, &RunOutcome) + Sync),
) -> Vec<(String, RunOutcome)> {
    let mut order: Vec<&PlannedRun> = runner.sweep.runs.iter().collect();
    order.sort_by(|a, b| {
        (b.params as f64 * b.tokens as f64).total_cmp(&(a.params as f64 * a.tokens as f64))
    });
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(run) = order.get(k) else { break };
                let o = runner.run_one(run);
                on_event(&run.id, &o);
                done.lock().expect("not poisoned").push((run.id.clone(), o));
            });
        }
    });
    done.into_inner().expect("not poisoned")
}
