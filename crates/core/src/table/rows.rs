//! Parsing a table's rows: each cell checked (a positive finite number within the limits of
//! any model), FLOPs against 6ND, unique tokens against tokens, losses into the table's unit.

use super::columns::Columns;
use super::Observation;
use crate::error::{CoreError, Result};
use std::collections::BTreeMap;
use std::path::Path;

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
