//! Runs that already exist, brought in as run records: the one reader of other trainers'
//! logs (W&B run folders and CSV exports, TensorBoard event files, Hugging Face
//! `trainer_state.json`, any JSON Lines or CSV log). `isoflop import` and Python's
//! `isoflop.import_runs` call [`import_runs`].
//!
//! Each format is read into a [`RawLog`] (scalars by step, with the run's config where the
//! format has one); [`assemble`] then picks the loss, held-out loss, tokens and learning rate
//! by name ([`Keys`], defaults that find the usual names), and the run's parameters
//! ([`ImportOptions`]), into an [`ImportedRun`]; [`mod@write`] writes it as a run record
//! (docs/run-records.md) or as rows of a run table.
//!
//! A run whose last logged step is below its configured total (`max_steps` of a
//! `trainer_state.json`, a W&B config's `max_steps`/`total_steps`/`train_steps`/`max_iters`,
//! or `--total-steps`) is unfinished: it gets no `summary.json`, so the fits leave it out
//! and say so.

use crate::arch::ArchCount;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod assemble;
mod crc;
mod discover;
mod hf;
mod log;
pub mod tensorboard;
mod wandb;
mod wire;
pub mod write;

pub use assemble::assemble;
pub use crc::{crc32, crc32c, masked_crc32c};
pub use discover::{discover, Source};
pub use write::{import_runs, ImportReport, Output};

/// The formats isoflop reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// `events.out.tfevents.*` files (TFRecord framing, `Event` messages).
    Tensorboard,
    /// A W&B run folder, online or offline.
    WandbRun,
    /// The CSV the W&B web page exports: `Step`, then `NAME - metric` columns.
    WandbCsv,
    /// A Hugging Face `trainer_state.json`.
    TrainerState,
    /// JSON Lines, one object per logged step.
    Jsonl,
    /// A CSV log, one row per logged step.
    Csv,
}

impl Format {
    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Tensorboard => "tensorboard",
            Format::WandbRun => "wandb",
            Format::WandbCsv => "wandb-csv",
            Format::TrainerState => "trainer-state",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }

    /// Every format, for messages and `--format`.
    pub const ALL: [Format; 6] = [
        Format::Tensorboard,
        Format::WandbRun,
        Format::WandbCsv,
        Format::TrainerState,
        Format::Jsonl,
        Format::Csv,
    ];

    /// The format named `name` ([`Format::name`]).
    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A source that cannot be read: the file, where in it (a line, a record, a byte offset),
/// and what is wrong.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{}{}: {problem}", path.display(), if at.is_empty() { String::new() } else { format!(": {at}") })]
pub struct ImportError {
    /// The file or folder.
    pub path: PathBuf,
    /// Where in it ("line 4", "byte 1288", "record 7"), or empty.
    pub at: String,
    /// What is wrong.
    pub problem: String,
}

impl ImportError {
    /// An error at `at` of `path`.
    pub fn new(path: &Path, at: impl Into<String>, problem: impl Into<String>) -> ImportError {
        ImportError {
            path: path.to_path_buf(),
            at: at.into(),
            problem: problem.into(),
        }
    }
}

/// One logged scalar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawPoint {
    /// The step it was logged at.
    pub step: f64,
    /// Index into [`RawLog::keys`].
    pub key: u32,
    /// The value.
    pub value: f64,
    /// Seconds since the epoch when it was logged (NaN where unknown).
    pub wall: f64,
}

/// One run's scalars as a format holds them, before any key is chosen.
#[derive(Clone, Debug, Default)]
pub struct RawLog {
    /// The run's name, from the source (a folder's name, a W&B run id, a column's prefix).
    pub name: String,
    /// Where it came from.
    pub source: PathBuf,
    /// Every metric name, in order of first appearance.
    pub keys: Vec<String>,
    /// The scalars, in file order.
    pub points: Vec<RawPoint>,
    /// The run's config, flattened (nested keys joined with `.`), where the format has one.
    pub config: BTreeMap<String, serde_json::Value>,
    /// The configured total of steps, where the source says.
    pub total_steps: Option<u64>,
    /// What the reader noticed (a truncated final record).
    pub warnings: Vec<String>,
}

impl RawLog {
    /// The index of `key`, adding it if new.
    pub fn key_id(&mut self, key: &str) -> u32 {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i as u32,
            None => {
                self.keys.push(key.to_string());
                (self.keys.len() - 1) as u32
            }
        }
    }
}

/// The metric names to take, each `None` for the defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Keys {
    /// The training loss (`--loss-key`).
    pub loss: Option<String>,
    /// The held-out loss (`--eval-loss-key`).
    pub eval_loss: Option<String>,
    /// The step, in JSON Lines and CSV logs (`--step-key`).
    pub step: Option<String>,
    /// Tokens trained on so far (`--tokens-key`).
    pub tokens: Option<String>,
    /// The learning rate (`--lr-key`).
    pub lr: Option<String>,
    /// The run's name, in logs that hold several runs (`--run-key`).
    pub run: Option<String>,
    /// The parameter count, in a run's config or as a logged scalar (`--params-key`).
    pub params: Option<String>,
}

/// The names tried, in order, where a key is not given.
pub mod defaults {
    /// The training loss.
    pub const LOSS: &[&str] = &[
        "train/loss",
        "loss",
        "train_loss",
        "lm loss",
        "train/lm_loss",
        "reduced_train_loss",
        "loss_metrics/global_avg_loss",
        "training_loss",
        "train/loss_step",
    ];
    /// The held-out loss.
    pub const EVAL_LOSS: &[&str] = &[
        "eval/loss",
        "eval_loss",
        "val/loss",
        "val_loss",
        "validation/loss",
        "valid/loss",
        "validation_loss",
        "lm loss validation",
    ];
    /// The step.
    pub const STEP: &[&str] = &[
        "step",
        "_step",
        "global_step",
        "trainer/global_step",
        "train/global_step",
        "iter",
        "iteration",
        "Step",
    ];
    /// Tokens so far.
    pub const TOKENS: &[&str] = &[
        "tokens",
        "train/tokens",
        "num_input_tokens_seen",
        "train/num_input_tokens_seen",
        "tokens_seen",
        "consumed_tokens",
        "consumed-tokens",
        "total_tokens",
        "ntokens",
    ];
    /// The learning rate.
    pub const LR: &[&str] = &[
        "lr",
        "learning_rate",
        "train/learning_rate",
        "train/lr",
        "learning-rate",
        "optimizer/lr",
    ];
    /// The run's name.
    pub const RUN: &[&str] = &["run", "run_id", "run_name", "name"];
    /// The parameter count.
    pub const PARAMS: &[&str] = &[
        "params",
        "n_params",
        "num_params",
        "num_parameters",
        "n_parameters",
        "model/num_parameters",
        "parameters",
    ];
    /// The configured total of steps.
    pub const TOTAL_STEPS: &[&str] = &["max_steps", "total_steps", "train_steps", "max_iters"];
}

/// What `isoflop import` is told.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The format of every source (default: told by its name and contents).
    pub format: Option<Format>,
    /// The metric names.
    pub keys: Keys,
    /// Tokens per optimizer step, where the log has no token count.
    pub tokens_per_step: Option<f64>,
    /// Every run's total parameters (`--params`).
    pub params: Option<f64>,
    /// Every run's architecture, counted (`--model-config`): gives the parameter and FLOP
    /// columns of each convention.
    pub model: Option<ArchCount>,
    /// The configured total of steps, for sources that do not say (`--total-steps`).
    pub total_steps: Option<u64>,
}

/// One row of an imported curve.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImportedRow {
    /// The step.
    pub step: u64,
    /// Tokens trained on so far.
    pub tokens: f64,
    /// The training loss.
    pub loss: f64,
    /// The learning rate, where logged.
    pub lr: Option<f64>,
    /// Seconds since the run's first logged scalar, where the format keeps wall time.
    pub secs: Option<f64>,
    /// The held-out loss, where logged at this step.
    pub eval_loss: Option<f64>,
}

/// A run, read and assembled: what [`mod@write`] writes.
#[derive(Clone, Debug)]
pub struct ImportedRun {
    /// The run's name as the source gives it.
    pub name: String,
    /// Where it came from.
    pub source: PathBuf,
    /// The format.
    pub format: Format,
    /// Its curve.
    pub rows: Vec<ImportedRow>,
    /// Total parameters.
    pub params: f64,
    /// Where [`ImportOptions::model`] was given: every count.
    pub model: Option<ArchCount>,
    /// The configured total of steps, where known.
    pub total_steps: Option<u64>,
    /// False when the last logged step is below the configured total.
    pub finished: bool,
    /// The last held-out loss logged, at or after the last training row's step.
    pub final_eval_loss: Option<f64>,
    /// The metric names used (loss, eval_loss, tokens, lr), for its config.
    pub used: BTreeMap<String, String>,
    /// What was noticed.
    pub warnings: Vec<String>,
    /// The run's own config, as the source holds it.
    pub config: BTreeMap<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(points: &[(f64, &str, f64)]) -> RawLog {
        let mut l = RawLog {
            name: "r".into(),
            source: "x".into(),
            ..RawLog::default()
        };
        for &(step, key, value) in points {
            let k = l.key_id(key);
            l.points.push(RawPoint {
                step,
                key: k,
                value,
                wall: f64::NAN,
            });
        }
        l
    }

    #[test]
    fn assembles_the_last_value_of_each_step_and_interpolates_tokens() {
        let l = log(&[
            (10.0, "train/loss", 3.0),
            (10.0, "tokens", 1000.0),
            (20.0, "train/loss", 2.5),
            (20.0, "train/loss", 2.4), // logged again after a resume: the last wins
            (30.0, "train/loss", 2.2),
            (30.0, "tokens", 3000.0),
            (30.0, "eval/loss", 2.3),
        ]);
        let opts = ImportOptions {
            params: Some(1e6),
            ..ImportOptions::default()
        };
        let r = assemble(l, Format::Jsonl, &opts).unwrap();
        let got: Vec<(u64, f64, f64)> = r.rows.iter().map(|r| (r.step, r.tokens, r.loss)).collect();
        assert_eq!(
            got,
            vec![(10, 1000.0, 3.0), (20, 2000.0, 2.4), (30, 3000.0, 2.2)]
        );
        assert_eq!(r.final_eval_loss, Some(2.3));
        assert!(r.finished);
    }

    #[test]
    fn missing_pieces_are_named() {
        let opts = ImportOptions {
            params: Some(1e6),
            ..ImportOptions::default()
        };
        let e = assemble(log(&[(1.0, "acc", 0.5)]), Format::Jsonl, &opts).unwrap_err();
        assert!(
            e.to_string()
                .contains("no training loss among its metrics (acc)"),
            "{e}"
        );
        let e = assemble(log(&[(1.0, "loss", 2.0)]), Format::Jsonl, &opts).unwrap_err();
        assert!(e.to_string().contains("--tokens-per-step"), "{e}");
        let none = ImportOptions {
            tokens_per_step: Some(10.0),
            ..ImportOptions::default()
        };
        let e = assemble(log(&[(1.0, "loss", 2.0)]), Format::Jsonl, &none).unwrap_err();
        assert!(e.to_string().contains("no parameter count"), "{e}");
        let unfinished = ImportOptions {
            tokens_per_step: Some(10.0),
            params: Some(5.0),
            total_steps: Some(100),
            ..ImportOptions::default()
        };
        let r = assemble(log(&[(50.0, "loss", 2.0)]), Format::Jsonl, &unfinished).unwrap();
        assert!(!r.finished);
    }
}
