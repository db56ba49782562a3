//! Text columns no quantity uses whose values vary: a table that mixes experiments.

use super::columns::Columns;
use super::rows::RawRow;

/// The values of the columns no quantity uses, to find text columns that vary.
pub(crate) struct TextColumns {
    unused: Vec<usize>,
    /// The first 20 distinct values of each, in order of appearance.
    values: Vec<Vec<String>>,
    /// Every distinct value of each, so the count printed is exact.
    distinct: Vec<std::collections::HashSet<String>>,
    numeric: Vec<bool>,
}

impl TextColumns {
    pub(crate) fn new(cols: &Columns) -> Self {
        let unused = cols.unused();
        let n = unused.len();
        TextColumns {
            unused,
            values: vec![Vec::new(); n],
            distinct: vec![std::collections::HashSet::new(); n],
            numeric: vec![true; n],
        }
    }

    pub(crate) fn see(&mut self, raw: &RawRow) {
        for (k, &i) in self.unused.iter().enumerate() {
            let v = raw.get(i).cloned().flatten().unwrap_or_default();
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            if v.parse::<f64>().is_err() {
                self.numeric[k] = false;
            }
            if self.distinct[k].insert(v.to_string()) && self.values[k].len() < 20 {
                self.values[k].push(v.to_string());
            }
        }
    }

    pub(crate) fn varying(self, cols: &Columns) -> Vec<(String, usize, Vec<String>)> {
        self.unused
            .iter()
            .enumerate()
            .filter(|(k, _)| !self.numeric[*k] && self.distinct[*k].len() >= 2)
            .map(|(k, &i)| {
                (
                    cols.names[i].clone(),
                    self.distinct[k].len(),
                    self.values[k].clone(),
                )
            })
            .collect()
    }
}
