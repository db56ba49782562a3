//! Finding a table's columns (aliases, the user's choice, ambiguity) and parsing its rows.

use super::Observation;
use crate::error::{CoreError, Result};
use std::collections::BTreeMap;
use std::path::Path;

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
const LOSS_NAMES: &[&str] = &[
    "loss",
    "val_loss",
    "eval_loss",
    "final_loss",
    "train_loss",
    "L",
];
const BUDGET: &[&str] = &["budget", "flopbudget", "isoflop"];
const UNIQUE: &[&str] = &[
    "uniquetokens",
    "u",
    "uniquetokensu",
    "unique",
    "ntokensunique",
];
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
    /// Keep only the rows that pass every one (`--where COL=VALUE`, `COL!=VALUE`).
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// The unit of the loss column (`--loss-unit`): nats (the default) or bits per token.
    #[serde(default)]
    pub loss_unit: LossUnit,
    /// Bytes of text per token (`--bytes-per-token`): a number, or a column's name (tables
    /// only). Given, losses are converted to bits per byte, which is comparable across
    /// tokenizers.
    #[serde(default)]
    pub bytes_per_token: Option<String>,
}

/// The unit a loss column is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossUnit {
    /// Nats per token (cross-entropy with the natural log: PyTorch's, isoflop's).
    #[default]
    Nats,
    /// Bits per token (log base 2).
    Bits,
}

impl LossUnit {
    /// The unit's name in reports ("nats per token").
    pub fn name(self) -> &'static str {
        match self {
            LossUnit::Nats => "nats per token",
            LossUnit::Bits => "bits per token",
        }
    }
}

/// The unit of losses converted with bytes per token.
pub const BITS_PER_BYTE: &str = "bits per byte";

/// Which columns gave a table's N and C, the unit of its losses, and the counting
/// conventions it can be fitted under.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counted {
    /// The params column.
    pub params: String,
    /// The flops column, or `6ND (derived)`.
    pub flops: String,
    /// The losses' unit: `nats per token`, `bits per token` or `bits per byte`.
    pub loss_unit: String,
    /// The conventions whose two columns the table has ([`CONVENTIONS`]).
    #[serde(default)]
    pub conventions: Vec<Convention>,
}

impl Default for Counted {
    fn default() -> Counted {
        Counted {
            params: "params".into(),
            flops: "flops".into(),
            loss_unit: LossUnit::Nats.name().into(),
            conventions: Vec::new(),
        }
    }
}

/// A way of counting a run's size and compute: a parameter column and a FLOP column.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Convention {
    /// What it is, with its source.
    pub label: String,
    /// The params column.
    pub params: String,
    /// The flops column.
    pub flops: String,
}

/// The conventions `isoflop import --model-config` writes columns for (and any table with
/// both columns of one has): (label, params column, flops column).
pub const CONVENTIONS: [(&str, &str, &str); 6] = [
    (
        "all parameters, 6ND (Hoffmann et al. 2022)",
        "params",
        "flops",
    ),
    (
        "non-embedding, 6ND (Kaplan et al. 2020's C = 6ND)",
        "params_no_embed",
        "flops_no_embed",
    ),
    (
        "non-embedding (Kaplan et al. 2020, Table 1)",
        "params_no_embed",
        "flops_kaplan",
    ),
    (
        "active parameters of a mixture of experts, 6ND",
        "params_active",
        "flops_active",
    ),
    (
        "all parameters, Appendix F FLOPs (Hoffmann et al. 2022)",
        "params",
        "flops_chinchilla",
    ),
    (
        "non-embedding, M (DeepSeek-AI 2024)",
        "params_no_embed",
        "flops_deepseek",
    ),
];

impl Columns {
    /// The conventions whose columns `names` has.
    pub(super) fn conventions(&self) -> Vec<Convention> {
        let has = |c: &str| self.names.iter().any(|h| h == c);
        CONVENTIONS
            .iter()
            .filter(|(_, p, f)| has(p) && has(f))
            .map(|(label, p, f)| Convention {
                label: label.to_string(),
                params: p.to_string(),
                flops: f.to_string(),
            })
            .collect()
    }

    /// What the table counts (see [`Counted`]).
    pub(super) fn counted(&self) -> Counted {
        Counted {
            params: self.names[self.params].clone(),
            flops: match self.flops {
                Some(f) => self.names[f].clone(),
                None => "6ND (derived)".into(),
            },
            loss_unit: self.loss_unit.to_string(),
            conventions: self.conventions(),
        }
    }
}

/// A condition on a text column: `COL=VALUE` or `COL!=VALUE` (values compared as text,
/// spaces at the ends ignored).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// The column.
    pub column: String,
    /// The value.
    pub value: String,
    /// True for `=`, false for `!=`.
    pub equal: bool,
}

impl Filter {
    /// Parses `COL=VALUE` or `COL!=VALUE`.
    ///
    /// # Errors
    /// A message when there is no `=`, or the column is empty.
    pub fn parse(text: &str) -> std::result::Result<Filter, String> {
        let (column, value, equal) = match text.split_once("!=") {
            Some((c, v)) => (c, v, false),
            None => match text.split_once('=') {
                Some((c, v)) => (c, v, true),
                None => return Err(format!("'{text}': write COL=VALUE or COL!=VALUE")),
            },
        };
        if column.trim().is_empty() {
            return Err(format!("'{text}': the column is empty"));
        }
        Ok(Filter {
            column: column.trim().to_string(),
            value: value.trim().to_string(),
            equal,
        })
    }

    /// Whether `cell` passes.
    pub fn passes(&self, cell: Option<&str>) -> bool {
        (cell.unwrap_or("").trim() == self.value) == self.equal
    }
}

impl std::fmt::Display for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.column,
            if self.equal { "=" } else { "!=" },
            self.value
        )
    }
}

impl ColumnChoice {
    /// The choice for `curve.csv` files of run folders: `loss` is the training loss of each
    /// logged step (`eval_loss`, the held-out loss, is read from the summary for the final
    /// point).
    pub fn curve() -> ColumnChoice {
        ColumnChoice::default().with_loss("loss")
    }

    /// What losses are multiplied by to be in the unit read into (bits per byte with a
    /// number of bytes per token); `None` when bytes per token is a column or not a
    /// positive number.
    pub fn loss_scale(&self) -> Option<f64> {
        let to_bits = match self.loss_unit {
            LossUnit::Nats => 1.0 / std::f64::consts::LN_2,
            LossUnit::Bits => 1.0,
        };
        match self.bytes_per_token.as_deref() {
            None => Some(1.0),
            Some(b) => b
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .map(|v| to_bits / v),
        }
    }

    /// This choice with the loss column `name`.
    pub fn with_loss(self, name: &str) -> ColumnChoice {
        ColumnChoice {
            loss: Some(name.into()),
            ..self
        }
    }
}

/// The column `name` (see [`ColumnChoice`]) among `headers`.
pub(super) fn named(
    path: &Path,
    headers: &[String],
    option: &'static str,
    name: &str,
) -> Result<usize> {
    headers
        .iter()
        .position(|h| h == name)
        .or_else(|| headers.iter().position(|h| norm(h) == norm(name)))
        .ok_or_else(|| CoreError::NoSuchColumn {
            path: path.to_path_buf(),
            option,
            name: name.to_string(),
            columns: crate::error::list(headers, ", "),
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
            names: crate::error::list(many.iter().map(|&i| format!("'{}'", headers[i])), " and "),
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
pub(super) struct Columns {
    pub(super) params: usize,
    pub(super) tokens: Option<usize>,
    pub(super) flops: Option<usize>,
    pub(super) loss: usize,
    pub(super) budget: Option<usize>,
    pub(super) unique: Option<usize>,
    pub(super) run: Option<usize>,
    pub(super) step: Option<usize>,
    pub(super) final_loss: Option<usize>,
    /// The bytes-per-token column, where `--bytes-per-token` names one.
    pub(super) bytes: Option<usize>,
    /// What every loss is multiplied by (the unit's conversion, over a constant bytes per
    /// token).
    pub(super) loss_scale: f64,
    /// The unit losses are read into.
    pub(super) loss_unit: &'static str,
    pub(super) names: Vec<String>,
    /// (column index, filter) of the user's filters.
    pub(super) filters: Vec<(usize, Filter)>,
}

impl Columns {
    /// Whether a raw row passes every filter.
    pub(super) fn keeps(&self, raw: &RawRow) -> bool {
        self.filters
            .iter()
            .all(|(i, f)| f.passes(raw.get(*i).and_then(|c| c.as_deref())))
    }

    /// The columns no quantity uses.
    pub(super) fn unused(&self) -> Vec<usize> {
        let used = [
            Some(self.params),
            self.tokens,
            self.flops,
            Some(self.loss),
            self.budget,
            self.unique,
            self.run,
            self.step,
            self.final_loss,
            self.bytes,
        ];
        (0..self.names.len())
            .filter(|i| !used.contains(&Some(*i)))
            .collect()
    }
}

impl Columns {
    pub(super) fn locate(path: &Path, headers: Vec<String>, choice: &ColumnChoice) -> Result<Self> {
        let missing = |what, al: &[&str]| CoreError::MissingColumn {
            path: path.to_path_buf(),
            what,
            accepted: accepted(al),
            losses: if what == "loss" {
                crate::error::list(
                    headers
                        .iter()
                        .filter(|h| norm(h).contains("loss") || norm(h).contains("ppl"))
                        .map(|h| format!("'{h}'")),
                    ", ",
                )
            } else {
                String::new()
            },
        };
        let mut normed: Vec<String> = headers.iter().map(|h| norm(h)).collect();
        normed.sort();
        if let Some(w) = normed.windows(2).find(|w| w[0] == w[1] && !w[0].is_empty()) {
            let names = headers
                .iter()
                .filter(|h| norm(h) == w[0])
                .map(|h| format!("'{h}'"));
            return Err(CoreError::DuplicateColumn {
                path: path.to_path_buf(),
                names: crate::error::list(names, " and "),
            });
        }
        let h = &headers;
        let final_any = pick(h, FINAL);
        let params = one_of(
            path,
            h,
            "params (N)",
            PARAMS,
            choice.params.as_deref(),
            "--params-column",
            None,
        )?
        .ok_or_else(|| missing("params (N)", PARAMS))?;
        let loss = one_of(
            path,
            h,
            "loss",
            LOSS,
            choice.loss.as_deref(),
            "--loss-column",
            final_any,
        )?
        .ok_or_else(|| missing("loss", LOSS))?;
        let tokens = one_of(
            path,
            h,
            "tokens (D)",
            TOKENS,
            choice.tokens.as_deref(),
            "--tokens-column",
            None,
        )?;
        let flops = one_of(
            path,
            h,
            "flops (C)",
            FLOPS,
            choice.flops.as_deref(),
            "--flops-column",
            None,
        )?;
        let to_bits = match choice.loss_unit {
            LossUnit::Nats => 1.0 / std::f64::consts::LN_2,
            LossUnit::Bits => 1.0,
        };
        let (bytes, loss_scale, loss_unit) = match choice.bytes_per_token.as_deref() {
            None => (None, 1.0, choice.loss_unit.name()),
            Some(b) => match b.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => (None, to_bits / v, BITS_PER_BYTE),
                Ok(v) => {
                    return Err(CoreError::Setting(format!(
                        "--bytes-per-token {v}: give a positive number, or a column"
                    )))
                }
                Err(_) => (
                    Some(named(path, &headers, "--bytes-per-token", b)?),
                    to_bits,
                    BITS_PER_BYTE,
                ),
            },
        };
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
            bytes,
            loss_scale,
            loss_unit,
            filters: choice
                .filters
                .iter()
                .map(|f| named(path, &headers, "--where", &f.column).map(|i| (i, f.clone())))
                .collect::<Result<Vec<_>>>()?,
            names: headers,
        })
    }
}

/// A raw cell: text as found (JSON numbers are formatted back to text).
pub(super) type RawRow = Vec<Option<String>>;

pub(super) struct RowParser<'a> {
    pub(super) path: &'a Path,
    pub(super) cols: &'a Columns,
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
    pub(super) fn parse_into(
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
            finals.insert(run, v * self.loss_factor(raw, line)?);
        }
        Ok(obs)
    }

    /// `v`, read from column `col`, unless it lies outside `[lo, hi]`: a value no model can
    /// have is an error naming the line and column, not a point that moves the law.
    fn within(
        &self,
        raw: &RawRow,
        line: usize,
        col: usize,
        v: f64,
        lo: f64,
        hi: f64,
        problem: &'static str,
    ) -> Result<f64> {
        if (lo..=hi).contains(&v) {
            Ok(v)
        } else {
            let text = raw.get(col).cloned().flatten().unwrap_or_default();
            Err(self.bad(line, col, text.trim(), problem))
        }
    }

    /// What this row's losses are multiplied by to be in the table's unit.
    fn loss_factor(&self, raw: &RawRow, line: usize) -> Result<f64> {
        Ok(match self.cols.bytes {
            None => self.cols.loss_scale,
            Some(col) => self.cols.loss_scale / self.positive(raw, line, col)?,
        })
    }

    fn parse(&self, raw: &RawRow, line: usize) -> Result<Observation> {
        use super::limits::*;
        let c = self.cols;
        let params = self.positive(raw, line, c.params)?;
        let params = self.within(
            raw,
            line,
            c.params,
            params,
            MIN_PARAMS,
            MAX_PARAMS,
            PARAMS_PROBLEM,
        )?;
        let loss = self.positive(raw, line, c.loss)?;
        let loss = self.within(raw, line, c.loss, loss, MIN_LOSS, f64::MAX, LOSS_PROBLEM)?
            * self.loss_factor(raw, line)?;
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
        // Tokens given, or derived from the FLOPs (then the FLOPs column is the one named).
        let tokens_col = c.tokens.or(c.flops).expect("tokens or flops");
        let tokens = self.within(
            raw,
            line,
            tokens_col,
            tokens,
            MIN_TOKENS,
            MAX_TOKENS,
            TOKENS_PROBLEM,
        )?;
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
