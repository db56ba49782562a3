//! Hugging Face `trainer_state.json` (what `transformers.Trainer` saves with each checkpoint
//! and at the end): `log_history`, a list of the dicts the Trainer logged, each with its
//! `step` (training entries with `loss`, `learning_rate`, and `num_input_tokens_seen` where
//! the Trainer counts tokens, which recent versions log with `train_runtime`; evaluation
//! entries with `eval_loss`; a last entry with `train_runtime` and the mean `train_loss` over
//! the whole run, which is not a point of the curve: `train_loss` is left out of entries
//! that have `train_runtime`), and `max_steps`, the configured total.

use super::{ImportError, RawLog, RawPoint};
use std::path::Path;

/// Reads a `trainer_state.json`. The run is named after the Trainer's output folder (the
/// folder above `checkpoint-N/` where the file is in a checkpoint).
///
/// # Errors
/// [`ImportError`] naming the file, line and column of JSON that does not parse, or the
/// entry of `log_history` that is not an object.
pub fn read_trainer_state(path: &Path, text: &str) -> Result<RawLog, ImportError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        ImportError::new(
            path,
            format!("line {}, column {}", e.line(), e.column()),
            format!("not JSON: {e}"),
        )
    })?;
    let history = v
        .get("log_history")
        .and_then(|h| h.as_array())
        .ok_or_else(|| {
            ImportError::new(
                path,
                "",
                "no `log_history` list: not a Trainer's trainer_state.json",
            )
        })?;
    let mut dir = path.parent().unwrap_or(Path::new("."));
    if dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("checkpoint-"))
    {
        dir = dir.parent().unwrap_or(dir);
    }
    let name = std::fs::canonicalize(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "run".into());
    let mut log = RawLog {
        name,
        source: path.to_path_buf(),
        total_steps: v
            .get("max_steps")
            .and_then(|s| s.as_u64())
            .filter(|&s| s > 0),
        ..RawLog::default()
    };
    for (i, entry) in history.iter().enumerate() {
        let obj = entry.as_object().ok_or_else(|| {
            ImportError::new(path, format!("log_history entry {i}"), "not an object")
        })?;
        let summary = obj.contains_key("train_runtime");
        let step = obj
            .get("step")
            .and_then(|s| s.as_f64())
            .ok_or_else(|| ImportError::new(path, format!("log_history entry {i}"), "no `step`"))?;
        for (k, val) in obj {
            if k == "step" || (summary && k == "train_loss") {
                continue;
            }
            if let Some(value) = val.as_f64() {
                let key = log.key_id(k);
                log.points.push(RawPoint {
                    step,
                    key,
                    value,
                    wall: f64::NAN,
                });
            }
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trainers_summary_entry_is_not_a_point() {
        let text = r#"{"max_steps": 20, "log_history": [
            {"loss": 3.0, "learning_rate": 0.001, "step": 10, "num_input_tokens_seen": 1280},
            {"eval_loss": 3.1, "step": 10},
            {"train_runtime": 5.0, "train_loss": 2.9, "step": 10}]}"#;
        let log = read_trainer_state(Path::new("out/trainer_state.json"), text).unwrap();
        assert_eq!(log.total_steps, Some(20));
        assert!(!log.keys.contains(&"train_loss".to_string()));
        assert_eq!(log.points.len(), 5); // the summary entry's train_runtime, not its train_loss
        let e = read_trainer_state(Path::new("t.json"), "{\"log_history\": [\n{\"loss\": }]}")
            .unwrap_err();
        assert!(e.at.starts_with("line 2"), "{e}");
    }
}
