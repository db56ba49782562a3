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
    /// Token horizon: the cosine schedule ends exactly here.
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
    /// The corpus and how it was tokenised.
    pub data: String,
    /// Device ("cpu", "cuda").
    pub device: String,
    /// Threads used on CPU.
    pub threads: usize,
    /// Who wrote the run ("isoflop 0.1.0", or an external trainer).
    pub trainer: String,
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
    /// Last training loss (smoothed over the last logged rows).
    pub final_loss: Option<f64>,
    /// Last held-out loss.
    pub final_eval_loss: Option<f64>,
    /// Wall-clock seconds, resumed segments included.
    pub secs: f64,
    /// Mean training throughput.
    pub tokens_per_sec: f64,
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

/// Serialises curve rows as `curve.csv` text.
pub fn curve_csv(rows: &[CurveRow]) -> String {
    let mut s = String::from("run,step,params,tokens,flops,loss,lr,secs,eval_loss\n");
    for r in rows {
        let eval = r.eval_loss.map(|v| format!("{v}")).unwrap_or_default();
        s += &format!(
            "{},{},{},{},{:e},{},{:e},{:.3},{}\n",
            r.run, r.step, r.params, r.tokens, r.flops, r.loss, r.lr, r.secs, eval
        );
    }
    s
}

/// Reads `curve.csv` rows back.
///
/// # Errors
/// A message naming the file and line.
pub fn read_curve(path: &Path) -> Result<Vec<CurveRow>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, rec) in rdr.deserialize::<CurveRow>().enumerate() {
        rows.push(rec.map_err(|e| format!("{}:{}: {e}", path.display(), i + 2))?);
    }
    Ok(rows)
}

/// Reads a JSON file into `T`.
///
/// # Errors
/// A message naming the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
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
        .filter(|p| p.is_dir() && p.join(CURVE_FILE).exists())
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_and_leaves_no_temporary() {
        let d = std::env::temp_dir().join(format!("isoflop-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("x.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn curve_round_trips_and_reads_as_a_run_table() {
        let rows: Vec<CurveRow> = (1..=3)
            .map(|s| CurveRow {
                run: "r1".into(),
                step: s,
                params: 1000,
                tokens: 512 * s,
                flops: 6.0 * 1000.0 * 512.0 * s as f64,
                loss: 5.0 - s as f64 * 0.1,
                lr: 1e-3,
                secs: s as f64,
                eval_loss: (s == 3).then_some(4.5),
            })
            .collect();
        let text = curve_csv(&rows);
        let d = std::env::temp_dir().join(format!("isoflop-curve-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join(CURVE_FILE);
        std::fs::write(&p, &text).unwrap();
        let back = read_curve(&p).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].eval_loss, Some(4.5));
        assert_eq!(back[1].tokens, 1024);
        let t = crate::RunTable::from_csv(&p, &text).unwrap();
        assert!(t.has_curves());
        assert_eq!(t.final_rows()[0].loss, 4.7);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
