//! Run records: the files a training run writes and everything downstream reads.
//!
//! A run's folder holds
//! - `config.json`: [`RunConfig`], what was asked for, written before the first step;
//! - `curve.csv`: one row per logged step, columns
//!   `run,step,params,tokens,flops,loss,lr,secs,eval_loss` (eval_loss empty where not
//!   evaluated). It is a run table by itself ([`crate::RunTable`] reads it, and a folder of
//!   run folders), so `isoflop fit` reads runs directly;
//! - `summary.json`: [`RunSummary`], written last: a run without one is unfinished.
//!
//! Every file is written whole to a temporary name and renamed into place, so a reader
//! never sees half a file. An external trainer that writes the same three files is a run
//! like any other.

use crate::error::CoreError;
use crate::shape::{FlopCount, FlopsPerToken, ModelShape, ParamCount};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk,
/// then renamed over `path`.
///
/// # Errors
/// The underlying I/O error, with the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| std::io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

fn default_cooldown_frac() -> f64 {
    crate::settings::DEFAULT_COOLDOWN_FRAC
}

/// What a run was asked to do.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    /// The run's name (its folder's name by default).
    pub run: String,
    /// The model.
    pub shape: ModelShape,
    /// Its parameters, by component.
    pub params: ParamCount,
    /// FLOPs per token, three ways.
    pub flops_per_token: FlopsPerToken,
    /// Which count the curve's `flops` column uses.
    pub flop_count: FlopCount,
    /// Token horizon: the schedule ends exactly here.
    pub tokens: u64,
    /// Sequences per step.
    pub batch: usize,
    /// Optimizer steps (tokens / (batch * context), rounded up).
    pub steps: u64,
    /// Peak learning rate.
    pub lr: f64,
    /// Final learning rate as a fraction of the peak (0.1: the paper's 10x decay).
    pub min_lr_ratio: f64,
    /// Linear warm-up steps.
    pub warmup_steps: u64,
    /// The schedule after the warm-up (configs written before schedules existed: cosine).
    #[serde(default)]
    pub schedule: crate::settings::Schedule,
    /// The fraction of the horizon a `wsd` schedule cools down over.
    #[serde(default = "default_cooldown_frac")]
    pub cooldown_frac: f64,
    /// The shape of a `wsd` cooldown.
    #[serde(default)]
    pub cooldown_shape: crate::settings::CooldownShape,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Gradient clipping norm (0 for none).
    pub grad_clip: f64,
    /// Seed of initialisation and data order.
    pub seed: u64,
    /// Log a curve row every this many steps.
    pub log_every: u64,
    /// Evaluate held-out loss every this many steps.
    pub eval_every: u64,
    /// Batches per held-out evaluation.
    pub eval_batches: usize,
    /// Checkpoint every this many steps.
    pub checkpoint_every: u64,
    /// The precision of the forward and backward pass (configs written before it: fp32).
    #[serde(default)]
    pub dtype: crate::settings::Dtype,
    /// How attention was computed (configs written before it: written out).
    #[serde(default)]
    pub attention: crate::settings::Attention,
    /// The corpus and how it was tokenised.
    pub data: String,
    /// Device ("cpu", "cuda").
    pub device: String,
    /// Threads used on CPU.
    pub threads: usize,
    /// Who wrote the run ("isoflop 0.1.0", or an external trainer).
    pub trainer: String,
    /// A cooldown branch: the trunk it forked from and where (absent for other runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchPoint>,
    /// A trunk: the steps whose checkpoints its branches fork from, kept after it ends
    /// ([`branch_checkpoint_files`]). A run with any is a trunk, not a point of a fit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_steps: Vec<u64>,
}

/// Where a cooldown branch forked: its trunk's run name and the step of the trunk's
/// checkpoint it started from. The branch's curve holds the trunk's rows up to that step;
/// its learning rate cools down from there to its own horizon.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BranchPoint {
    /// The trunk's run name.
    pub trunk: String,
    /// The trunk's step the branch starts from.
    pub step: u64,
}

/// The checkpoint a trunk keeps at `step` for the branches that fork there, and its
/// [`CheckpointMeta`]: `branch-STEP.ot`, `branch-STEP.json`. Unlike the rolling
/// [`CHECKPOINT_FILE`], it stays after the trunk ends.
pub fn branch_checkpoint_files(step: u64) -> (String, String) {
    (format!("branch-{step}.ot"), format!("branch-{step}.json"))
}

/// True when the run folder `dir` holds a trunk of cooldown branches (its config lists
/// `keep_steps`): not a point of a fit, since its constant-rate curve never cooled down.
/// Read as plain JSON, so an external trainer's config of any shape is simply not a trunk.
pub fn is_trunk(dir: &Path) -> bool {
    read_json::<serde_json::Value>(&dir.join(CONFIG_FILE))
        .ok()
        .and_then(|c| c.get("keep_steps")?.as_array().map(|k| !k.is_empty()))
        .unwrap_or(false)
}

/// True when the trunk in `dir` holds its checkpoint for step `step` (its meta, written
/// after the checkpoint is in place, exists).
pub fn branch_point_ready(dir: &Path, step: u64) -> bool {
    dir.join(branch_checkpoint_files(step).1).is_file()
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Reached its horizon.
    Finished,
    /// Its loss became NaN or infinite.
    Diverged,
    /// Stopped by an error.
    Failed,
}

/// How a run ended, written last.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunSummary {
    /// The run.
    pub run: String,
    /// How it ended.
    pub status: RunStatus,
    /// Why, for a diverged or failed run.
    pub reason: Option<String>,
    /// The step it diverged or failed at.
    pub failed_at_step: Option<u64>,
    /// Steps taken.
    pub steps: u64,
    /// Parameters (total).
    pub params: u64,
    /// Tokens trained on.
    pub tokens: u64,
    /// FLOPs spent, by the config's count.
    pub flops: f64,
    /// Training loss at the end: [`final_loss`] of the curve (a line through the last tenth
    /// of the run's tokens, evaluated at its end).
    pub final_loss: Option<f64>,
    /// Last held-out loss.
    pub final_eval_loss: Option<f64>,
    /// Wall-clock seconds, resumed segments included.
    pub secs: f64,
    /// Mean training throughput.
    pub tokens_per_sec: f64,
    /// True for a failure of the machine, not of the run (killed by a signal, an I/O
    /// error, a libtorch abort): the next sweep resumes the run from its checkpoint. False
    /// for a run that failed on its own terms (diverged, a bad shape), which stays failed
    /// unless `isoflop sweep --retry-failed`.
    #[serde(default)]
    pub transient: bool,
}

impl RunSummary {
    /// The summary of a run that failed before or without writing its own: `steps` taken
    /// (0 where unknown), `reason` as one line (see [`one_line`]).
    pub fn failed(run: &str, params: u64, reason: &str, transient: bool) -> RunSummary {
        RunSummary {
            run: run.to_string(),
            status: RunStatus::Failed,
            reason: Some(one_line(reason)),
            failed_at_step: None,
            steps: 0,
            params,
            tokens: 0,
            flops: 0.0,
            final_loss: None,
            final_eval_loss: None,
            secs: 0.0,
            tokens_per_sec: 0.0,
            transient,
        }
    }

    /// The loss the fits take as this run's final loss: the held-out loss at the end where
    /// there is one, else the smoothed training loss at the end ([`final_loss`]).
    pub fn fit_loss(&self) -> Option<f64> {
        self.final_eval_loss.or(self.final_loss)
    }
}

/// A message as one readable line: its first non-empty line (a libtorch error's C++ stack
/// frames and a panic's backtrace note follow on later lines), at most 400 characters.
pub fn one_line(message: &str) -> String {
    let line = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if line.chars().count() > 400 {
        format!("{}...", line.chars().take(400).collect::<String>())
    } else {
        line.to_string()
    }
}

/// The share of a run's tokens, at its end, over which [`final_loss`] smooths.
pub const FINAL_LOSS_WINDOW: f64 = 0.1;

/// A run's training loss at its end, from its curve's `(tokens, loss)` rows: the least-squares
/// line in tokens through the rows of the last [`FINAL_LOSS_WINDOW`] of the run's tokens (at
/// least the last 3 rows), evaluated at the last row's tokens. A line, not a mean: a mean
/// over a window of a falling curve is the loss at the window's middle, higher than at the
/// end. Non-finite losses are left out; `None` when no finite row remains.
///
/// # Example
/// ```
/// // A curve falling linearly in tokens: the line through its last tenth, at its end, is
/// // the last loss itself (a mean over the window would be higher).
/// let rows: Vec<(f64, f64)> = (1..=100).map(|k| (k as f64 * 1e3, 5.0 - 0.01 * k as f64)).collect();
/// let end = isoflop_core::record::final_loss(&rows).unwrap();
/// assert!((end - 4.0).abs() < 1e-9);
/// ```
pub fn final_loss(rows: &[(f64, f64)]) -> Option<f64> {
    let rows: Vec<(f64, f64)> = rows
        .iter()
        .copied()
        .filter(|(t, l)| t.is_finite() && l.is_finite())
        .collect();
    let &(end, last) = rows.last()?;
    let from = end * (1.0 - FINAL_LOSS_WINDOW);
    let k = rows.iter().filter(|(t, _)| *t >= from).count().max(3);
    let w = &rows[rows.len().saturating_sub(k)..];
    if w.len() < 2 {
        return Some(last);
    }
    let n = w.len() as f64;
    let (mt, ml) = (
        w.iter().map(|r| r.0).sum::<f64>() / n,
        w.iter().map(|r| r.1).sum::<f64>() / n,
    );
    let sxx: f64 = w.iter().map(|r| (r.0 - mt).powi(2)).sum();
    if !(sxx > 0.0) {
        return Some(ml);
    }
    let sxy: f64 = w.iter().map(|r| (r.0 - mt) * (r.1 - ml)).sum();
    Some(ml + sxy / sxx * (end - mt))
}

/// A 64-bit FNV-1a hash of `bytes`: the checksum a checkpoint is written with.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// What a checkpoint holds, written beside it ([`CHECKPOINT_META_FILE`]) after it is in
/// place: a checkpoint whose bytes do not hash to `fnv1a64` is never trained on.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointMeta {
    /// Steps completed when it was written.
    pub step: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// [`fnv1a64`] of its bytes, as 16 hex digits.
    pub fnv1a64: String,
}

impl CheckpointMeta {
    /// The meta of the checkpoint file `bytes` at `step`.
    pub fn of(bytes: &[u8], step: u64) -> CheckpointMeta {
        CheckpointMeta {
            step,
            bytes: bytes.len() as u64,
            fnv1a64: format!("{:016x}", fnv1a64(bytes)),
        }
    }

    /// True when `bytes` are the checkpoint this meta describes.
    pub fn verifies(&self, bytes: &[u8]) -> bool {
        *self == CheckpointMeta::of(bytes, self.step)
    }
}

/// The step of the checkpoint in `run_dir`, from its meta file, where there is one.
pub fn checkpoint_step(run_dir: &Path) -> Option<u64> {
    read_json::<CheckpointMeta>(&run_dir.join(CHECKPOINT_META_FILE))
        .ok()
        .map(|m| m.step)
}

/// One logged step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CurveRow {
    /// The run.
    pub run: String,
    /// Optimizer steps completed.
    pub step: u64,
    /// Parameters.
    pub params: u64,
    /// Tokens seen.
    pub tokens: u64,
    /// FLOPs spent.
    pub flops: f64,
    /// Training loss of this step's batch.
    pub loss: f64,
    /// Learning rate used for this step.
    pub lr: f64,
    /// Wall-clock seconds since the start, resumed segments included.
    pub secs: f64,
    /// Held-out loss, where evaluated at this step.
    pub eval_loss: Option<f64>,
}

/// The three file names of a run folder.
pub const CONFIG_FILE: &str = "config.json";
/// See [`CONFIG_FILE`].
pub const CURVE_FILE: &str = "curve.csv";
/// See [`CONFIG_FILE`].
pub const SUMMARY_FILE: &str = "summary.json";
/// isoflop's trainer's checkpoint (weights, AdamW moments, step) in a run folder.
pub const CHECKPOINT_FILE: &str = "checkpoint.ot";
/// The [`CheckpointMeta`] of [`CHECKPOINT_FILE`].
pub const CHECKPOINT_META_FILE: &str = "checkpoint.json";
/// The checkpoint before the latest, kept until the next one verifies.
pub const PREVIOUS_CHECKPOINT_FILE: &str = "checkpoint.prev.ot";
/// The [`CheckpointMeta`] of [`PREVIOUS_CHECKPOINT_FILE`].
pub const PREVIOUS_CHECKPOINT_META_FILE: &str = "checkpoint.prev.json";
/// Where a running run says how far it is ([`Progress`]), about once a second.
pub const PROGRESS_FILE: &str = "progress.json";
/// The exit code of a trainer that found its run held by another live process (its lease):
/// it trained nothing, and the run is not failed.
pub const EXIT_HELD: i32 = 75;

/// How far a running run is: `progress.json`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// Steps completed.
    pub step: u64,
    /// Steps in all.
    pub steps: u64,
    /// The last step's training loss.
    pub loss: f64,
    /// Seconds since the run began (resumed segments included).
    pub secs: f64,
}

/// Serialises curve rows as `curve.csv` text (CSV quoting, so a run name with a comma or a
/// quote stays one field).
pub fn curve_csv(rows: &[CurveRow]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "run",
        "step",
        "params",
        "tokens",
        "flops",
        "loss",
        "lr",
        "secs",
        "eval_loss",
    ])
    .expect("writing to memory");
    for r in rows {
        let eval = r.eval_loss.map(|v| format!("{v}")).unwrap_or_default();
        w.write_record([
            r.run.clone(),
            r.step.to_string(),
            r.params.to_string(),
            r.tokens.to_string(),
            format!("{:e}", r.flops),
            r.loss.to_string(),
            format!("{:e}", r.lr),
            format!("{:.3}", r.secs),
            eval,
        ])
        .expect("writing to memory");
    }
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 in, UTF-8 out")
}

/// Reads `curve.csv` rows back.
///
/// # Errors
/// [`CoreError::Io`] for an unreadable file, [`CoreError::BadRow`] naming the line of a row
/// that is not a curve row.
pub fn read_curve(path: &Path) -> Result<Vec<CurveRow>, CoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for rec in rdr.deserialize::<CurveRow>() {
        rows.push(rec.map_err(|e| CoreError::BadRow {
            path: path.to_path_buf(),
            line: e.position().map_or(0, |p| p.line() as usize),
            problem: e.to_string(),
        })?);
    }
    Ok(rows)
}

pub use crate::error::read_json;

/// True when `dir` holds any of a run's three files: a run folder, finished or not (one
/// with a summary and no curve is a run too, named where it is left out).
pub fn is_run_dir(dir: &Path) -> bool {
    [CONFIG_FILE, CURVE_FILE, SUMMARY_FILE]
        .iter()
        .any(|f| dir.join(f).exists())
}

/// The run folders under `dir` (itself, if it is one), sorted.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    if dir.join(CONFIG_FILE).exists() || dir.join(CURVE_FILE).exists() {
        return vec![dir.to_path_buf()];
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && is_run_dir(p))
        .collect();
    v.sort();
    v
}

/// Refuses a run folder `run` under `parent` that is a symbolic link leading outside
/// `parent` (as a run id holding `..` is refused): nothing isoflop reads or writes for a
/// run lies outside its results folder. `None` when `run` is a plain folder, absent, or a
/// link that stays inside; else what is wrong, naming the target.
pub fn outside_problem(parent: &Path, run: &Path) -> Option<String> {
    let meta = std::fs::symlink_metadata(run).ok()?;
    if !meta.file_type().is_symlink() {
        return None;
    }
    let target = std::fs::canonicalize(run);
    let base = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
    match target {
        Ok(t) if t.starts_with(&base) && t != base => None,
        Ok(t) => Some(format!(
            "{} is a symbolic link to {}, outside {}; a run folder must lie inside its results folder",
            run.display(),
            t.display(),
            base.display()
        )),
        Err(e) => Some(format!(
            "{} is a symbolic link that cannot be followed ({e})",
            run.display()
        )),
    }
}

#[cfg(test)]
mod tests;
