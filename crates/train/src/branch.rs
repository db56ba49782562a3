//! Cooldown branches (Hägele et al. 2024): a run that is its constant-rate trunk up to a
//! kept checkpoint, then cools down to its own horizon. [`branch_config`] checks a branch
//! against its trunk's folder; [`crate::trainer::train_branch`] trains it from the trunk's checkpoint (with
//! the trunk's curve rows), or resumes it from its own.

use crate::data::Corpus;
use crate::error::folder_err;
use crate::error::{Result, TrainError};
use crate::event::{Event, Outcome};
use crate::start::restart;
use crate::steps::From;
use isoflop_core::record::{self, RunConfig, RunStatus, RunSummary};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// The config of a cooldown branch of the trunk in `trunk_dir` at `at_tokens` (rounded up
/// to the trunk's whole steps), to the horizon of `own` (the branch's config as its own
/// options give it). The branch is the trunk up to there: it takes the trunk's warm-up and
/// must match it in everything else that shapes training (model, batch, rate, decay,
/// clipping, seed, data, FLOP count); it then cools down with its own shape and floor
/// (schedule `wsd`, its cooldown from the branch point).
///
/// # Errors
/// [`TrainError::Folder`] naming the trunk when it holds no run, a run that is not a
/// constant-rate trunk, a different model or settings (each field named with both values),
/// or keeps no checkpoint at that step; [`TrainError::Setting`] for a branch point inside
/// the warm-up, beyond the trunk's horizon, or not before the branch's own horizon.
pub fn branch_config(trunk_dir: &Path, own: &RunConfig, at_tokens: u64) -> Result<RunConfig> {
    if let Some(e) = trunk_failed(trunk_dir) {
        return Err(e);
    }
    let trunk: RunConfig = record::read_json(&trunk_dir.join(record::CONFIG_FILE))
        .map_err(|e| folder_err(trunk_dir, format!("holds no trunk to branch from ({e})")))?;
    let per_step = (trunk.batch * trunk.shape.context) as u64;
    let step = at_tokens.div_ceil(per_step.max(1));
    let at = |what: &str| {
        TrainError::Setting(format!(
            "run {}: --at-tokens {at_tokens} (step {step} of trunk {}) {what}",
            own.run, trunk.run
        ))
    };
    if step > trunk.steps {
        return Err(at(&format!(
            "lies beyond the trunk's horizon of {} tokens ({} steps)",
            trunk.tokens, trunk.steps
        )));
    }
    if step >= own.steps {
        return Err(at(&format!(
            "is not before the branch's own horizon of {} tokens ({} steps): nothing to cool down",
            own.tokens, own.steps
        )));
    }
    if step < trunk.warmup_steps {
        return Err(at(&format!(
            "lies inside the trunk's warm-up of {} steps",
            trunk.warmup_steps
        )));
    }
    if trunk.schedule != isoflop_core::Schedule::Constant {
        return Err(folder_err(
            trunk_dir,
            format!(
                "holds run {} with schedule {}; a trunk trains at a constant rate (--schedule constant)",
                trunk.run,
                trunk.schedule.name()
            ),
        ));
    }
    let fields = |c: &RunConfig| {
        serde_json::json!({
            "model (layers, d_model, heads, vocab, context, rotary)": c.shape,
            "batch": c.batch, "lr": c.lr, "weight_decay": c.weight_decay,
            "grad_clip": c.grad_clip, "seed": c.seed, "data": c.data,
            "flop_count": c.flop_count, "eval_batches": c.eval_batches,
        })
    };
    let (t, o) = (fields(&trunk), fields(own));
    let differs: Vec<String> = t
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| o.get(k.as_str()) != Some(v))
        .map(|(k, v)| format!("{k}: trunk {v}, branch {}", o[k.as_str()]))
        .collect();
    if !differs.is_empty() {
        return Err(folder_err(
            trunk_dir,
            format!(
                "holds trunk {} of a different model or settings than branch {} ({})",
                trunk.run,
                own.run,
                differs.join("; ")
            ),
        ));
    }
    if !trunk.keep_steps.contains(&step) {
        return Err(folder_err(
            trunk_dir,
            format!(
                "trunk {} keeps no checkpoint at step {step} (it keeps {:?}); train it with --keep-at-tokens {}",
                trunk.run,
                trunk.keep_steps,
                step * per_step
            ),
        ));
    }
    Ok(RunConfig {
        warmup_steps: trunk.warmup_steps,
        schedule: isoflop_core::Schedule::Wsd,
        cooldown_frac: (own.steps - step) as f64 / own.steps as f64,
        branch: Some(record::BranchPoint {
            trunk: trunk.run.clone(),
            step,
        }),
        keep_steps: Vec::new(),
        ..own.clone()
    })
}

/// Why the trunk in `dir` cannot give its checkpoint at `step`: still short of it (a
/// transient error: the trunk trains on), or ended without it.
pub fn trunk_problem(dir: &Path, step: u64) -> TrainError {
    if let Some(e) = trunk_failed(dir) {
        return e;
    }
    let summary: Option<RunSummary> = record::read_json(&dir.join(record::SUMMARY_FILE)).ok();
    match summary {
        Some(s) if s.status == RunStatus::Finished => folder_err(
            dir,
            format!(
                "trunk {} finished without its checkpoint at step {step} (deleted?); train the trunk again with --keep-at-tokens",
                s.run
            ),
        ),
        _ => TrainError::TrunkNotReady {
            path: dir.to_path_buf(),
            problem: format!(
                "the trunk has not yet written its checkpoint at step {step} (now at {}); train the trunk on first",
                record::checkpoint_step(dir).map_or("step 0".to_string(), |s| format!("step {s}"))
            ),
        },
    }
}

/// The error of a branch whose trunk in `dir` ended failed or diverged on its own terms
/// (not by a fault of the machine, which a sweep retries), with the trunk's reason.
fn trunk_failed(dir: &Path) -> Option<TrainError> {
    let s: RunSummary = record::read_json(&dir.join(record::SUMMARY_FILE)).ok()?;
    if s.status == RunStatus::Finished || (s.status == RunStatus::Failed && s.transient) {
        return None;
    }
    Some(folder_err(
        dir,
        format!(
            "trunk {} {} at step {}: {}; its branches cannot start",
            s.run,
            if s.status == RunStatus::Diverged {
                "diverged"
            } else {
                "failed"
            },
            s.failed_at_step.unwrap_or(s.steps),
            s.reason.unwrap_or_default()
        ),
    ))
}

/// Starts branch `config` from its trunk's checkpoint at the branch point, with the trunk's
/// curve rows up to there (renamed to the branch), replacing whatever the folder's curve held.
pub(crate) fn train_from_trunk(
    config: &RunConfig,
    corpus: &Corpus,
    out: &Path,
    trunk: &Path,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
    lease: isoflop_core::lease::Lease,
) -> Result<Outcome> {
    let at = config.branch.as_ref().map_or(0, |b| b.step);
    if !record::branch_point_ready(trunk, at) {
        return Err(trunk_problem(trunk, at));
    }
    restart(config, corpus, out, stop, on_event, lease, &mut |state| {
        let (step, secs0) = state.load_branch_point(trunk, at)?;
        let curve = trunk.join(record::CURVE_FILE);
        let mut rows = record::read_curve(&curve).map_err(|e| folder_err(trunk, e.to_string()))?;
        rows.retain(|r| r.step <= step);
        if rows.last().map(|r| r.step) != Some(step) {
            return Err(folder_err(
                trunk,
                format!("its curve does not reach the branch point at step {step}"),
            ));
        }
        for r in &mut rows {
            r.run = config.run.clone();
        }
        Ok(From {
            step,
            secs: secs0,
            rows,
        })
    })
}
