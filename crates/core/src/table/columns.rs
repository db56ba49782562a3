//! Finding a table's columns (aliases, the user's choice, ambiguity) and parsing its rows.

use super::counted::{LossUnit, BITS_PER_BYTE};
use super::rows::RawRow;
use crate::error::{CoreError, Result};
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
