//! `isoflop train`: one GPT, one token horizon, on CPU or CUDA.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use isoflop_core::record;
use isoflop_core::shape::{FlopCount, ModelShape};
use isoflop_train::data::Corpus;
use isoflop_train::error::TrainError;
use isoflop_train::trainer::train_branch;
use isoflop_train::trainer::{train, Outcome, Settings};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Count {
    /// 6N, N the total parameters.
    SixN,
    /// Kaplan et al. 2020: 6 N_non-embedding + 6 L T d.
    Kaplan,
    /// Hoffmann et al. 2022, Appendix F.
    Chinchilla,
    /// DeepSeek-AI 2024's M = 72 L d^2 + 12 L d T (non-embedding).
    Deepseek,
}

/// Arguments of `isoflop train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Target total parameters; the shape follows Chinchilla Table A9's aspect ratios.
    #[arg(long, required_unless_present_any = ["layers", "branch_from"])]
    params: Option<f64>,
    /// Explicit shape: layers (with --d-model and --heads) instead of --params.
    #[arg(long, requires_all = ["d_model", "heads"], conflicts_with = "params")]
    layers: Option<usize>,
    /// Explicit shape: model width.
    #[arg(long)]
    d_model: Option<usize>,
    /// Explicit shape: attention heads.
    #[arg(long)]
    heads: Option<usize>,
    /// Token horizon: the cosine schedule ends exactly here (rounded up to whole steps).
    #[arg(long)]
    tokens: f64,
    /// Corpus: a text file or folder (bytes, vocab 256), or a .bin of u16 tokens.
    /// Default: the King James Bible of Debian's bible-kjv package.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Vocabulary for a .bin corpus (default: largest token + 1).
    #[arg(long)]
    vocab: Option<usize>,
    /// Output folder for config.json, curve.csv, summary.json and checkpoints.
    #[arg(long)]
    out: PathBuf,
    /// Run name (default: the output folder's name).
    #[arg(long)]
    run: Option<String>,
    /// Continue an unfinished run in --out from its checkpoint.
    #[arg(long)]
    resume: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// The training settings (shared with `isoflop plan` and the sweep file's `[defaults]`).
    #[command(flatten)]
    settings: isoflop_core::TrainSettings,
    /// CPU threads (0: libtorch's default).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Which FLOP count the curve's flops column uses.
    #[arg(long, value_enum, default_value_t = Count::SixN)]
    flop_count: Count,
    /// Rotary position embeddings instead of learned positions.
    #[arg(long)]
    rotary: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// A cooldown branch: the trunk's run folder (a `--schedule constant` run that keeps a
    /// checkpoint at --at-tokens). The branch is the trunk up to there, then cools down
    /// (`wsd`, with --cooldown-shape and --min-lr-ratio) to --tokens. The model defaults to
    /// the trunk's.
    #[arg(long, requires = "at_tokens", conflicts_with = "keep_at_tokens")]
    branch_from: Option<PathBuf>,
    /// The branch point: the trunk's checkpoint at this many tokens.
    #[arg(long, requires = "branch_from")]
    at_tokens: Option<f64>,
    /// A trunk: keep a checkpoint at each of these token counts (comma-separated) for the
    /// branches that fork there.
    #[arg(long, value_delimiter = ',')]
    keep_at_tokens: Vec<f64>,
    /// Train even where the model's estimated memory exceeds this machine's free memory.
    #[arg(long)]
    force: bool,
    /// The device's peak FLOPs per second in TFLOPS, for the MFU printed at the end
    /// (default: from the GPU's name, for the GPUs `isoflop_core::machine::peak_flops` knows).
    #[arg(long)]
    peak_tflops: Option<f64>,
}

/// The GPU's name as `nvidia-smi` prints it, for device `cuda` or `cuda:N`.
fn gpu_name(device: &str) -> Option<String> {
    let index = device.strip_prefix("cuda:").unwrap_or("0");
    let o = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader", "-i", index])
        .output()
        .ok()?;
    let name = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !name.is_empty()).then_some(name)
}

/// The run's throughput, and on a GPU its MFU against the device's peak.
fn throughput_line(a: &TrainArgs, cfg: &record::RunConfig, sum: &record::RunSummary) -> String {
    let fpt = cfg.flops_per_token.get(cfg.flop_count);
    let mut line = format!(
        "{}: {:.0} tokens/s ({:.3e} FLOPs/s by the {:?} count)",
        sum.run,
        sum.tokens_per_sec,
        sum.tokens_per_sec * fpt,
        cfg.flop_count
    );
    if a.device.starts_with("cuda") {
        let name = gpu_name(&a.device);
        let peak = a.peak_tflops.map(|t| t * 1e12).or_else(|| {
            name.as_deref()
                .and_then(|n| isoflop_core::machine::peak_flops(n, cfg.dtype))
        });
        match peak {
            Some(p) => {
                line += &format!(
                    "; MFU {:.1}% of {:.1} TFLOPS ({}, {})",
                    100.0 * isoflop_core::machine::mfu(sum.tokens_per_sec, fpt, p),
                    p / 1e12,
                    name.as_deref().unwrap_or("peak given"),
                    cfg.dtype.name()
                )
            }
            None => {
                line += &format!(
                    "; MFU unknown: no peak for {} (give --peak-tflops)",
                    name.as_deref().unwrap_or("this GPU")
                )
            }
        }
    }
    line
}

/// Marks an error as "stopped by a signal it caught" (Ctrl-C's SIGINT, SIGTERM, SIGUSR1):
/// exit code 128 + the signal (130 for Ctrl-C, as shells report it), and the run's summary
/// says `transient`, so the next sweep resumes it from its checkpoint.
#[derive(Debug)]
pub struct Interrupted(pub i32);

impl Interrupted {
    /// The exit status: 128 + the signal.
    pub fn code(&self) -> u8 {
        (128 + self.0).clamp(0, 255) as u8
    }
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted; `--resume` (or the next `isoflop sweep`) continues it")
    }
}

/// Raised by the stop signals; the training loop checks it after each step.
static STOP: AtomicBool = AtomicBool::new(false);
/// The stop signal caught, 0 before one.
static CAUGHT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    CAUGHT.store(sig, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

/// A signal's name for a summary's reason.
fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "Ctrl-C (SIGINT)",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1 (a scheduler's warning before its time limit)",
        _ => "a signal",
    }
}

/// Marks an error as "another process holds this run" (exit code [`record::EXIT_HELD`]).
#[derive(Debug)]
pub struct Held;

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the run is held by another process; nothing was trained")
    }
}

/// Marks an error as a machine fault (an I/O or libtorch error): exit code 1, and the
/// run's summary says `transient`, so the next sweep resumes it.
#[derive(Debug)]
pub struct Transient;

impl std::fmt::Display for Transient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("training stopped by a fault of the machine; `--resume` continues it")
    }
}

/// Writes a failed summary for the run in `out`, where the folder holds this run (its
/// config) and no summary yet; a full disk may refuse even that, and then the error
/// message is all there is.
fn write_failure(
    out: &std::path::Path,
    cfg: &isoflop_core::record::RunConfig,
    reason: &str,
    transient: bool,
) {
    let held: Option<isoflop_core::record::RunConfig> =
        record::read_json(&out.join(record::CONFIG_FILE)).ok();
    if held.as_ref().map(|c| &c.shape) != Some(&cfg.shape)
        || out.join(record::SUMMARY_FILE).exists()
    {
        return;
    }
    let s = record::RunSummary::failed(&cfg.run, cfg.params.total as u64, reason, transient);
    let _ = record::write_atomic(
        &out.join(record::SUMMARY_FILE),
        &serde_json::to_vec_pretty(&s).expect("summary serialises"),
    );
}

pub fn run(a: TrainArgs) -> Result<()> {
    let (cfg, corpus, shape, run) = configure(&a)?;
    let p = cfg.params;
    eprintln!(
        "{run}: {} layers, d_model {}, {} heads; {} parameters ({} non-embedding); {} steps of {}x{} tokens = {} tokens; {:.3e} FLOPs ({:?})",
        shape.layers, shape.d_model, shape.heads, p.total, p.non_embedding, cfg.steps, cfg.batch, shape.context, cfg.tokens,
        cfg.tokens as f64 * cfg.flops_per_token.get(cfg.flop_count), cfg.flop_count
    );
    if let Some(w) = corpus.repetition_warning(cfg.tokens, cfg.batch, shape.context) {
        eprintln!("warning: {run}: {w}");
    }
    let (outcome, bar) = train_guarded(&a, &cfg, &corpus)?;
    bar.finish_and_clear();
    finish(&a, &cfg, outcome)
}

/// The run's config from the options (checked), the corpus it trains on, the model's shape
/// and the run's name.
fn configure(a: &TrainArgs) -> Result<(record::RunConfig, Corpus, ModelShape, String)> {
    if !(a.tokens.is_finite() && a.tokens >= 1.0) {
        bail!("--tokens must be a positive number, got {}", a.tokens);
    }
    if let Some(w) = isoflop_core::machine::check_parallelism(
        "--threads",
        a.threads,
        isoflop_core::machine::cores(),
    )
    .map_err(anyhow::Error::msg)?
    {
        eprintln!("warning: {w}");
    }
    let data = isoflop_core::corpus::resolve(a.data.clone())?;
    let corpus = Corpus::load(&data, a.vocab, a.settings.context).context("reading the corpus")?;
    let vocab = a.vocab.unwrap_or(corpus.vocab);
    let trunk: Option<record::RunConfig> = match &a.branch_from {
        // A trunk that failed says so (its reason, not a missing config).
        Some(dir) if !dir.join(record::CONFIG_FILE).exists() => None,
        Some(dir) => Some(
            record::read_json(&dir.join(record::CONFIG_FILE))
                .with_context(|| format!("--branch-from {}: no trunk run there", dir.display()))?,
        ),
        None => None,
    };
    for (name, t) in a
        .at_tokens
        .iter()
        .map(|t| ("--at-tokens", t))
        .chain(a.keep_at_tokens.iter().map(|t| ("--keep-at-tokens", t)))
    {
        if !(t.is_finite() && *t >= 1.0) {
            bail!("{name} must be a positive number of tokens, got {t}");
        }
    }
    let shape = match (a.params, a.layers, &trunk) {
        (None, None, Some(t)) => t.shape,
        (Some(p), None, _) => ModelShape::for_params(p, vocab, a.settings.context, a.rotary)?,
        (None, Some(l), _) => ModelShape::new(
            l,
            a.d_model.unwrap_or(0),
            a.heads.unwrap_or(0),
            vocab,
            a.settings.context,
            a.rotary,
        )?,
        _ => bail!("give --params, or --layers with --d-model and --heads"),
    };
    let run = a.run.clone().unwrap_or_else(|| {
        a.out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into())
    });
    let mut s = Settings::new(&run, shape, a.tokens.ceil() as u64);
    s.train = a.settings.clone();
    s.threads = a.threads;
    s.flop_count = match a.flop_count {
        Count::SixN => FlopCount::SixN,
        Count::Kaplan => FlopCount::Kaplan,
        Count::Chinchilla => FlopCount::Chinchilla,
        Count::Deepseek => FlopCount::Deepseek,
    };
    s.data = corpus.description.clone();
    s.device = a.device.clone();
    s.keep_tokens = a.keep_at_tokens.iter().map(|t| t.ceil() as u64).collect();
    check_memory(&shape, s.train.batch, &a.device, a.force)?;
    let mut cfg = s.config()?;
    if let (Some(dir), Some(at)) = (&a.branch_from, a.at_tokens) {
        cfg = isoflop_train::branch::branch_config(dir, &cfg, at.ceil() as u64)?;
    }
    Ok((cfg, corpus, shape, run))
}

/// Trains with the stop signals caught and a panic turned into a failed run: the outcome,
/// and the progress bar to clear.
fn train_guarded(
    a: &TrainArgs,
    cfg: &record::RunConfig,
    corpus: &Corpus,
) -> Result<(Outcome, ProgressBar)> {
    // Ctrl-C (SIGINT), SIGTERM and SIGUSR1 (a Slurm job's `--signal` before its time
    // limit, passed on by `isoflop sweep-task`) finish the current step, write a checkpoint
    // and exit: the run is transient, and resumes.
    let stop: &'static AtomicBool = &STOP;
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: the handler only stores to atomics, which is async-signal-safe.
        unsafe { libc::signal(sig, on_stop_signal as *const () as libc::sighandler_t) };
    }
    let bar = if a.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(cfg.steps)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .expect("template"),
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut show = |e: &isoflop_train::trainer::Event| match e {
            isoflop_train::trainer::Event::Progress(pr) => {
                bar.set_position(pr.step);
                bar.set_message(format!(
                    "loss {:.4}  {:.0} tok/s",
                    pr.loss, pr.tokens_per_sec
                ));
            }
            isoflop_train::trainer::Event::Note(line) => bar.suspend(|| eprintln!("{line}")),
        };
        match &a.branch_from {
            Some(trunk) => train_branch(cfg, corpus, &a.out, trunk, a.resume, &stop, &mut show),
            None => train(cfg, corpus, &a.out, a.resume, &stop, &mut show),
        }
    }));
    let outcome = match result {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            if let TrainError::Held { .. } = e {
                return Err(anyhow::Error::new(e).context(Held));
            }
            let reason = record::one_line(&e.to_string());
            if e.is_transient() {
                write_failure(&a.out, cfg, &reason, true);
                return Err(anyhow::anyhow!("{reason}").context(Transient));
            }
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("training into {}", a.out.display()));
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown".into());
            let reason = format!(
                "internal error (a panic in isoflop's trainer): {}",
                record::one_line(&what)
            );
            write_failure(&a.out, cfg, &reason, false);
            bail!("{reason}");
        }
    };
    Ok((outcome, bar))
}

/// What a run's end prints and returns: the summary line, or the error of a run that did
/// not finish (interrupted: transient, resumable).
fn finish(a: &TrainArgs, cfg: &record::RunConfig, outcome: Outcome) -> Result<()> {
    match outcome {
        Outcome::Ended(sum) => {
            if !a.quiet || a.device.starts_with("cuda") {
                eprintln!("{}", throughput_line(a, cfg, &sum));
            }
            println!("{}", serde_json::to_string(&sum)?);
            match sum.status {
                isoflop_core::record::RunStatus::Finished => Ok(()),
                _ => bail!(
                    "run {} {:?}: {}",
                    sum.run,
                    sum.status,
                    sum.reason.unwrap_or_default()
                ),
            }
        }
        Outcome::Stopped { step } => {
            let sig = match CAUGHT.load(Ordering::SeqCst) {
                0 => libc::SIGINT,
                s => s,
            };
            let reason = format!(
                "interrupted by {} at step {step}; checkpoint saved",
                signal_name(sig)
            );
            write_failure(&a.out, cfg, &reason, true);
            Err(
                anyhow::anyhow!("{reason} in {}; continue with --resume", a.out.display())
                    .context(Interrupted(sig)),
            )
        }
    }
}

/// Refuses, before anything is allocated or written, a model whose estimated training
/// memory ([`ModelShape::training_memory`]) exceeds this machine's free memory, unless
/// `force`. On a GPU the estimate is not checked (libtorch reports a device's memory, and
/// this binary has not loaded it yet).
fn check_memory(shape: &ModelShape, batch: usize, device: &str, force: bool) -> Result<()> {
    if device != "cpu" {
        return Ok(());
    }
    let need = shape.training_memory(batch);
    let Some(free) = isoflop_core::machine::available_memory() else {
        return Ok(());
    };
    if need > free as f64 {
        let msg = format!(
            "this model ({} parameters, batch {batch}, context {}) needs about {} to train, and this machine has {} free",
            shape.params().total,
            shape.context,
            isoflop_core::machine::bytes(need),
            isoflop_core::machine::bytes(free as f64)
        );
        if force {
            eprintln!("warning: {msg}; training anyway (--force)");
        } else {
            bail!("{msg}; nothing was written (--force tries anyway)");
        }
    }
    Ok(())
}
