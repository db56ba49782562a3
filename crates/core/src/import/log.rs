//! Logs a trainer writes itself: JSON Lines (one object per logged step) and CSV (one row per
//! logged step). Every numeric field is a metric; the step is `--step-key` (default: the
//! first of [`super::defaults::STEP`] present, else the row's position); a `--run-key`
//! field (default: `run`, `run_id`, `run_name` or `name`, where present) splits the log into
//! runs.

use super::{defaults, ImportError, RawLog, RawPoint};
use std::path::Path;

fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => match s.trim() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" => Some(f64::INFINITY),
            t => t.parse().ok(),
        },
        _ => None,
    }
}

/// The points of JSON Lines `text` into `log`, the step from `step_key` (the line's
/// position where absent). W&B's history files name wall time `_timestamp`.
///
/// # Errors
/// [`ImportError`] naming the file and line that is not a JSON object.
pub fn read_jsonl_points(
    path: &Path,
    text: &str,
    log: &mut RawLog,
    step_key: &str,
) -> Result<(), ImportError> {
    for (i, obj) in objects(path, text)? {
        push_object(log, &obj, step_key, i as f64);
    }
    Ok(())
}

fn objects(
    path: &Path,
    text: &str,
) -> Result<Vec<(usize, serde_json::Map<String, serde_json::Value>)>, ImportError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            ImportError::new(path, format!("line {}", i + 1), format!("not JSON: {e}"))
        })?;
        let serde_json::Value::Object(map) = v else {
            return Err(ImportError::new(
                path,
                format!("line {}", i + 1),
                "a JSON value that is not an object (a log has one object per line)",
            ));
        };
        out.push((i + 1, map));
    }
    Ok(out)
}

fn push_object(
    log: &mut RawLog,
    obj: &serde_json::Map<String, serde_json::Value>,
    step_key: &str,
    position: f64,
) {
    let step = obj.get(step_key).and_then(number).unwrap_or(position);
    let wall = obj.get("_timestamp").and_then(number).unwrap_or(f64::NAN);
    for (k, v) in obj {
        if k == step_key || k.starts_with('_') {
            continue;
        }
        if let Some(value) = number(v) {
            let key = log.key_id(k);
            log.points.push(RawPoint {
                step,
                key,
                value,
                wall,
            });
        }
    }
}

/// A CSV reader of `text` (cells trimmed) and its header.
///
/// # Errors
/// [`ImportError`] at line 1 for a header that cannot be read.
pub(super) fn csv_reader<'a>(
    path: &Path,
    text: &'a str,
) -> Result<(csv::Reader<&'a [u8]>, Vec<String>), ImportError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| ImportError::new(path, "line 1", format!("unreadable header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    Ok((rdr, headers))
}

/// A CSV record and its line, or the error naming the line.
pub(super) fn csv_record(
    path: &Path,
    rec: csv::Result<csv::StringRecord>,
) -> Result<(csv::StringRecord, u64), ImportError> {
    let rec = rec.map_err(|e| {
        let line = e.position().map_or(0, |p| p.line());
        ImportError::new(path, format!("line {line}"), e.to_string())
    })?;
    let line = rec.position().map_or(0, |p| p.line());
    Ok((rec, line))
}

fn chosen(keys: &[String], given: Option<&str>, names: &[&str]) -> Option<String> {
    match given {
        Some(k) => Some(k.to_string()),
        None => names
            .iter()
            .find(|n| keys.iter().any(|k| k == *n))
            .map(|n| n.to_string()),
    }
}

fn split(path: &Path, rows: Vec<(String, RawLog)>) -> Vec<RawLog> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    rows.into_iter()
        .map(|(name, mut log)| {
            log.name = if name.is_empty() { stem.clone() } else { name };
            log.source = path.to_path_buf();
            log
        })
        .collect()
}

/// Reads a JSON Lines log: one [`RawLog`] per run.
///
/// # Errors
/// [`ImportError`] naming the file and line that is not a JSON object, or the `--run-key`
/// or `--step-key` that no line has.
pub fn read_jsonl(
    path: &Path,
    text: &str,
    step_key: Option<&str>,
    run_key: Option<&str>,
) -> Result<Vec<RawLog>, ImportError> {
    let objs = objects(path, text)?;
    let keys: Vec<String> = objs.iter().flat_map(|(_, o)| o.keys().cloned()).collect();
    let step = chosen(&keys, step_key, defaults::STEP);
    let run = chosen(&keys, run_key, defaults::RUN);
    for (given, found, option) in [
        (step_key, &step, "--step-key"),
        (run_key, &run, "--run-key"),
    ] {
        if let (Some(g), Some(_)) = (given, found) {
            if !keys.iter().any(|k| k == g) {
                return Err(ImportError::new(
                    path,
                    "",
                    format!("{option} {}: no line has it", crate::error::clip(g)),
                ));
            }
        }
    }
    let mut runs: Vec<(String, RawLog)> = Vec::new();
    let mut position = vec![0usize; 0];
    for (_, obj) in &objs {
        let name = run
            .as_ref()
            .and_then(|r| obj.get(r))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .unwrap_or_default();
        let i = match runs.iter().position(|(n, _)| *n == name) {
            Some(i) => i,
            None => {
                runs.push((name, RawLog::default()));
                position.push(0);
                runs.len() - 1
            }
        };
        let mut obj = obj.clone();
        if let Some(r) = &run {
            obj.remove(r);
        }
        push_object(
            &mut runs[i].1,
            &obj,
            step.as_deref().unwrap_or(""),
            position[i] as f64,
        );
        position[i] += 1;
    }
    Ok(split(path, runs))
}

/// Reads a CSV log: one [`RawLog`] per run (as [`read_jsonl`]; empty cells are not logged).
///
/// # Errors
/// [`ImportError`] naming the file and line of a row with the wrong number of fields, or a
/// named key that is not a column.
pub fn read_csv(
    path: &Path,
    text: &str,
    step_key: Option<&str>,
    run_key: Option<&str>,
) -> Result<Vec<RawLog>, ImportError> {
    let (mut rdr, headers) = csv_reader(path, text)?;
    for (given, option) in [(step_key, "--step-key"), (run_key, "--run-key")] {
        if let Some(g) = given {
            if !headers.iter().any(|h| h == g) {
                return Err(ImportError::new(
                    path,
                    "line 1",
                    format!(
                        "{option} {}: no such column; columns: {}",
                        crate::error::clip(g),
                        crate::error::list(&headers, ", ")
                    ),
                ));
            }
        }
    }
    let step = chosen(&headers, step_key, defaults::STEP)
        .and_then(|s| headers.iter().position(|h| *h == s));
    let run =
        chosen(&headers, run_key, defaults::RUN).and_then(|s| headers.iter().position(|h| *h == s));
    let mut runs: Vec<(String, RawLog)> = Vec::new();
    let mut ids: Vec<Vec<u32>> = Vec::new();
    for (n, rec) in rdr.records().enumerate() {
        let (rec, line) = csv_record(path, rec)?;
        let name = run.and_then(|r| rec.get(r)).unwrap_or("").to_string();
        let i = match runs.iter().position(|(x, _)| *x == name) {
            Some(i) => i,
            None => {
                let mut log = RawLog::default();
                let k = headers.iter().map(|h| log.key_id(h)).collect();
                runs.push((name, log));
                ids.push(k);
                runs.len() - 1
            }
        };
        let step_value = match step {
            Some(s) => rec.get(s).unwrap_or("").parse::<f64>().map_err(|_| {
                ImportError::new(
                    path,
                    format!("line {line}"),
                    format!(
                        "step '{}' is not a number",
                        crate::error::clip(rec.get(s).unwrap_or(""))
                    ),
                )
            })?,
            None => n as f64,
        };
        for (c, cell) in rec.iter().enumerate() {
            if Some(c) == step || Some(c) == run || cell.is_empty() {
                continue;
            }
            if let Some(value) = number(&serde_json::Value::String(cell.to_string())) {
                runs[i].1.points.push(RawPoint {
                    step: step_value,
                    key: ids[i][c],
                    value,
                    wall: f64::NAN,
                });
            }
        }
    }
    Ok(split(path, runs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jsonl_log_of_two_runs_and_a_bad_line() {
        let text = "{\"run\":\"a\",\"step\":1,\"loss\":3}\n{\"run\":\"b\",\"step\":1,\"loss\":4}\n{\"run\":\"a\",\"step\":2,\"loss\":2.5}\n";
        let logs = read_jsonl(Path::new("log.jsonl"), text, None, None).unwrap();
        assert_eq!(
            logs.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert_eq!(
            logs[0]
                .points
                .iter()
                .map(|p| (p.step, p.value))
                .collect::<Vec<_>>(),
            vec![(1.0, 3.0), (2.0, 2.5)]
        );
        let e = read_jsonl(
            Path::new("log.jsonl"),
            "{\"loss\":1}\n{loss: 2}\n",
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(e.at, "line 2");
    }

    #[test]
    fn a_csv_log() {
        let logs = read_csv(
            Path::new("log.csv"),
            "iter,loss,lr\n10,3.0,0.1\n20,2.0,\n",
            None,
            None,
        )
        .unwrap();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].name, "log");
        assert_eq!(logs[0].points.len(), 3);
        let e = read_csv(Path::new("log.csv"), "iter,loss\n10,3.0\n20\n", None, None).unwrap_err();
        assert_eq!(e.at, "line 3");
    }
}
