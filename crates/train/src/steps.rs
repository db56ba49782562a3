//! The training loop: from a loaded state to the horizon or the stop flag, each step's
//! batch, its loss, AdamW, the logged rows, the branch points, the checkpoints, held-out
//! evaluation and the ended summary.

use crate::data::Corpus;
use crate::error::{io, Result};
use crate::event::{Event, Outcome, Progress};
use crate::model::Gpt;
use crate::schedule::LrSchedule;
use crate::state::{remove_checkpoints, State};
use isoflop_core::record::{self, write_atomic, CurveRow, RunConfig, RunStatus, RunSummary};
use isoflop_core::writer::JUMP_WINDOW;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{Device, Tensor};

fn to_tensor(v: &[i64], batch: usize, context: usize, device: Device) -> Tensor {
    Tensor::from_slice(v)
        .view([batch as i64, context as i64])
        .to_device(device)
}

/// Mean held-out loss over the run's fixed evaluation batches.
pub fn evaluate(model: &Gpt, corpus: &Corpus, config: &RunConfig, device: Device) -> f64 {
    tch::no_grad(|| {
        let (b, t) = (config.batch, config.shape.context);
        let total: f64 = (0..config.eval_batches as u64)
            .map(|k| {
                let (x, y) = corpus.eval_batch(k, b, t);
                model
                    .loss(&to_tensor(&x, b, t, device), &to_tensor(&y, b, t, device))
                    .double_value(&[])
            })
            .sum();
        total / config.eval_batches.max(1) as f64
    })
}

/// Where a session of training starts: the step the state was loaded at, the seconds the
/// run had trained before, and the curve's rows up to that step.
pub(crate) struct From {
    pub step: u64,
    pub secs: f64,
    pub rows: Vec<CurveRow>,
}

impl From {
    /// Step 0: nothing trained, no rows.
    pub fn beginning() -> From {
        From {
            step: 0,
            secs: 0.0,
            rows: Vec::new(),
        }
    }
}

/// A run ready to train: its settings, data, folder, model and optimizer state, and the
/// lease that keeps it to this process.
pub(crate) struct Session<'a> {
    pub config: &'a RunConfig,
    pub corpus: &'a Corpus,
    pub out: &'a Path,
    pub lease: isoflop_core::lease::Lease,
    pub dev: Device,
    pub model: Gpt,
    pub state: State,
}

impl<'a> Session<'a> {
    /// The run's model built from its seed on `dev`, with a fresh optimizer state (which a
    /// resume or a branch then loads into).
    pub fn new(
        config: &'a RunConfig,
        corpus: &'a Corpus,
        out: &'a Path,
        lease: isoflop_core::lease::Lease,
        dev: Device,
    ) -> Session<'a> {
        // The optimizer state keeps the variables' tensors; the store itself is not needed.
        let (vs, model) = crate::model::init_model(config, dev);
        let state = State::new(&vs);
        Session {
            config,
            corpus,
            out,
            lease,
            dev,
            model,
            state,
        }
    }

    fn tokens_per_step(&self) -> u64 {
        (self.config.batch * self.config.shape.context) as u64
    }

    /// The curve's row at `step`.
    fn row(&self, step: u64, loss: f64, lr: f64, secs: f64, eval_loss: Option<f64>) -> CurveRow {
        let tokens = step * self.tokens_per_step();
        CurveRow {
            run: self.config.run.clone(),
            step,
            params: self.config.params.total as u64,
            tokens,
            flops: tokens as f64 * self.config.flops_per_token.get(self.config.flop_count),
            loss,
            lr,
            secs,
            eval_loss,
        }
    }

    fn write_curve(&self, rows: &[CurveRow]) -> Result<()> {
        isoflop_core::writer::write_curve(self.out, rows)
            .map_err(io(&self.out.join(record::CURVE_FILE)))
    }

    /// Writes the curve and the ended summary, and removes the checkpoints and the progress
    /// file: the run has ended at `step` with `status`.
    fn finish(
        &self,
        ended: (RunStatus, Option<String>, Option<u64>),
        step: u64,
        rows: &[CurveRow],
        secs: f64,
        eval: Option<f64>,
    ) -> Result<Outcome> {
        let (status, reason, at) = ended;
        self.write_curve(rows)?;
        let mut summary: RunSummary = isoflop_core::writer::ended_summary(
            &self.config.run,
            self.config.params.total as u64,
            status,
            reason,
            at,
            step,
            rows,
            secs,
            eval,
        );
        // Every step's tokens are known here, logged or not.
        summary.tokens = step * self.tokens_per_step();
        summary.flops =
            summary.tokens as f64 * self.config.flops_per_token.get(self.config.flop_count);
        summary.tokens_per_sec = if secs > 0.0 {
            summary.tokens as f64 / secs
        } else {
            0.0
        };
        let p = self.out.join(record::SUMMARY_FILE);
        isoflop_core::writer::write_summary(self.out, &summary).map_err(io(&p))?;
        remove_checkpoints(self.out);
        let _ = std::fs::remove_file(self.out.join(record::PROGRESS_FILE));
        Ok(Outcome::Ended(summary))
    }

    /// For sweeps watching from another process: where this run is (`progress.json`), and
    /// the lease refreshed every 30 seconds.
    fn tell_watchers(&self, p: &record::Progress, last_refresh: &mut Instant) {
        let _ = write_atomic(
            &self.out.join(record::PROGRESS_FILE),
            &serde_json::to_vec(p).expect("progress serialises"),
        );
        if last_refresh.elapsed().as_secs() >= 30 {
            self.lease.refresh();
            *last_refresh = Instant::now();
        }
    }
}

/// The training loop from `from` (the state loaded), to the horizon or the stop flag.
pub(crate) fn run_loop(
    mut s: Session,
    from: From,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Outcome> {
    let From {
        mut step,
        secs: secs0,
        mut rows,
    } = from;
    let config = s.config;
    let mut recent = isoflop_core::writer::recent_losses(&rows);
    let (b, t) = (config.batch, config.shape.context);
    let clock = Instant::now();
    let session_start_step = step;
    let mut last_progress = Instant::now();
    let mut last_refresh = Instant::now();
    let secs = |clock: &Instant| secs0 + clock.elapsed().as_secs_f64();
    let schedule = LrSchedule::of(config);
    while step < config.steps {
        let lr = schedule.at(step);
        let (x, y) = s.corpus.train_batch(config.seed, step, b, t);
        let loss = s
            .model
            .loss(&to_tensor(&x, b, t, s.dev), &to_tensor(&y, b, t, s.dev));
        let loss_value = loss.double_value(&[]);
        let recent_v: Vec<f64> = recent.iter().copied().collect();
        if let Some(why) = isoflop_core::writer::divergence(&recent_v, loss_value, step + 1) {
            rows.push(s.row(step + 1, loss_value, lr, secs(&clock), None));
            let ended = (RunStatus::Diverged, Some(why), Some(step + 1));
            return s.finish(ended, step, &rows, secs(&clock), None);
        }
        if recent.len() == JUMP_WINDOW {
            recent.pop_back();
        }
        recent.push_front(loss_value);
        s.state.zero_grad();
        loss.backward();
        s.state.clip(config.grad_clip);
        s.state.adamw(step + 1, lr, config.weight_decay);
        step += 1;
        let last = step == config.steps;
        let eval_loss = (config.eval_every > 0 && (step % config.eval_every == 0 || last))
            .then(|| evaluate(&s.model, s.corpus, config, s.dev));
        let branch_point = config.keep_steps.contains(&step);
        // A branch point always has its row: a branch starts with the trunk's rows up to it.
        if step % config.log_every == 0 || last || eval_loss.is_some() || branch_point {
            rows.push(s.row(step, loss_value, lr, secs(&clock), eval_loss));
        }
        if branch_point {
            // The curve up to here first, as for any checkpoint, so a branch that finds the
            // checkpoint finds the rows it starts with.
            s.write_curve(&rows)?;
            s.state.save_branch_point(s.out, step, secs(&clock))?;
        }
        let elapsed = clock.elapsed().as_secs_f64();
        if last_progress.elapsed().as_secs_f64() >= 1.0 {
            let p = record::Progress {
                step,
                steps: config.steps,
                loss: loss_value,
                secs: secs(&clock),
            };
            s.tell_watchers(&p, &mut last_refresh);
            last_progress = Instant::now();
        }
        on_event(&Event::Progress(Progress {
            step,
            steps: config.steps,
            loss: loss_value,
            tokens_per_sec: ((step - session_start_step) * s.tokens_per_step()) as f64
                / elapsed.max(1e-9),
            secs: secs(&clock),
        }));
        if last {
            let final_eval = rows.last().and_then(|r| r.eval_loss);
            let ended = (RunStatus::Finished, None, None);
            return s.finish(ended, step, &rows, secs(&clock), final_eval);
        }
        let stopping = stop.load(Ordering::SeqCst);
        if stopping || (config.checkpoint_every > 0 && step % config.checkpoint_every == 0) {
            // The curve first: a kill between the two writes leaves a curve ahead of the
            // previous checkpoint, which a resume truncates, never one behind it.
            s.write_curve(&rows)?;
            s.state.save(s.out, step, secs(&clock))?;
            if stopping {
                return Ok(Outcome::Stopped { step });
            }
        }
    }
    // steps == 0 is refused above; a checkpoint at the last step cannot exist (the run ends there).
    unreachable!("the loop returns at the last step")
}
