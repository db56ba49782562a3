//! Run tables: the rows `isoflop fit` reads, from CSV or JSON Lines.
//!
//! A row is one observation of a training run: its size N (`params`), the tokens D it had
//! seen (`tokens`), the FLOPs C it had spent (`flops`) and its loss. Rows that share a `run`
//! form that run's training curve (Approach 1); the last row of each run is its final loss
//! (Approaches 2 and 3).
//!
//! ## Column names
//! Headers are matched case-insensitively with spaces, `_`, `-` and `.` ignored. The first
//! name of each list that is present wins.
//!
//! | quantity | accepted headers |
//! | --- | --- |
//! | params (N) | `params`, `N`, `Model Size`, `parameters`, `n_params`, `num_params`, `params_N` |
//! | tokens (D) | `tokens`, `D`, `n_tokens`, `num_tokens`, `training_tokens`, `tokens_D` |
//! | flops (C) | `flops`, `C`, `Training FLOP`, `training_flops`, `FLOP`, `compute` |
//! | loss | `loss`, `val_loss`, `eval_loss`, `final_loss`, `train_loss`, `L` |
//! | budget (optional) | `budget`, `flop_budget`, `isoflop` |
//! | unique tokens U (optional) | `unique_tokens`, `U`, `unique_tokens_U`, `unique` |
//! | run (optional) | `run`, `run_id`, `run_name`, `name` |
//! | step (optional) | `step`, `iter`, `iteration` |
//!
//! | final loss of the run (optional) | `final_loss`, `run_final_loss` |
//!
//! A `final_loss` column (beside another loss column) gives each run's final loss for
//! Approaches 2 and 3, in place of its last row's loss: `isoflop collect` writes the held-out
//! loss at the end of each run there, which is less noisy than one batch's training loss.
//!
//! One of tokens and flops may be missing: D is then derived as C/(6N), or C as 6ND, and
//! the table's [`RunTable::notes`] say so.

use crate::error::{CoreError, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file a sweep writes into its results folder: the planned budget of each run, so the
/// reader of run folders ([`RunTable::read_runs`]) knows what a run was planned for.
pub const PLAN_FILE: &str = "plan.json";

/// The contents of [`PLAN_FILE`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlanIndex {
    /// By run id.
    pub runs: BTreeMap<String, PlannedBudget>,
}

/// What [`PLAN_FILE`] says of one run.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlannedBudget {
    /// The IsoFLOP budget it was planned for, if any.
    pub budget: Option<f64>,
}

/// One row of a run table.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    /// 1-based line in the source file (0 for rows made in memory).
    pub line: usize,
    /// The run this row belongs to; `None` when the table has no run column.
    pub run: Option<String>,
    /// Training step, where given.
    pub step: Option<f64>,
    /// N, parameters.
    pub params: f64,
    /// D, tokens seen.
    pub tokens: f64,
    /// C, FLOPs spent.
    pub flops: f64,
    /// Loss in nats per token.
    pub loss: f64,
    /// The nominal IsoFLOP budget this run was planned for, where given.
    pub budget: Option<f64>,
    /// U, the unique tokens of the data the run repeated over (D/U epochs), where given.
    #[serde(default)]
    pub unique_tokens: Option<f64>,
}

/// The rows of one file, checked, with notes on what was derived.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RunTable {
    /// Where the rows came from.
    pub source: PathBuf,
    /// The rows, in file order.
    pub rows: Vec<Observation>,
    /// What was derived or noticed while reading (for the user).
    pub notes: Vec<String>,
    /// Each run's final loss from a `final_loss` column, where the table has one.
    #[serde(default)]
    pub finals: BTreeMap<String, f64>,
    /// Text columns no quantity uses whose values vary and label experiments (a source,
    /// dataset or condition: some value is shared by runs of different losses): (column,
    /// distinct values, up to 20 of them). A table that mixes experiments has some.
    #[serde(default)]
    pub varying_text: Vec<(String, usize, Vec<String>)>,
    /// Which columns gave N and C, the losses' unit, and the conventions available.
    #[serde(default)]
    pub counted: Counted,
}

mod columns;
mod counted;
mod rows;
mod runs;
mod text_columns;

/// The bounds a cell must lie in.
pub mod limits;

use columns::Columns;
pub use columns::{ColumnChoice, Filter};
pub use counted::{Convention, Counted, LossUnit, BITS_PER_BYTE, CONVENTIONS};
use rows::{RawRow, RowParser};
use text_columns::TextColumns;

impl RunTable {
    /// Reads a run table, choosing the format by extension: `.jsonl`/`.ndjson`/`.json` are
    /// JSON Lines, anything else CSV; a folder is read as run folders ([`RunTable::read_runs`]).
    ///
    /// # Errors
    /// [`CoreError`] naming the file (and line and column where there is one) for an
    /// unreadable or empty file, a missing or ambiguous column, a non-numeric, non-finite,
    /// zero or negative cell, or FLOPs that disagree with 6ND by more than 3x (wrong units).
    ///
    /// # Example
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("isoflop-doc-read-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("runs.csv");
    /// std::fs::write(&path, "Model Size,Training FLOP,loss\n1e6,6e12,3.0\n2e6,6e12,2.9\n").unwrap();
    /// let table = isoflop_core::RunTable::read(&path).unwrap();
    /// assert_eq!(table.rows[1].tokens, 5e5); // D = C / (6N)
    /// ```
    pub fn read(path: &Path) -> Result<RunTable> {
        Self::read_with(path, &ColumnChoice::default())
    }

    /// [`RunTable::read`] with columns chosen by name.
    ///
    /// # Errors
    /// As [`RunTable::read`], and [`CoreError::NoSuchColumn`] for a chosen column that the
    /// file lacks.
    pub fn read_with(path: &Path, choice: &ColumnChoice) -> Result<RunTable> {
        if path.is_dir() {
            return Self::read_runs_with(path, choice);
        }
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if matches!(ext.as_str(), "jsonl" | "ndjson" | "json") {
            Self::from_jsonl_with(path, &text, choice)
        } else {
            Self::from_csv_with(path, &text, choice)
        }
    }

    /// The table as CSV, columns `run,step,params,tokens,flops,loss,budget,final_loss`
    /// (numbers in Rust's shortest exact form, so reading it back gives the same rows).
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let unique = self.rows.iter().any(|r| r.unique_tokens.is_some());
        let mut header = vec![
            "run",
            "step",
            "params",
            "tokens",
            "flops",
            "loss",
            "budget",
            "final_loss",
        ];
        if unique {
            header.push("unique_tokens");
        }
        w.write_record(&header).expect("writing to memory");
        for r in &self.rows {
            let fin = r.run.as_ref().and_then(|k| self.finals.get(k)).copied();
            let mut rec = vec![
                r.run.clone().unwrap_or_default(),
                opt(r.step),
                r.params.to_string(),
                r.tokens.to_string(),
                r.flops.to_string(),
                r.loss.to_string(),
                opt(r.budget),
                opt(fin),
            ];
            if unique {
                rec.push(opt(r.unique_tokens));
            }
            w.write_record(&rec).expect("writing to memory");
        }
        String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8")
    }

    /// Parses CSV text; `path` is used in messages only.
    ///
    /// # Errors
    /// As [`RunTable::read`].
    pub fn from_csv(path: &Path, text: &str) -> Result<RunTable> {
        Self::from_csv_with(path, text, &ColumnChoice::default())
    }

    /// [`RunTable::from_csv`] with columns chosen by name.
    ///
    /// # Errors
    /// As [`RunTable::read_with`].
    pub fn from_csv_with(path: &Path, text: &str, choice: &ColumnChoice) -> Result<RunTable> {
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = match rdr.headers() {
            Ok(h) => h.iter().map(str::to_string).collect(),
            Err(e) => {
                return Err(CoreError::BadRow {
                    path: path.to_path_buf(),
                    line: 1,
                    problem: format!("unreadable header: {e}"),
                })
            }
        };
        if headers.iter().all(|h| h.is_empty()) {
            return Err(CoreError::Empty {
                path: path.to_path_buf(),
            });
        }
        let cols = Columns::locate(path, headers, choice)?;
        let parser = RowParser { path, cols: &cols };
        let mut rows = Vec::new();
        let mut finals = BTreeMap::new();
        let mut text = TextColumns::new(&cols);
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                CoreError::BadRow {
                    path: path.to_path_buf(),
                    line,
                    problem: match e.kind() {
                        csv::ErrorKind::UnequalLengths {
                            expected_len, len, ..
                        } => {
                            format!("{len} fields where the header has {expected_len}")
                        }
                        _ => e.to_string(),
                    },
                }
            })?;
            let line = rec.position().map(|p| p.line() as usize).unwrap_or(0);
            if rec.iter().all(|f| f.is_empty()) {
                continue;
            }
            let raw: RawRow = rec.iter().map(|f| Some(f.to_string())).collect();
            text.see(&raw);
            if !cols.keeps(&raw) {
                continue;
            }
            rows.push(parser.parse_into(&raw, line, &mut finals)?);
        }
        Self::finish(path, &cols, rows, finals, text)
    }

    /// Parses JSON Lines text (one object per line); `path` is used in messages only.
    ///
    /// # Errors
    /// As [`RunTable::read`].
    pub fn from_jsonl(path: &Path, text: &str) -> Result<RunTable> {
        Self::from_jsonl_with(path, text, &ColumnChoice::default())
    }

    /// [`RunTable::from_jsonl`] with columns chosen by name. A byte-order mark at the start
    /// is skipped, as the CSV reader does.
    ///
    /// # Errors
    /// As [`RunTable::read_with`].
    pub fn from_jsonl_with(path: &Path, text: &str, choice: &ColumnChoice) -> Result<RunTable> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut objects = Vec::new();
        let mut keys: Vec<String> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| CoreError::BadRow {
                    path: path.to_path_buf(),
                    line: i + 1,
                    problem: format!("invalid JSON: {e}"),
                })?;
            let serde_json::Value::Object(map) = v else {
                return Err(CoreError::BadRow {
                    path: path.to_path_buf(),
                    line: i + 1,
                    problem: "expected a JSON object per line".into(),
                });
            };
            for k in map.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
            objects.push((i + 1, map));
        }
        if objects.is_empty() {
            return Err(CoreError::Empty {
                path: path.to_path_buf(),
            });
        }
        let cols = Columns::locate(path, keys.clone(), choice)?;
        let parser = RowParser { path, cols: &cols };
        let mut rows = Vec::with_capacity(objects.len());
        let mut finals = BTreeMap::new();
        let mut text = TextColumns::new(&cols);
        for (line, map) in objects {
            let raw: RawRow = keys
                .iter()
                .map(|k| match map.get(k) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                })
                .collect();
            text.see(&raw);
            if !cols.keeps(&raw) {
                continue;
            }
            rows.push(parser.parse_into(&raw, line, &mut finals)?);
        }
        Self::finish(path, &cols, rows, finals, text)
    }

    fn finish(
        path: &Path,
        cols: &Columns,
        rows: Vec<Observation>,
        finals: BTreeMap<String, f64>,
        text: TextColumns,
    ) -> Result<RunTable> {
        if rows.is_empty() && !cols.filters.is_empty() {
            return Err(CoreError::NoRowsLeft {
                path: path.to_path_buf(),
                filters: crate::error::list(cols.filters.iter().map(|(_, f)| f), " and "),
            });
        }
        if rows.is_empty() {
            return Err(CoreError::Empty {
                path: path.to_path_buf(),
            });
        }
        let mut notes = Vec::new();
        let n = rows.len();
        if cols.tokens.is_none() {
            notes.push(format!(
                "no tokens column: D derived as C/(6N) for all {n} rows from '{}'",
                cols.names[cols.flops.unwrap_or(0)]
            ));
        }
        if cols.flops.is_none() {
            notes.push(format!(
                "no flops column: C derived as 6ND for all {n} rows from '{}'",
                cols.names[cols.tokens.unwrap_or(0)]
            ));
        }
        // Units check on final points only: early rows of a training curve have few tokens.
        let curves = {
            let mut seen = std::collections::HashSet::new();
            rows.iter()
                .filter_map(|r| r.run.as_deref())
                .any(|r| !seen.insert(r))
        };
        if let Some(r) = rows
            .iter()
            .filter(|_| !curves)
            .find(|r| !(1e-2..=1e6).contains(&(r.tokens / r.params)))
        {
            notes.push(format!(
                "line {}: {:.3e} tokens per parameter is unusual; check that params and tokens are raw counts",
                r.line,
                r.tokens / r.params
            ));
        }
        if !finals.is_empty() {
            notes.push(format!(
                "final points of {} runs take their loss from the '{}' column",
                finals.len(),
                cols.names[cols.final_loss.expect("finals come from it")]
            ));
        }
        Ok(RunTable {
            source: path.to_path_buf(),
            rows,
            notes,
            finals,
            varying_text: text.varying(cols),
            counted: cols.counted(),
        })
    }

    /// The distinct values of `column` over the rows that pass `choice`'s filters, in order
    /// of first appearance (what `--group-by` splits a table by).
    ///
    /// # Errors
    /// As [`RunTable::read_with`], and [`CoreError::NoSuchColumn`] for a column the file lacks.
    pub fn distinct_values(
        path: &Path,
        column: &str,
        choice: &ColumnChoice,
    ) -> Result<Vec<String>> {
        let mut with = choice.clone();
        with.filters.retain(|f| f.column != column);
        // The table must read (its errors first); then the raw column, which the table
        // does not keep.
        Self::read_with(path, &with)?;
        let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let jsonl = matches!(
            path.extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .as_deref(),
            Some("jsonl" | "ndjson" | "json")
        );
        // (header, rows) as text.
        let (headers, records): (Vec<String>, Vec<Vec<String>>) = if jsonl {
            let objs: Vec<serde_json::Map<String, serde_json::Value>> = text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            let mut keys: Vec<String> = Vec::new();
            for o in &objs {
                for k in o.keys() {
                    if !keys.contains(k) {
                        keys.push(k.clone());
                    }
                }
            }
            let recs = objs
                .iter()
                .map(|o| {
                    keys.iter()
                        .map(|k| match o.get(k) {
                            Some(serde_json::Value::String(s)) => s.clone(),
                            Some(serde_json::Value::Null) | None => String::new(),
                            Some(v) => v.to_string(),
                        })
                        .collect()
                })
                .collect();
            (keys, recs)
        } else {
            let mut rdr = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            let headers = rdr
                .headers()
                .map(|h| h.iter().map(str::to_string).collect())
                .unwrap_or_default();
            let recs = rdr
                .records()
                .flatten()
                .map(|r| r.iter().map(str::to_string).collect())
                .collect();
            (headers, recs)
        };
        let i = columns::named(path, &headers, "--group-by", column)?;
        let f: Vec<(usize, Filter)> = with
            .filters
            .iter()
            .map(|f| columns::named(path, &headers, "--where", &f.column).map(|j| (j, f.clone())))
            .collect::<Result<Vec<_>>>()?;
        let mut values: Vec<String> = Vec::new();
        for rec in &records {
            if f.iter()
                .all(|(j, f)| f.passes(rec.get(*j).map(String::as_str)))
            {
                let v = rec.get(i).map(|s| s.trim().to_string()).unwrap_or_default();
                if !values.contains(&v) {
                    values.push(v);
                }
            }
        }
        Ok(values)
    }

    /// True when some run has more than one row: a training curve.
    pub fn has_curves(&self) -> bool {
        let mut seen = std::collections::HashSet::new();
        self.rows
            .iter()
            .filter_map(|r| r.run.as_deref())
            .any(|r| !seen.insert(r))
    }

    /// The rows of each run, keyed by run name, each in training order (by step, then
    /// tokens). Rows without a run name form runs of their own named `line N`.
    pub fn curves(&self) -> BTreeMap<String, Vec<Observation>> {
        let mut map: BTreeMap<String, Vec<Observation>> = BTreeMap::new();
        for r in &self.rows {
            let key = r.run.clone().unwrap_or_else(|| format!("line {}", r.line));
            map.entry(key).or_default().push(r.clone());
        }
        for v in map.values_mut() {
            v.sort_by(|a, b| {
                a.step
                    .unwrap_or(0.0)
                    .total_cmp(&b.step.unwrap_or(0.0))
                    .then(a.tokens.total_cmp(&b.tokens))
            });
        }
        map
    }

    /// The final row of each run (the most tokens seen): the points Approaches 2 and 3 fit.
    /// A table without curves gives its rows in file order; one with curves gives one row
    /// per run in the order of the run names (so a folder of runs and the table `collect`
    /// writes from it give the same points in the same order). Where the table has a final
    /// loss for the run (a `final_loss` column, or the run's summary), that is the row's loss.
    pub fn final_rows(&self) -> Vec<Observation> {
        if !self.has_curves() {
            return self.rows.clone();
        }
        self.curves()
            .into_iter()
            .filter_map(|(run, mut v)| {
                let mut last = v.pop()?;
                if let Some(&l) = self.finals.get(&run) {
                    last.loss = l;
                }
                Some(last)
            })
            .collect()
    }
}

/// Drops the `k` highest-loss rows, by Epoch's rule: everything at or above the k-th
/// highest loss goes (ties can drop more than k). Returns the kept rows and how many went.
pub fn drop_highest_loss(rows: &[Observation], k: usize) -> (Vec<Observation>, usize) {
    if k == 0 || rows.is_empty() {
        return (rows.to_vec(), 0);
    }
    let mut losses: Vec<f64> = rows.iter().map(|r| r.loss).collect();
    losses.sort_by(f64::total_cmp);
    let thr = losses[losses.len().saturating_sub(k)];
    let kept: Vec<Observation> = rows.iter().filter(|r| r.loss < thr).cloned().collect();
    let dropped = rows.len() - kept.len();
    (kept, dropped)
}

#[cfg(test)]
mod tests;
