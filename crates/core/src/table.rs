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
}

const PARAMS: &[&str] = &[
    "params",
    "n",
    "modelsize",
    "parameters",
    "nparams",
    "numparams",
    "paramsn",
];
const TOKENS: &[&str] = &[
    "tokens",
    "d",
    "ntokens",
    "numtokens",
    "trainingtokens",
    "tokensd",
];
const FLOPS: &[&str] = &[
    "flops",
    "c",
    "trainingflop",
    "trainingflops",
    "flop",
    "compute",
];
const LOSS: &[&str] = &["loss", "valloss", "evalloss", "finalloss", "trainloss", "l"];
/// The loss names as a user would type them, for messages.
const LOSS_NAMES: &[&str] = &["loss", "val_loss", "eval_loss", "final_loss", "train_loss", "L"];
const BUDGET: &[&str] = &["budget", "flopbudget", "isoflop"];
const UNIQUE: &[&str] = &["uniquetokens", "u", "uniquetokensu", "unique", "ntokensunique"];
const RUN: &[&str] = &["run", "runid", "runname", "name"];
const STEP: &[&str] = &["step", "iter", "iteration"];
const FINAL: &[&str] = &["finalloss", "runfinalloss"];

fn norm(h: &str) -> String {
    h.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-' | '.'))
        .flat_map(|c| c.to_lowercase())
        .collect()
}

fn pick(headers: &[String], aliases: &[&str]) -> Option<usize> {
    let normed: Vec<String> = headers.iter().map(|h| norm(h)).collect();
    aliases
        .iter()
        .find_map(|a| normed.iter().position(|h| h == a))
}

/// Every column whose header is one of `aliases`, in header order.
fn matches(headers: &[String], aliases: &[&str]) -> Vec<usize> {
    headers
        .iter()
        .enumerate()
        .filter(|(_, h)| aliases.contains(&norm(h).as_str()))
        .map(|(i, _)| i)
        .collect()
}

/// Columns named by the user, overriding the aliases (`--loss-column NAME` and the like).
/// A name is matched exactly first, then as the aliases are (case, spaces, `_`, `-`, `.`
/// ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnChoice {
    /// The params (N) column.
    pub params: Option<String>,
    /// The tokens (D) column.
    pub tokens: Option<String>,
    /// The flops (C) column.
    pub flops: Option<String>,
    /// The loss column.
    pub loss: Option<String>,
}

impl ColumnChoice {
    /// The choice for `curve.csv` files of run folders: `loss` is the training loss of each
    /// logged step (`eval_loss`, the held-out loss, is read from the summary for the final
    /// point).
    pub fn curve() -> ColumnChoice {
        ColumnChoice {
            loss: Some("loss".into()),
            ..ColumnChoice::default()
        }
    }
}

/// The column `name` (see [`ColumnChoice`]) among `headers`.
fn named(path: &Path, headers: &[String], option: &'static str, name: &str) -> Result<usize> {
    headers
        .iter()
        .position(|h| h == name)
        .or_else(|| headers.iter().position(|h| norm(h) == norm(name)))
        .ok_or_else(|| CoreError::NoSuchColumn {
            path: path.to_path_buf(),
            option,
            name: name.to_string(),
            columns: headers.join(", "),
        })
}

/// The one column for a quantity: the user's choice, else the one header among `aliases`;
/// two or more matching headers are an error naming them (`except` is left out of the
/// candidates when another matches: a `final_loss` column beside `loss`).
fn one_of(
    path: &Path,
    headers: &[String],
    what: &'static str,
    aliases: &[&str],
    chosen: Option<&str>,
    option: &'static str,
    except: Option<usize>,
) -> Result<Option<usize>> {
    if let Some(name) = chosen {
        return named(path, headers, option, name).map(Some);
    }
    let mut m = matches(headers, aliases);
    if m.len() > 1 {
        if let Some(x) = except {
            m.retain(|&i| i != x);
        }
    }
    match m.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        many => Err(CoreError::Ambiguous {
            path: path.to_path_buf(),
            what,
            names: many
                .iter()
                .map(|&i| format!("'{}'", headers[i]))
                .collect::<Vec<_>>()
                .join(" and "),
            option,
        }),
    }
}

fn accepted(aliases: &[&str]) -> String {
    if aliases == LOSS {
        return LOSS_NAMES.join(", ");
    }
    aliases.join(", ")
}

/// Columns located in a header.
struct Columns {
    params: usize,
    tokens: Option<usize>,
    flops: Option<usize>,
    loss: usize,
    budget: Option<usize>,
    unique: Option<usize>,
    run: Option<usize>,
    step: Option<usize>,
    final_loss: Option<usize>,
    names: Vec<String>,
}

impl Columns {
    fn locate(path: &Path, headers: Vec<String>, choice: &ColumnChoice) -> Result<Self> {
        let missing = |what, al: &[&str]| CoreError::MissingColumn {
            path: path.to_path_buf(),
            what,
            accepted: accepted(al),
            losses: if what == "loss" {
                headers
                    .iter()
                    .filter(|h| norm(h).contains("loss") || norm(h).contains("ppl"))
                    .map(|h| format!("'{h}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                String::new()
            },
        };
        let mut normed: Vec<String> = headers.iter().map(|h| norm(h)).collect();
        normed.sort();
        if let Some(w) = normed.windows(2).find(|w| w[0] == w[1] && !w[0].is_empty()) {
            let names: Vec<String> = headers
                .iter()
                .filter(|h| norm(h) == w[0])
                .map(|h| format!("'{h}'"))
                .collect();
            return Err(CoreError::DuplicateColumn {
                path: path.to_path_buf(),
                names: names.join(" and "),
            });
        }
        let h = &headers;
        let final_any = pick(h, FINAL);
        let params = one_of(path, h, "params (N)", PARAMS, choice.params.as_deref(), "--params-column", None)?
            .ok_or_else(|| missing("params (N)", PARAMS))?;
        let loss = one_of(path, h, "loss", LOSS, choice.loss.as_deref(), "--loss-column", final_any)?
            .ok_or_else(|| missing("loss", LOSS))?;
        let tokens = one_of(path, h, "tokens (D)", TOKENS, choice.tokens.as_deref(), "--tokens-column", None)?;
        let flops = one_of(path, h, "flops (C)", FLOPS, choice.flops.as_deref(), "--flops-column", None)?;
        if tokens.is_none() && flops.is_none() {
            let mut al = TOKENS.to_vec();
            al.extend_from_slice(FLOPS);
            return Err(missing("tokens (D) or flops (C)", &al));
        }
        Ok(Columns {
            params,
            tokens,
            flops,
            loss,
            budget: pick(&headers, BUDGET),
            unique: pick(&headers, UNIQUE),
            final_loss: final_any.filter(|&c| c != loss),
            run: pick(&headers, RUN),
            step: pick(&headers, STEP),
            names: headers,
        })
    }
}

/// A raw cell: text as found (JSON numbers are formatted back to text).
type RawRow = Vec<Option<String>>;

struct RowParser<'a> {
    path: &'a Path,
    cols: &'a Columns,
}

impl RowParser<'_> {
    fn bad(&self, line: usize, col: usize, value: &str, problem: &'static str) -> CoreError {
        CoreError::BadCell {
            path: self.path.to_path_buf(),
            line,
            column: self.cols.names[col].clone(),
            value: value.to_string(),
            problem,
        }
    }

    /// A positive finite number from column `col`.
    fn positive(&self, raw: &RawRow, line: usize, col: usize) -> Result<f64> {
        let text = raw.get(col).cloned().flatten().unwrap_or_default();
        let t = text.trim();
        if t.is_empty() {
            return Err(self.bad(line, col, t, "empty cell"));
        }
        let v: f64 = t
            .parse()
            .map_err(|_| self.bad(line, col, t, "not a number"))?;
        if v.is_nan() {
            return Err(self.bad(line, col, t, "NaN is not a value"));
        }
        if v.is_infinite() {
            return Err(self.bad(line, col, t, "must be finite"));
        }
        if v <= 0.0 {
            return Err(self.bad(line, col, t, "must be positive"));
        }
        Ok(v)
    }

    fn optional_positive(
        &self,
        raw: &RawRow,
        line: usize,
        col: Option<usize>,
    ) -> Result<Option<f64>> {
        match col {
            None => Ok(None),
            Some(c) => {
                let empty = raw
                    .get(c)
                    .cloned()
                    .flatten()
                    .is_none_or(|s| s.trim().is_empty());
                if empty {
                    Ok(None)
                } else {
                    self.positive(raw, line, c).map(Some)
                }
            }
        }
    }

    /// [`RowParser::parse`], also recording the row's run-final loss, where given.
    fn parse_into(
        &self,
        raw: &RawRow,
        line: usize,
        finals: &mut BTreeMap<String, f64>,
    ) -> Result<Observation> {
        let obs = self.parse(raw, line)?;
        if let (Some(v), Some(run)) = (
            self.optional_positive(raw, line, self.cols.final_loss)?,
            obs.run.clone(),
        ) {
            finals.insert(run, v);
        }
        Ok(obs)
    }

    fn parse(&self, raw: &RawRow, line: usize) -> Result<Observation> {
        let c = self.cols;
        let params = self.positive(raw, line, c.params)?;
        let loss = self.positive(raw, line, c.loss)?;
        let tokens = match c.tokens {
            Some(col) => Some(self.positive(raw, line, col)?),
            None => None,
        };
        let flops = match c.flops {
            Some(col) => Some(self.positive(raw, line, col)?),
            None => None,
        };
        let (tokens, flops) = match (tokens, flops) {
            (Some(d), Some(f)) => {
                let six_nd = 6.0 * params * d;
                let ratio = f / six_nd;
                if !(1.0 / 3.0..=3.0).contains(&ratio) {
                    return Err(CoreError::Inconsistent {
                        path: self.path.to_path_buf(),
                        line,
                        flops: f,
                        six_nd,
                        ratio,
                    });
                }
                (d, f)
            }
            (Some(d), None) => (d, 6.0 * params * d),
            (None, Some(f)) => (f / (6.0 * params), f),
            (None, None) => unreachable!("Columns::locate requires tokens or flops"),
        };
        let step = match c.step {
            None => None,
            Some(col) => {
                let t = raw.get(col).cloned().flatten().unwrap_or_default();
                let t = t.trim();
                if t.is_empty() {
                    None
                } else {
                    let v: f64 = t
                        .parse()
                        .map_err(|_| self.bad(line, col, t, "not a number"))?;
                    if !v.is_finite() || v < 0.0 {
                        return Err(self.bad(line, col, t, "must be a finite step >= 0"));
                    }
                    Some(v)
                }
            }
        };
        let run = c
            .run
            .and_then(|col| raw.get(col).cloned().flatten())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty());
        let unique_tokens = self.optional_positive(raw, line, c.unique)?;
        if let (Some(u), Some(col)) = (unique_tokens, c.unique) {
            // 1e-9: the same count written with different rounding is not a repetition.
            if u > tokens * (1.0 + 1e-9) {
                let text = raw.get(col).cloned().flatten().unwrap_or_default();
                return Err(CoreError::BadCell {
                    path: self.path.to_path_buf(),
                    line,
                    column: c.names[col].clone(),
                    value: text.trim().to_string(),
                    problem: "unique tokens exceed the run's tokens D (a run sees each unique token at least once)",
                });
            }
        }
        Ok(Observation {
            line,
            run,
            step,
            params,
            tokens,
            flops,
            loss,
            budget: self.optional_positive(raw, line, c.budget)?,
            unique_tokens,
        })
    }
}

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
            return Self::read_runs(path);
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

    /// The one reader of run folders (see [`crate::record`]): every finished run under
    /// `dir` (or `dir` itself, if it is a run folder), one table. Each run's rows are its
    /// `curve.csv` (its `loss` column: the training loss of each logged step); its final
    /// loss is its summary's ([`RunSummary::fit_loss`]: held-out at the end where measured);
    /// its planned budget comes from the sweep's [`PLAN_FILE`] in `dir`, where there is
    /// one. Runs without a `summary.json` (unfinished) or whose summary says they did not
    /// finish are left out and named in the notes. `isoflop collect` writes this table
    /// ([`RunTable::to_csv`]), so a fit of the folder and of the collected file are one fit.
    ///
    /// # Errors
    /// As [`RunTable::read`], for the first bad curve; [`CoreError::Empty`] when no run
    /// folder holds a finished run.
    ///
    /// [`RunSummary::fit_loss`]: crate::record::RunSummary::fit_loss
    pub fn read_runs(dir: &Path) -> Result<RunTable> {
        use crate::record::{read_json, run_dirs, RunStatus, RunSummary, CURVE_FILE, SUMMARY_FILE};
        let plan: BTreeMap<String, PlannedBudget> =
            read_json::<PlanIndex>(&dir.join(PLAN_FILE))
                .map(|p| p.runs)
                .unwrap_or_default();
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        let mut skipped = Vec::new();
        let mut finals = BTreeMap::new();
        for run in run_dirs(dir) {
            let name = run
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let summary = match read_json::<RunSummary>(&run.join(SUMMARY_FILE)) {
                Ok(s) if s.status == RunStatus::Finished => s,
                Ok(s) => {
                    skipped.push(format!(
                        "{name} ({:?}{})",
                        s.status,
                        s.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ));
                    continue;
                }
                Err(_) => {
                    skipped.push(format!("{name} (unfinished: no summary.json)"));
                    continue;
                }
            };
            let p = run.join(CURVE_FILE);
            let text = std::fs::read_to_string(&p).map_err(|source| CoreError::Io {
                path: p.clone(),
                source,
            })?;
            let t = Self::from_csv_with(&p, &text, &ColumnChoice::curve())?;
            let budget = plan.get(&name).and_then(|b| b.budget);
            for mut r in t.rows {
                r.run = Some(r.run.unwrap_or_else(|| name.clone()));
                r.budget = r.budget.or(budget);
                rows.push(r);
            }
            if let Some(l) = summary.fit_loss().filter(|l| l.is_finite() && *l > 0.0) {
                finals.insert(name.clone(), l);
            }
        }
        if !skipped.is_empty() {
            notes.push(format!(
                "{} run(s) left out: {}",
                skipped.len(),
                skipped.join(", ")
            ));
        }
        if rows.is_empty() {
            return Err(CoreError::Empty {
                path: dir.to_path_buf(),
            });
        }
        if !finals.is_empty() {
            notes.push(format!(
                "final points of {} runs take their loss from the runs' summaries (held-out loss at the end where measured)",
                finals.len()
            ));
        }
        Ok(RunTable {
            source: dir.to_path_buf(),
            rows,
            notes,
            finals,
        })
    }

    /// The table as CSV, columns `run,step,params,tokens,flops,loss,budget,final_loss`
    /// (numbers in Rust's shortest exact form, so reading it back gives the same rows).
    pub fn to_csv(&self) -> String {
        let mut w = csv::Writer::from_writer(Vec::new());
        let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let unique = self.rows.iter().any(|r| r.unique_tokens.is_some());
        let mut header = vec!["run", "step", "params", "tokens", "flops", "loss", "budget", "final_loss"];
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
            rows.push(parser.parse_into(&raw, line, &mut finals)?);
        }
        Self::finish(path, &cols, rows, finals)
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
        for (line, map) in objects {
            let raw: RawRow = keys
                .iter()
                .map(|k| match map.get(k) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(serde_json::Value::String(s)) => Some(s.clone()),
                    Some(other) => Some(other.to_string()),
                })
                .collect();
            rows.push(parser.parse_into(&raw, line, &mut finals)?);
        }
        Self::finish(path, &cols, rows, finals)
    }

    fn finish(
        path: &Path,
        cols: &Columns,
        rows: Vec<Observation>,
        finals: BTreeMap<String, f64>,
    ) -> Result<RunTable> {
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
        })
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
mod tests {
    use super::*;

    fn csv(text: &str) -> Result<RunTable> {
        RunTable::from_csv(Path::new("t.csv"), text)
    }

    #[test]
    fn aliases_and_derived_tokens() {
        let t = csv("Model Size,Training FLOP,loss\n1e6,6e12,3.0\n2e6,6e12,2.9\n").unwrap();
        assert_eq!(t.rows.len(), 2);
        // D = C / (6N)
        assert!((t.rows[0].tokens - 1e6).abs() < 1e-6);
        assert!((t.rows[1].tokens - 5e5).abs() < 1e-6);
        assert!(t.notes[0].contains("C/(6N)"), "{:?}", t.notes);
    }

    #[test]
    fn derived_flops() {
        let t = csv("N,D,val_loss\n1e6,2e7,3.0\n").unwrap();
        assert_eq!(t.rows[0].flops, 6.0 * 1e6 * 2e7);
        assert!(t.notes[0].contains("6ND"));
    }

    #[test]
    fn bad_cells_name_line_and_column() {
        let e = csv("params,tokens,loss\n1e6,2e7,3\n1e6,abc,3\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.csv:3") && e.contains("'tokens'") && e.contains("not a number"),
            "{e}"
        );
        for (cell, why) in [
            ("NaN", "NaN"),
            ("inf", "finite"),
            ("0", "positive"),
            ("-2", "positive"),
        ] {
            let e = csv(&format!("params,tokens,loss\n1e6,2e7,{cell}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("t.csv:2") && e.contains("'loss'") && e.contains(why),
                "{e}"
            );
        }
    }

    #[test]
    fn missing_column_and_empty_file() {
        let e = csv("params,loss\n1,2\n").unwrap_err().to_string();
        assert!(e.contains("tokens (D) or flops (C)"), "{e}");
        let e = csv("tokens,flops\n1,6\n").unwrap_err().to_string();
        assert!(e.contains("no column for params"), "{e}");
        let e = csv("params,tokens,loss\n").unwrap_err().to_string();
        assert!(e.contains("no data rows"), "{e}");
        let e = csv("").unwrap_err().to_string();
        assert!(e.contains("no data rows"), "{e}");
    }

    #[test]
    fn ragged_row_is_named() {
        let e = csv("params,tokens,loss\n1,2,3\n1,2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:3") && e.contains("2 fields"), "{e}");
    }

    #[test]
    fn wrong_units_are_caught() {
        // params given in millions: 6ND is a million times smaller than the FLOPs.
        let e = csv("params,tokens,flops,loss\n2,4e7,4.8e14,3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:2") && e.contains("units"), "{e}");
    }

    #[test]
    fn jsonl_rows_and_errors() {
        let p = Path::new("r.jsonl");
        let t = RunTable::from_jsonl(p, "{\"run\":\"a\",\"params\":1e6,\"tokens\":1e7,\"loss\":3.1}\n\n{\"run\":\"a\",\"params\":1e6,\"tokens\":2e7,\"loss\":\"2.9\"}\n").unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[1].line, 3);
        assert!(t.has_curves());
        assert_eq!(t.final_rows().len(), 1);
        assert_eq!(t.final_rows()[0].loss, 2.9);
        let e = RunTable::from_jsonl(p, "{\"params\":1,\"tokens\":1,\"loss\":1}\n{oops\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("r.jsonl:2") && e.contains("invalid JSON"), "{e}");
    }

    #[test]
    fn final_loss_column_gives_the_final_points_loss() {
        let t = csv("run,step,params,tokens,loss,final_loss\na,1,1e6,1e7,4.0,2.5\na,2,1e6,2e7,3.0,2.5\nb,1,2e6,1e7,3.5,\nb,2,2e6,2e7,2.9,\n").unwrap();
        let f = t.final_rows();
        assert_eq!((f[0].loss, f[1].loss), (2.5, 2.9));
        // The curve keeps its own losses.
        assert_eq!(t.rows[1].loss, 3.0);
        assert!(
            t.notes.iter().any(|n| n.contains("final_loss")),
            "{:?}",
            t.notes
        );
    }

    #[test]
    fn drop_highest_loss_follows_epoch_rule() {
        let rows: Vec<Observation> = [3.0, 5.0, 4.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, &l)| Observation {
                line: i + 2,
                run: None,
                step: None,
                params: 1.0,
                tokens: 1.0,
                flops: 6.0,
                loss: l,
                budget: None,
                unique_tokens: None,
            })
            .collect();
        let (kept, n) = drop_highest_loss(&rows, 2);
        assert_eq!(n, 2);
        assert_eq!(
            kept.iter().map(|r| r.loss).collect::<Vec<_>>(),
            vec![3.0, 2.0]
        );
    }

    #[test]
    fn ambiguous_columns_are_refused_with_both_names_and_the_option() {
        for (header, a, b, opt) in [
            ("params,tokens,loss,val_loss", "'loss'", "'val_loss'", "--loss-column"),
            ("params,N,tokens,loss", "'params'", "'N'", "--params-column"),
            ("params,tokens,D,loss", "'tokens'", "'D'", "--tokens-column"),
        ] {
            let row = vec!["1e6"; header.split(',').count()].join(",");
            let e = csv(&format!("{header}\n{row}\n")).unwrap_err().to_string();
            assert!(e.contains(a) && e.contains(b) && e.contains(opt), "{e}");
        }
        let e = csv("params,tokens,loss,Loss\n1,2,3,4\n").unwrap_err().to_string();
        assert!(e.contains("twice") && e.contains("'loss' and 'Loss'"), "{e}");
        let e = csv("params,tokens,loss,loss\n1,2,3,4\n").unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn a_chosen_column_resolves_the_ambiguity() {
        let choice = ColumnChoice {
            loss: Some("val_loss".into()),
            ..ColumnChoice::default()
        };
        let t = RunTable::from_csv_with(
            Path::new("t.csv"),
            "params,tokens,loss,val_loss\n1e6,2e7,3.5,3.0\n",
            &choice,
        )
        .unwrap();
        assert_eq!(t.rows[0].loss, 3.0);
        let choice = ColumnChoice {
            loss: Some("nope".into()),
            ..ColumnChoice::default()
        };
        let e = RunTable::from_csv_with(Path::new("t.csv"), "params,tokens,loss\n1,2,3\n", &choice)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--loss-column nope") && e.contains("params, tokens, loss"), "{e}");
    }

    #[test]
    fn a_missing_loss_lists_the_files_loss_like_columns_as_typed() {
        let e = csv("params,tokens,loss_c4_val,ppl_wiki\n1,2,3,4\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("'loss_c4_val', 'ppl_wiki'") && e.contains("val_loss") && !e.contains("valloss"),
            "{e}"
        );
    }

    #[test]
    fn jsonl_with_a_byte_order_mark_reads_like_csv_with_one() {
        let j = RunTable::from_jsonl(
            Path::new("r.jsonl"),
            "\u{feff}{\"params\":1e6,\"tokens\":2e7,\"loss\":3.0}\n",
        )
        .unwrap();
        let c = csv("\u{feff}params,tokens,loss\n1e6,2e7,3.0\n").unwrap();
        assert_eq!(j.rows[0].loss, c.rows[0].loss);
        assert_eq!(j.rows[0].params, 1e6);
    }

    #[test]
    fn to_csv_reads_back_to_the_same_rows_finals_and_budgets() {
        let t = csv("run,step,params,tokens,loss,budget,final_loss\n\"a,\"\"x\"\"\",1,1e6,1e7,4.0,6e13,2.5\n\"a,\"\"x\"\"\",2,1e6,2e7,3.1234567890123,6e13,2.5\nb,1,2e6,1e7,3.5,,\nb,2,2e6,2e7,2.9,,\n").unwrap();
        let back = csv(&t.to_csv()).unwrap();
        let strip = |rows: &[Observation]| {
            rows.iter()
                .map(|r| (r.run.clone(), r.step, r.params, r.tokens, r.flops, r.loss, r.budget))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&t.rows), strip(&back.rows));
        assert_eq!(t.finals, back.finals);
        assert_eq!(back.rows[0].run.as_deref(), Some("a,\"x\""));
        assert_eq!(strip(&t.final_rows()), strip(&back.final_rows()));
    }

    #[test]
    fn final_rows_come_in_run_name_order_whatever_the_line_order() {
        let t = csv("run,step,params,tokens,loss\nb,1,2e6,1e7,3.5\na,1,1e6,1e7,4.0\nb,2,2e6,2e7,2.9\na,2,1e6,2e7,3.0\n").unwrap();
        let names: Vec<_> = t.final_rows().into_iter().filter_map(|r| r.run).collect();
        assert_eq!(names, ["a", "b"]);
    }
}
