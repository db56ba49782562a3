//! The local executor: a pool of worker threads on this machine, each starting one run at a
//! time as its own process: trunks first, then the other runs largest first; a cooldown
//! branch as soon as its trunk has written the checkpoint it starts from (so branches train
//! beside their trunk), or once its trunk's trainer has returned without it (the branch's
//! trainer then says why: the trunk failed, or stopped short and resumes next time). A run
//! that another process holds is taken up again when its lease is free: the pool returns
//! when every run has ended here or elsewhere, or its trainer has returned.

use super::{Dispatched, Event, Executor};
use crate::error::SweepError;
use crate::exec::{self, RunOutcome, RunState, Runner};
use crate::plan::PlannedRun;
use isoflop_core::record;
use std::collections::HashSet;
use std::sync::Mutex;

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
        on_event: &(dyn Fn(&str, Event) + Sync),
    ) -> Result<Dispatched, SweepError> {
        Ok(Dispatched::Ran(run_local(runner, self.jobs, on_event)))
    }
}

/// How often a worker with nothing it may start looks again.
const WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Runs every run of the sweep on a pool of `jobs` workers (see the module's order);
/// `on_event` hears (run id, event) as each one starts and ends.
pub fn run_local(
    runner: &Runner,
    jobs: usize,
    on_event: &(dyn Fn(&str, Event) + Sync),
) -> Vec<(String, RunOutcome)> {
    let mut order: Vec<&PlannedRun> = runner.sweep.runs.iter().collect();
    order.sort_by(|a, b| {
        (b.is_trunk(), b.spent_flops())
            .partial_cmp(&(a.is_trunk(), a.spent_flops()))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let queue = Mutex::new(order);
    let returned: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    // Runs another process was training when we looked: taken up again once its lease is
    // free, so the sweep ends only when every run has (a killed sweep's trainer may still
    // be dying when the next one starts; a second sweep waits for the first's runs).
    let held: Mutex<HashSet<String>> = Mutex::new(HashSet::new());
    let done = Mutex::new(Vec::new());
    let may_start = |run: &PlannedRun| -> bool {
        if held.lock().expect("not poisoned").contains(&run.id) {
            return exec::run_dir(&runner.results, &run.id)
                .map_or(true, |d| isoflop_core::lease::holder(&d).is_none());
        }
        let (Some(trunk), Some(at)) = (&run.trunk, run.at_tokens) else {
            return true;
        };
        let Ok(dir) = exec::run_dir(&runner.results, trunk) else {
            return true;
        };
        // Cheap checks only (this runs on every poll): the trunk's checkpoint, the branch's
        // own summary (an ended branch needs no trunk; run_one says what it is), the trunk's
        // trainer returned and no one holding it.
        record::branch_point_ready(&dir, runner.sweep.defaults.steps(at))
            || exec::run_dir(&runner.results, &run.id)
                .is_ok_and(|d| d.join(record::SUMMARY_FILE).exists())
            || (returned.lock().expect("not poisoned").contains(trunk)
                && isoflop_core::lease::holder(&dir).is_none())
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let next = {
                    let mut q = queue.lock().expect("not poisoned");
                    if q.is_empty() {
                        break;
                    }
                    q.iter().position(|r| may_start(r)).map(|i| q.remove(i))
                };
                let Some(run) = next else {
                    std::thread::sleep(WAIT);
                    continue;
                };
                let trains = match exec::state(&runner.results, run) {
                    RunState::Finished { .. } | RunState::Running { .. } => false,
                    RunState::Failed { .. } => runner.retry_failed,
                    _ => true,
                };
                if trains {
                    on_event(&run.id, Event::Started);
                }
                let o = runner.run_one(run);
                if o == RunOutcome::HeldElsewhere {
                    // Said once; then back in the queue until its holder lets go.
                    if held.lock().expect("not poisoned").insert(run.id.clone()) {
                        on_event(&run.id, Event::Waiting);
                    }
                    queue.lock().expect("not poisoned").push(run);
                    continue;
                }
                if run.is_trunk() {
                    returned
                        .lock()
                        .expect("not poisoned")
                        .insert(run.id.clone());
                }
                // A run we waited for that then ended elsewhere was trained by its holder.
                let o = if o == RunOutcome::AlreadyEnded
                    && held.lock().expect("not poisoned").contains(&run.id)
                {
                    RunOutcome::HeldElsewhere
                } else {
                    o
                };
                on_event(&run.id, Event::Ended(&o));
                done.lock().expect("not poisoned").push((run.id.clone(), o));
            });
        }
    });
    done.into_inner().expect("not poisoned")
}
