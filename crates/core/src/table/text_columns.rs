//! Text columns no quantity uses whose values vary: a table that mixes experiments.
//!
//! Such a column is a label of experiments (a source, a dataset, a condition) when one of
//! its values is shared by runs of different losses: the runs it names form a study of
//! their own. A column whose every value belongs to one run, or to runs of one loss, names
//! or draws points, not experiments (a run's name; Epoch's digitised `color`, a colour of
//! the loss), and is not warned about.

use super::columns::Columns;
use super::rows::RawRow;

/// The values of the columns no quantity uses, to find text columns that vary.
pub(crate) struct TextColumns {
    unused: Vec<usize>,
    /// The first 20 distinct values of each, in order of appearance.
    values: Vec<Vec<String>>,
    numeric: Vec<bool>,
    /// Every distinct value of each (so the count printed is exact), with the (loss, run)
    /// cells of its first row: a value seen again with another loss and another run is
    /// shared.
    first: Vec<std::collections::HashMap<String, (String, Option<String>)>>,
    /// Whether some value of each is shared by runs of different losses.
    shared: Vec<bool>,
    loss: usize,
    run: Option<usize>,
}

impl TextColumns {
    pub(crate) fn new(cols: &Columns) -> Self {
        let unused = cols.unused();
        let n = unused.len();
        TextColumns {
            unused,
            values: vec![Vec::new(); n],
            numeric: vec![true; n],
            first: vec![std::collections::HashMap::new(); n],
            shared: vec![false; n],
            loss: cols.loss,
            run: cols.run,
        }
    }

    pub(crate) fn see(&mut self, raw: &RawRow) {
        let cell = |i: usize| raw.get(i).cloned().flatten().map(|c| c.trim().to_string());
        let loss = cell(self.loss).unwrap_or_default();
        // Without a run column, each row is a run.
        let run = self.run.and_then(cell);
        for (k, &i) in self.unused.iter().enumerate() {
            let Some(v) = cell(i).filter(|v| !v.is_empty()) else {
                continue;
            };
            if v.parse::<f64>().is_err() {
                self.numeric[k] = false;
            }
            match self.first[k].get(&v) {
                None => {
                    if self.values[k].len() < 20 {
                        self.values[k].push(v.clone());
                    }
                    self.first[k].insert(v, (loss.clone(), run.clone()));
                }
                Some((l, r)) if !self.shared[k] => {
                    let other_run = run.is_none() || r != &run;
                    self.shared[k] = other_run && l != &loss;
                }
                Some(_) => {}
            }
        }
    }

    pub(crate) fn varying(self, cols: &Columns) -> Vec<(String, usize, Vec<String>)> {
        self.unused
            .iter()
            .enumerate()
            .filter(|(k, _)| !self.numeric[*k] && self.first[*k].len() >= 2 && self.shared[*k])
            .map(|(k, &i)| {
                (
                    cols.names[i].clone(),
                    self.first[k].len(),
                    self.values[k].clone(),
                )
            })
            .collect()
    }
}
