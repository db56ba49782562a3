//! The training loop: the schedule, held-out evaluation (AdamW and checkpoints: state.rs),
//! the run's files (see [`isoflop_core::record`]), checkpoints and resume.
//!
//! A run folder moves through three states: `config.json` alone or with a checkpoint
//! (unfinished), and `summary.json` (finished, diverged or failed). A checkpoint
//! (`checkpoint.ot`: weights, AdamW moments, step and elapsed seconds, in one file written
//! whole and renamed into place) is saved every `checkpoint_every` steps and when the caller
//! raises the stop flag; `curve.csv` is rewritten with it. Batches depend only on (seed,
//! step), so a resumed run trains on exactly the batches of an uninterrupted one.

use crate::data::Corpus;
use crate::error::{Result, TrainError};
use crate::model::Gpt;
use crate::schedule::LrSchedule;
use crate::state::{remove_checkpoints, verified_checkpoints, State};
use isoflop_core::record::{self, write_atomic, CurveRow, RunConfig, RunStatus, RunSummary};
pub use isoflop_core::record::{CHECKPOINT_FILE, PROGRESS_FILE};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tch::{nn, Device, Tensor};

/// AdamW's (beta1, beta2, eps), as PyTorch's defaults except beta2 = 0.95 (nanoGPT, GPT-3).
pub const ADAM_BETAS: (f64, f64) = (0.9, 0.95);
/// AdamW's epsilon.
pub const ADAM_EPS: f64 = 1e-8;
// The divergence rule lives with the one writer of run records, which every trainer uses.
pub use isoflop_core::writer::{loss_jump, JUMP_FACTOR, JUMP_NATS, JUMP_WINDOW};

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

/// How a call to [`train`] ended.
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

/// The device named by `name`: "cpu", "cuda" or "cuda:N".
///
/// # Errors
/// [`TrainError::Setting`] for another name, or CUDA asked for where it is not available.
pub fn device(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        _ if name == "cuda" || name.starts_with("cuda:") => {
            if !tch::Cuda::is_available() {
                return Err(TrainError::Setting(format!(
                    "--device {name}: CUDA is not available to libtorch on this machine"
                )));
            }
            let idx = name
                .strip_prefix("cuda:")
                .map(|i| i.parse::<usize>())
                .transpose()
                .map_err(|_| TrainError::Setting(format!("bad device '{name}'")))?;
            Ok(Device::Cuda(idx.unwrap_or(0)))
        }
        _ => Err(TrainError::Setting(format!(
            "unknown device '{name}'; use cpu or cuda"
        ))),
    }
}

pub use crate::config::Settings;

/// Builds the run's model with its seeded initialisation.
pub fn init_model(config: &RunConfig, device: Device) -> (nn::VarStore, Gpt) {
    tch::manual_seed(config.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = Gpt::new(&vs.root(), config.shape).with_precision(config.dtype, config.attention);
    (vs, model)
}

/// The config fields that define a run (what must match to resume it): everything except
/// where and how fast it runs.
fn identity(c: &RunConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(c).expect("config serialises");
    if let Some(o) = v.as_object_mut() {
        // A trunk may gain branches (kept checkpoints) after it started; the counts follow
        // from the shape (and gain fields as isoflop counts more ways).
        for k in [
            "device",
            "threads",
            "trainer",
            "run",
            "keep_steps",
            "params",
            "flops_per_token",
        ] {
            o.remove(k);
        }
    }
    v
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn folder_err(path: &Path, problem: impl Into<String>) -> TrainError {
    TrainError::Folder {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// Removes temporary files left in `out` by a writer that was killed between writing and
/// renaming (`.NAME.tmpPID` from [`write_atomic`], `checkpoint.ot.tmp`). Called while holding
/// the run's lease, so no live writer owns them; only in a folder that holds a run.
fn remove_stale_temporaries(out: &Path) {
    if !out.join(record::CONFIG_FILE).exists() {
        return;
    }
    for e in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.starts_with('.') && name.contains(".tmp")) || name.ends_with(".ot.tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// What is in the output folder before training.
enum Start {
    Fresh,
    /// An unfinished run: from its newest checkpoint that verifies, else from step 0.
    Resume,
    Done(RunSummary),
}

fn prepare(out: &Path, config: &RunConfig, resume: bool) -> Result<Start> {
    let cfg_path = out.join(record::CONFIG_FILE);
    if !out.exists() {
        std::fs::create_dir_all(out).map_err(io(out))?;
    } else if cfg_path.exists() {
        let existing: RunConfig = record::read_json(&cfg_path)
            .map_err(|e| folder_err(out, format!("holds an unreadable config: {e}")))?;
        let (a, b) = (identity(&existing), identity(config));
        if a != b {
            let differs: Vec<String> = a
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| b.get(k.as_str()) != Some(v))
                .map(|(k, _)| k.clone())
                .collect();
            return Err(folder_err(
                out,
                format!(
                    "holds a different run (differs in: {}); choose another --out",
                    differs.join(", ")
                ),
            ));
        }
        if let Ok(summary) = record::read_json::<RunSummary>(&out.join(record::SUMMARY_FILE)) {
            if resume && summary.status == RunStatus::Failed && summary.transient {
                // A machine fault stopped it: resume (the reason was reported when it
                // happened, and a sweep keeps the old summary in its logs).
                eprintln!(
                    "{}: resuming after a failure: {}",
                    out.display(),
                    summary.reason.as_deref().unwrap_or("unknown")
                );
                std::fs::remove_file(out.join(record::SUMMARY_FILE))
                    .map_err(io(&out.join(record::SUMMARY_FILE)))?;
                return Ok(Start::Resume);
            }
            if resume {
                return Ok(Start::Done(summary));
            }
            return Err(folder_err(out, format!("holds this run already ended ({:?}); nothing to do (use --resume to accept it, or another --out)", summary.status)));
        }
        if !resume {
            return Err(folder_err(
                out,
                "holds an unfinished run of this config; pass --resume to continue it",
            ));
        }
        if existing.keep_steps != config.keep_steps {
            // A trunk that gained branches: its config says which checkpoints it keeps.
            write_atomic(
                &cfg_path,
                &serde_json::to_vec_pretty(config).expect("config serialises"),
            )
            .map_err(io(&cfg_path))?;
        }
        return Ok(Start::Resume);
    } else if std::fs::read_dir(out)
        .map_err(io(out))?
        .flatten()
        .any(|e| e.file_name() != isoflop_core::lease::LEASE_FILE)
    {
        return Err(folder_err(
            out,
            "is not empty and holds no run; choose an empty or new folder",
        ));
    }
    write_atomic(
        &cfg_path,
        &serde_json::to_vec_pretty(config).expect("config serialises"),
    )
    .map_err(io(&cfg_path))?;
    Ok(Start::Fresh)
}

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
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<Outcome> {
    if config.branch.is_some() {
        return Err(TrainError::Setting(format!(
            "run {} is a cooldown branch; it trains with its trunk's folder (train_branch, --branch-from)",
            config.run
        )));
    }
    train_run(config, corpus, out, None, resume, stop, on_progress)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn train_run(
    config: &RunConfig,
    corpus: &Corpus,
    out: &Path,
    trunk: Option<&Path>,
    resume: bool,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
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
    use isoflop_core::lease::{Lease, LeaseError, LEASE_FILE};
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
    let start = prepare(out, config, resume)?;
    if let Start::Done(summary) = start {
        return Ok(Outcome::Ended(summary));
    }
    let dev = device(&config.device)?;
    if dev == Device::Cpu && config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    // A branch starts from its trunk here, at the same thread count as any run.
    if let (Start::Fresh, Some(trunk)) = (&start, trunk) {
        return crate::branch::train_from_trunk(
            config,
            corpus,
            out,
            trunk,
            stop,
            on_progress,
            lease,
        );
    }
    let (vs, model) = init_model(config, dev);
    let mut state = State::new(&vs);
    let curve_path = out.join(record::CURVE_FILE);
    let (mut step, mut secs0) = (0u64, 0.0f64);
    let mut rows: Vec<CurveRow> = Vec::new();
    if let Start::Resume = &start {
        let (good, bad) = verified_checkpoints(out);
        for f in &bad {
            eprintln!(
                "{}: {f} does not match its checksum; it is not trained on",
                out.display()
            );
        }
        let mut loaded = None;
        let newest = good.first().map(|g| g.1);
        for (p, at, bytes) in good {
            match state.load(&p, bytes) {
                Ok(l) => {
                    loaded = Some(l);
                    break;
                }
                Err(e) => eprintln!(
                    "{}: checkpoint at step {at} could not be loaded ({}); trying an older one",
                    p.display(),
                    record::one_line(&e.to_string())
                ),
            }
        }
        match loaded {
            Some(l) => {
                (step, secs0) = l;
                if newest != Some(step) || !bad.is_empty() {
                    eprintln!(
                        "{}: resuming from the checkpoint at step {step}",
                        out.display()
                    );
                }
            }
            None => {
                if newest.is_some() || !bad.is_empty() {
                    eprintln!(
                        "{}: no checkpoint verifies; the run restarts from step 0",
                        out.display()
                    );
                }
                // A model half-filled by a failed load is rebuilt from its seed.
                if let Some(trunk) = trunk {
                    return crate::branch::train_from_trunk(
                        config,
                        corpus,
                        out,
                        trunk,
                        stop,
                        on_progress,
                        lease,
                    );
                }
                // From step 0, replacing whatever the folder's curve held.
                return restart(config, corpus, out, stop, on_progress, lease, &mut |_| {
                    Ok((0, 0.0, Vec::new()))
                });
            }
        }
        if curve_path.exists() {
            rows = record::read_curve(&curve_path).map_err(|e| folder_err(out, e.to_string()))?;
            rows.retain(|r| r.step <= step);
        }
    }
    run_loop(
        config,
        corpus,
        out,
        stop,
        on_progress,
        lease,
        dev,
        model,
        state,
        step,
        secs0,
        rows,
    )
}

/// A run's folder cleared of checkpoints, its model built from its seed, then `start`
/// loads a state into it (or none) and gives the step, the seconds so far and the curve's
/// rows to train on from.
pub(crate) fn restart(
    config: &RunConfig,
    corpus: &Corpus,
    out: &Path,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
    lease: isoflop_core::lease::Lease,
    start: &mut dyn FnMut(&mut State) -> Result<(u64, f64, Vec<CurveRow>)>,
) -> Result<Outcome> {
    remove_checkpoints(out);
    let dev = device(&config.device)?;
    let (vs, model) = init_model(config, dev);
    let mut state = State::new(&vs);
    let (step, secs0, rows) = start(&mut state)?;
    run_loop(
        config,
        corpus,
        out,
        stop,
        on_progress,
        lease,
        dev,
        model,
        state,
        step,
        secs0,
        rows,
    )
}

/// The training loop from `step` (the state loaded), to the horizon or the stop flag.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_loop(
    config: &RunConfig,
    corpus: &Corpus,
    out: &Path,
    stop: &AtomicBool,
    on_progress: &mut dyn FnMut(&Progress),
    lease: isoflop_core::lease::Lease,
    dev: Device,
    model: Gpt,
    mut state: State,
    mut step: u64,
    secs0: f64,
    mut rows: Vec<CurveRow>,
) -> Result<Outcome> {
    let curve_path = out.join(record::CURVE_FILE);
    let mut recent = isoflop_core::writer::recent_losses(&rows);
    let (b, t) = (config.batch, config.shape.context);
    let tokens_per_step = (b * t) as u64;
    let fpt = config.flops_per_token.get(config.flop_count);
    let params = config.params.total as u64;
    let clock = Instant::now();
    let session_start_step = step;
    let progress_path = out.join(PROGRESS_FILE);
    let mut last_progress = Instant::now();
    let mut last_refresh = Instant::now();
    let secs = |clock: &Instant| secs0 + clock.elapsed().as_secs_f64();
    let write_curve =
        |rows: &[CurveRow]| isoflop_core::writer::write_curve(out, rows).map_err(io(&curve_path));
    let finish = |status: RunStatus,
                  reason: Option<String>,
                  at: Option<u64>,
                  step: u64,
                  rows: &[CurveRow],
                  secs: f64,
                  eval: Option<f64>|
     -> Result<RunSummary> {
        write_curve(rows)?;
        let mut summary = isoflop_core::writer::ended_summary(
            &config.run,
            params,
            status,
            reason,
            at,
            step,
            rows,
            secs,
            eval,
        );
        // Every step's tokens are known here, logged or not.
        summary.tokens = step * tokens_per_step;
        summary.flops = summary.tokens as f64 * fpt;
        summary.tokens_per_sec = if secs > 0.0 {
            summary.tokens as f64 / secs
        } else {
            0.0
        };
        let p = out.join(record::SUMMARY_FILE);
        isoflop_core::writer::write_summary(out, &summary).map_err(io(&p))?;
        remove_checkpoints(out);
        let _ = std::fs::remove_file(out.join(PROGRESS_FILE));
        Ok(summary)
    };
    let schedule = LrSchedule::of(config);
    while step < config.steps {
        let lr = schedule.at(step);
        let (x, y) = corpus.train_batch(config.seed, step, b, t);
        let loss = model.loss(&to_tensor(&x, b, t, dev), &to_tensor(&y, b, t, dev));
        let loss_value = loss.double_value(&[]);
        let recent_v: Vec<f64> = recent.iter().copied().collect();
        if let Some(why) = isoflop_core::writer::divergence(&recent_v, loss_value, step + 1) {
            rows.push(CurveRow {
                run: config.run.clone(),
                step: step + 1,
                params,
                tokens: (step + 1) * tokens_per_step,
                flops: ((step + 1) * tokens_per_step) as f64 * fpt,
                loss: loss_value,
                lr,
                secs: secs(&clock),
                eval_loss: None,
            });
            let s = finish(
                RunStatus::Diverged,
                Some(why),
                Some(step + 1),
                step,
                &rows,
                secs(&clock),
                None,
            )?;
            return Ok(Outcome::Ended(s));
        }
        if recent.len() == JUMP_WINDOW {
            recent.pop_back();
        }
        recent.push_front(loss_value);
        state.zero_grad();
        loss.backward();
        state.clip(config.grad_clip);
        state.adamw(step + 1, lr, config.weight_decay);
        step += 1;
        let last = step == config.steps;
        let eval_loss = (config.eval_every > 0 && (step % config.eval_every == 0 || last))
            .then(|| evaluate(&model, corpus, config, dev));
        let branch_point = config.keep_steps.contains(&step);
        // A branch point always has its row: a branch starts with the trunk's rows up to it.
        if step % config.log_every == 0 || last || eval_loss.is_some() || branch_point {
            rows.push(CurveRow {
                run: config.run.clone(),
                step,
                params,
                tokens: step * tokens_per_step,
                flops: (step * tokens_per_step) as f64 * fpt,
                loss: loss_value,
                lr,
                secs: secs(&clock),
                eval_loss,
            });
        }
        if branch_point {
            // The curve up to here first, as for any checkpoint, so a branch that finds the
            // checkpoint finds the rows it starts with.
            write_curve(&rows)?;
            state.save_branch_point(out, step, secs(&clock))?;
        }
        let elapsed = clock.elapsed().as_secs_f64();
        if last_progress.elapsed().as_secs_f64() >= 1.0 {
            // For sweeps watching from another process: where this run is, once a second.
            let p = record::Progress {
                step,
                steps: config.steps,
                loss: loss_value,
                secs: secs(&clock),
            };
            let _ = write_atomic(
                &progress_path,
                &serde_json::to_vec(&p).expect("progress serialises"),
            );
            last_progress = Instant::now();
            if last_refresh.elapsed().as_secs() >= 30 {
                lease.refresh();
                last_refresh = Instant::now();
            }
        }
        on_progress(&Progress {
            step,
            steps: config.steps,
            loss: loss_value,
            tokens_per_sec: ((step - session_start_step) * tokens_per_step) as f64
                / elapsed.max(1e-9),
            secs: secs(&clock),
        });
        if last {
            let final_eval = rows.last().and_then(|r| r.eval_loss);
            let s = finish(
                RunStatus::Finished,
                None,
                None,
                step,
                &rows,
                secs(&clock),
                final_eval,
            )?;
            return Ok(Outcome::Ended(s));
        }
        let stopping = stop.load(Ordering::SeqCst);
        if stopping || (config.checkpoint_every > 0 && step % config.checkpoint_every == 0) {
            // The curve first: a kill between the two writes leaves a curve ahead of the
            // previous checkpoint, which a resume truncates, never one behind it.
            write_curve(&rows)?;
            state.save(out, step, secs(&clock))?;
            if stopping {
                return Ok(Outcome::Stopped { step });
            }
        }
    }
    // steps == 0 is refused above; a checkpoint at the last step cannot exist (the run ends there).
    unreachable!("the loop returns at the last step")
}
