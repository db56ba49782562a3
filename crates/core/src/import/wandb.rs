//! W&B runs: a run folder (`wandb/run-DATE-ID/` or `wandb/offline-run-DATE-ID/`) and the CSV
//! the W&B web page exports.
//!
//! A run folder's history is in its datastore `run-ID.wandb` (what both online and offline
//! runs write today), or in `files/wandb-history.jsonl` (older clients, and runs downloaded
//! with their files). The datastore is LevelDB's log format with W&B's header: 7 bytes
//! `:W&B`, magic 0xBEE1 (u16), version 0; then 32 KiB blocks of records, each `u32 CRC-32
//! (zlib's, of the type byte and the data) | u16 length | u8 type` (1 full, 2 first, 3 middle,
//! 4 last: a record split across blocks), zero padding where fewer than 7 bytes are left in
//! a block. Each record is a `Record` message (wandb/proto/wandb_internal.proto): `history` =
//! 2 (items: `key` = 1, `nested_key` = 2, `integer` = 5, `number` = 6, `value_json` = 16;
//! `step` = 2 with `num` = 1), `config` = 5 (items as history's), `run` = 17 (`run_id` = 1,
//! `config` = 4, `display_name` = 8). The run's config is also read from
//! `files/config.yaml` where the folder has one (its top-level keys' `value:` scalars).

use super::wire::{Fields, Value};
use super::{crc32, ImportError, RawLog, RawPoint};
use std::collections::BTreeMap;
use std::path::Path;

const BLOCK: usize = 32 * 1024;
const HEADER: usize = 7;

/// Whether `dir` is a W&B run folder.
pub fn is_run_dir(dir: &Path) -> bool {
    datastore(dir).is_some() || dir.join("files").join("wandb-history.jsonl").is_file()
}

fn datastore(dir: &Path) -> Option<std::path::PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wandb") && p.is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Reads a W&B run folder.
///
/// # Errors
/// [`ImportError`] naming the datastore and the byte offset of a record that fails its
/// checksum or is not a W&B record, or the history file and the line that is not JSON.
pub fn read_run_dir(dir: &Path) -> Result<RawLog, ImportError> {
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut log = RawLog {
        name: folder.rsplit('-').next().unwrap_or(&folder).to_string(),
        source: dir.to_path_buf(),
        ..RawLog::default()
    };
    let history = dir.join("files").join("wandb-history.jsonl");
    if let Some(store) = datastore(dir) {
        let bytes =
            std::fs::read(&store).map_err(|e| ImportError::new(&store, "", e.to_string()))?;
        read_datastore(&store, &bytes, &mut log)?;
    } else {
        let text = std::fs::read_to_string(&history)
            .map_err(|e| ImportError::new(&history, "", e.to_string()))?;
        super::log::read_jsonl_points(&history, &text, &mut log, "_step")?;
    }
    let yaml = dir.join("files").join("config.yaml");
    if let Ok(text) = std::fs::read_to_string(&yaml) {
        for (k, v) in config_yaml(&text) {
            log.config.entry(k).or_insert(v);
        }
    }
    Ok(log)
}

/// The top-level keys of W&B's `config.yaml` with the scalar under each one's `value:`.
fn config_yaml(text: &str) -> BTreeMap<String, serde_json::Value> {
    let mut out = BTreeMap::new();
    let mut key: Option<String> = None;
    for line in text.lines() {
        if !line.starts_with(' ') && line.trim_end().ends_with(':') {
            key = Some(
                line.trim_end()
                    .trim_end_matches(':')
                    .trim_matches('"')
                    .to_string(),
            );
        } else if let (Some(k), Some(v)) = (&key, line.trim().strip_prefix("value:")) {
            let v = v.trim();
            if !v.is_empty() && !k.starts_with('_') {
                let value = serde_json::from_str(v).unwrap_or_else(|_| {
                    serde_json::Value::String(v.trim_matches('\'').to_string())
                });
                out.insert(k.clone(), value);
            }
        }
    }
    out
}

/// A JSON value of W&B's, where NaN and infinities are written bare.
fn json_number(text: &[u8]) -> Option<f64> {
    let t = std::str::from_utf8(text).ok()?.trim();
    match t {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
        _ => t.parse::<f64>().ok(),
    }
}

/// The key (joined nested keys) and value of a history or config item.
fn item(bytes: &[u8]) -> Result<(String, Option<f64>, Option<&[u8]>), (usize, &'static str)> {
    let (mut key, mut nested, mut number, mut json) = (String::new(), Vec::new(), None, None);
    let mut f = Fields::new(bytes);
    for (field, v) in f.by_ref() {
        match (field, v) {
            (1, Value::Bytes(k)) => key = String::from_utf8_lossy(k).into_owned(),
            (2, Value::Bytes(k)) => nested.push(String::from_utf8_lossy(k).into_owned()),
            (5, Value::Varint(i)) => number = Some(i as i64 as f64),
            (6, Value::Fixed64(b)) => number = Some(f64::from_bits(b)),
            (16, Value::Bytes(j)) => json = Some(j),
            _ => {}
        }
    }
    if let Some(e) = f.error() {
        return Err(e);
    }
    if key.is_empty() {
        key = nested.join(".");
    }
    Ok((key, number.or_else(|| json.and_then(json_number)), json))
}

/// Reads the records of a datastore's bytes into `log`.
///
/// # Errors
/// As [`read_run_dir`].
pub fn read_datastore(path: &Path, bytes: &[u8], log: &mut RawLog) -> Result<(), ImportError> {
    if bytes.len() < HEADER || &bytes[..4] != b":W&B" {
        return Err(ImportError::new(
            path,
            "byte 0",
            "not a W&B datastore (it does not begin with ':W&B')",
        ));
    }
    let mut pos = HEADER;
    let mut pending: Vec<u8> = Vec::new();
    let mut start = pos;
    while pos < bytes.len() {
        let left_in_block = BLOCK - pos % BLOCK;
        if left_in_block < 7 {
            pos += left_in_block;
            continue;
        }
        if bytes.len() - pos < 7 {
            log.warnings.push(format!("{}: the last record, at byte {pos}, is cut short (a run still writing?): read up to it", path.display()));
            break;
        }
        let crc = u32::from_le_bytes(bytes[pos..pos + 4].try_into().expect("4 bytes"));
        let len = usize::from(u16::from_le_bytes(
            bytes[pos + 4..pos + 6].try_into().expect("2 bytes"),
        ));
        let ty = bytes[pos + 6];
        if crc == 0 && len == 0 && ty == 0 {
            // Zero padding to the end of a block.
            pos += left_in_block;
            continue;
        }
        let end = pos + 7 + len;
        if end > bytes.len() {
            log.warnings.push(format!("{}: the last record, at byte {pos}, is cut short (a run still writing?): read up to it", path.display()));
            break;
        }
        let data = &bytes[pos + 7..end];
        if crc32(crc32(0, &[ty]), data) != crc {
            return Err(ImportError::new(
                path,
                format!("byte {pos}"),
                "a record fails its checksum: the file is damaged",
            ));
        }
        match ty {
            1 => {
                start = pos;
                record(data, log).map_err(|(at, what)| bad(path, pos + 7 + at, what))?;
            }
            2 => {
                start = pos;
                pending.clear();
                pending.extend_from_slice(data);
            }
            3 => pending.extend_from_slice(data),
            4 => {
                pending.extend_from_slice(data);
                let whole = std::mem::take(&mut pending);
                record(&whole, log).map_err(|(at, what)| bad(path, start, what).with_offset(at))?;
            }
            other => {
                return Err(ImportError::new(
                    path,
                    format!("byte {pos}"),
                    format!("a record of type {other} (W&B writes types 1 to 4)"),
                ))
            }
        }
        pos = end;
    }
    Ok(())
}

fn bad(path: &Path, at: usize, what: &str) -> ImportError {
    ImportError::new(
        path,
        format!("byte {at}"),
        format!("not a W&B record: {what}"),
    )
}

impl ImportError {
    fn with_offset(mut self, at: usize) -> ImportError {
        self.at.push_str(&format!(" (offset {at} of the record)"));
        self
    }
}

fn record(data: &[u8], log: &mut RawLog) -> Result<(), (usize, &'static str)> {
    let mut f = Fields::new(data);
    for (field, v) in f.by_ref() {
        let Value::Bytes(body) = v else { continue };
        match field {
            2 => history(body, log)?,
            5 => config(body, log)?,
            17 => {
                let mut run_id = None;
                let mut display = None;
                for (field, v) in Fields::new(body) {
                    match (field, v) {
                        (1, Value::Bytes(id)) => {
                            run_id = Some(String::from_utf8_lossy(id).into_owned())
                        }
                        (4, Value::Bytes(c)) => config(c, log)?,
                        (8, Value::Bytes(n)) => {
                            display = Some(String::from_utf8_lossy(n).into_owned())
                        }
                        _ => {}
                    }
                }
                if let Some(name) = display
                    .filter(|n| !n.is_empty())
                    .or(run_id.filter(|n| !n.is_empty()))
                {
                    log.name = name;
                }
            }
            _ => {}
        }
    }
    match f.error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn config(body: &[u8], log: &mut RawLog) -> Result<(), (usize, &'static str)> {
    for (field, v) in Fields::new(body) {
        if let (1, Value::Bytes(it)) = (field, v) {
            let (key, _, json) = item(it)?;
            if key.starts_with('_') {
                continue;
            }
            if let Some(value) =
                json.and_then(|j| serde_json::from_slice::<serde_json::Value>(j).ok())
            {
                flatten(&key, value, &mut log.config);
            }
        }
    }
    Ok(())
}

/// A config value under `key`; objects become `key.sub` entries (W&B's own
/// `{"value": ...}` wrapper is unwrapped).
fn flatten(key: &str, value: serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match value {
        serde_json::Value::Object(map) => {
            if map.len() <= 2 && map.contains_key("value") {
                let v = map.get("value").cloned().unwrap_or_default();
                return flatten(key, v, out);
            }
            for (k, v) in map {
                flatten(&format!("{key}.{k}"), v, out);
            }
        }
        v => {
            out.insert(key.to_string(), v);
        }
    }
}

fn history(body: &[u8], log: &mut RawLog) -> Result<(), (usize, &'static str)> {
    let mut items = Vec::new();
    let mut step = None;
    let mut f = Fields::new(body);
    for (field, v) in f.by_ref() {
        match (field, v) {
            (1, Value::Bytes(it)) => items.push(item(it)?),
            (2, Value::Bytes(s)) => {
                for (field, v) in Fields::new(s) {
                    if let (1, Value::Varint(n)) = (field, v) {
                        step = Some(n as i64 as f64);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(e) = f.error() {
        return Err(e);
    }
    let value_of = |k: &str| {
        items
            .iter()
            .find(|(key, ..)| key == k)
            .and_then(|(_, v, _)| *v)
    };
    let step = value_of("_step").or(step).unwrap_or(0.0);
    let wall = value_of("_timestamp").unwrap_or(f64::NAN);
    for (key, value, _) in &items {
        if key.starts_with('_') {
            continue;
        }
        if let Some(value) = value {
            let k = log.key_id(key);
            log.points.push(RawPoint {
                step,
                key: k,
                value: *value,
                wall,
            });
        }
    }
    Ok(())
}

/// Reads the CSV the W&B web page exports: a `Step` column (or `step_key`), then one column
/// per run and metric, `RUN - METRIC` (its `__MIN` and `__MAX` columns are left out), one
/// [`RawLog`] per run.
///
/// # Errors
/// [`ImportError`] naming the file and line of a row that does not parse, or the header
/// that has no step column or no `RUN - METRIC` column.
pub fn read_export(
    path: &Path,
    text: &str,
    step_key: Option<&str>,
) -> Result<Vec<RawLog>, ImportError> {
    let (mut rdr, headers) = super::log::csv_reader(path, text)?;
    let step_col = match step_key {
        Some(k) => headers.iter().position(|h| h == k),
        None => super::defaults::STEP
            .iter()
            .find_map(|k| headers.iter().position(|h| h == k)),
    }
    .ok_or_else(|| {
        ImportError::new(
            path,
            "line 1",
            format!(
                "no step column (the export's `Step`; --step-key names another); columns: {}",
                crate::error::list(&headers, ", ")
            ),
        )
    })?;
    let mut logs: Vec<RawLog> = Vec::new();
    let mut cols: Vec<(usize, usize, u32)> = Vec::new(); // (column, log, key)
    for (i, h) in headers.iter().enumerate() {
        if h.ends_with("__MIN") || h.ends_with("__MAX") {
            continue;
        }
        let Some((run, metric)) = h.rsplit_once(" - ") else {
            continue;
        };
        let li = match logs.iter().position(|l| l.name == run) {
            Some(li) => li,
            None => {
                logs.push(RawLog {
                    name: run.to_string(),
                    source: path.to_path_buf(),
                    ..RawLog::default()
                });
                logs.len() - 1
            }
        };
        let k = logs[li].key_id(metric);
        cols.push((i, li, k));
    }
    if logs.is_empty() {
        return Err(ImportError::new(
            path,
            "line 1",
            "no `RUN - METRIC` column: not a W&B export (read it with --format csv)",
        ));
    }
    for rec in rdr.records() {
        let (rec, line) = super::log::csv_record(path, rec)?;
        let step: f64 = rec.get(step_col).unwrap_or("").parse().map_err(|_| {
            ImportError::new(
                path,
                format!("line {line}"),
                format!(
                    "step '{}' is not a number",
                    crate::error::clip(rec.get(step_col).unwrap_or(""))
                ),
            )
        })?;
        for &(c, li, k) in &cols {
            let cell = rec.get(c).unwrap_or("");
            if cell.is_empty() {
                continue;
            }
            let value = json_number(cell.as_bytes()).ok_or_else(|| {
                ImportError::new(
                    path,
                    format!("line {line}"),
                    format!(
                        "column '{}': '{}' is not a number",
                        crate::error::clip(&headers[c]),
                        crate::error::clip(cell)
                    ),
                )
            })?;
            logs[li].points.push(RawPoint {
                step,
                key: k,
                value,
                wall: f64::NAN,
            });
        }
    }
    Ok(logs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_splits_into_runs() {
        let text = "Step,a - train/loss,a - train/loss__MIN,a - train/loss__MAX,b - train/loss\n1,3.0,2.9,3.1,\n2,2.5,2.4,2.6,2.7\n";
        let logs = read_export(Path::new("export.csv"), text, None).unwrap();
        assert_eq!(logs.len(), 2);
        assert_eq!(
            logs[0].points.iter().map(|p| p.value).collect::<Vec<_>>(),
            vec![3.0, 2.5]
        );
        assert_eq!(logs[1].points.len(), 1);
        let e = read_export(Path::new("export.csv"), "Step,a - loss\n1,x\n", None).unwrap_err();
        assert_eq!(e.at, "line 2");
    }

    #[test]
    fn config_yaml_scalars() {
        let c = config_yaml("_wandb:\n  value:\n    cli_version: 0.16\nparams:\n  desc: null\n  value: 12345\nname:\n  value: small\n");
        assert_eq!(c.get("params"), Some(&serde_json::json!(12345)));
        assert_eq!(c.get("name"), Some(&serde_json::json!("small")));
        assert!(!c.contains_key("_wandb"));
    }
}
