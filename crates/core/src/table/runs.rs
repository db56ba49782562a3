//! The one reader of run folders: a folder of runs (or one run) as a run table.

use super::{ColumnChoice, PlanIndex, PlannedBudget, RunTable, PLAN_FILE};
use crate::error::{CoreError, Result};
use std::collections::BTreeMap;
use std::path::Path;

impl RunTable {
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
    /// As [`RunTable::read`], for the first bad curve; [`CoreError::NoRuns`] when no run
    /// folder holds a finished run.
    ///
    ///
    /// # Example
    /// ```
    /// use isoflop_core::writer::RunWriter;
    /// # let dir = std::env::temp_dir().join(format!("isoflop-doc-runs-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// // Two runs written as any trainer writes them; one finishes, one does not.
    /// for (name, steps) in [("a", 10u64), ("b", 4)] {
    ///     let mut w = RunWriter::open(&dir.join(name), name, 1_000_000, &serde_json::json!({})).unwrap();
    ///     for s in 1..=steps {
    ///         w.log(s, 1000 * s, 4.0 - 0.1 * s as f64, 1e-3, None, None).unwrap();
    ///     }
    ///     if name == "a" {
    ///         w.finish(None).unwrap();
    ///     } else {
    ///         w.flush().unwrap();
    ///     }
    /// }
    /// let table = isoflop_core::RunTable::read_runs(&dir).unwrap();
    /// assert_eq!(table.rows.len(), 10); // run a's curve; b is left out, and named
    /// assert!(table.notes[0].contains("b (unfinished"), "{:?}", table.notes);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    /// [`RunSummary::fit_loss`]: crate::record::RunSummary::fit_loss
    pub fn read_runs(dir: &Path) -> Result<RunTable> {
        Self::read_runs_with(dir, &ColumnChoice::default())
    }

    /// [`RunTable::read_runs`] with the user's choice of params, tokens and flops columns
    /// and loss unit (the loss is each curve's `loss` column); `--where` filters do not
    /// apply to run folders, and bytes per token must be a number.
    ///
    /// # Errors
    /// As [`RunTable::read_runs`]; [`CoreError::Setting`] for bytes per token given as a
    /// column.
    pub fn read_runs_with(dir: &Path, choice: &ColumnChoice) -> Result<RunTable> {
        use crate::record::{read_json, run_dirs, RunStatus, RunSummary, CURVE_FILE, SUMMARY_FILE};
        let plan: BTreeMap<String, PlannedBudget> = read_json::<PlanIndex>(&dir.join(PLAN_FILE))
            .map(|p| p.runs)
            .unwrap_or_default();
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        let mut skipped = Vec::new();
        let mut finals = BTreeMap::new();
        let curve_choice = ColumnChoice {
            filters: Vec::new(),
            ..choice.clone()
        }
        .with_loss("loss");
        if let Some(b) = &choice.bytes_per_token {
            if choice.loss_scale().is_none() {
                return Err(CoreError::Setting(format!(
                    "--bytes-per-token {}: run folders take a number (a column applies to tables)",
                    crate::error::clip(b)
                )));
            }
        }
        let mut counted = None;
        let scale = choice.loss_scale().unwrap_or(1.0);
        for run in run_dirs(dir) {
            let name = run
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(problem) = crate::record::outside_problem(dir, &run) {
                return Err(CoreError::Outside(problem));
            }
            let summary_path = run.join(SUMMARY_FILE);
            let summary = match read_json::<RunSummary>(&summary_path) {
                Ok(s) if s.status == RunStatus::Finished => s,
                Ok(s) => {
                    skipped.push(format!(
                        "{name} ({:?}{})",
                        s.status,
                        s.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ));
                    continue;
                }
                Err(_) if !summary_path.exists() => {
                    skipped.push(format!("{name} (unfinished: no summary.json)"));
                    continue;
                }
                Err(e) => {
                    skipped.push(format!("{name} (its summary.json cannot be read: {e})"));
                    continue;
                }
            };
            if !run.join(CURVE_FILE).exists() {
                skipped.push(format!(
                    "{name} (finished, but its {CURVE_FILE} is missing)"
                ));
                continue;
            }
            if crate::record::is_trunk(&run) {
                // Its constant-rate curve, never cooled down, lives on in its branches.
                skipped.push(format!("{name} (a trunk of cooldown branches)"));
                continue;
            }
            let p = run.join(CURVE_FILE);
            let text = std::fs::read_to_string(&p).map_err(|source| CoreError::Io {
                path: p.clone(),
                source,
            })?;
            let t = Self::from_csv_with(&p, &text, &curve_choice)?;
            if counted.is_none() {
                counted = Some(t.counted.clone());
            }
            let budget = plan.get(&name).and_then(|b| b.budget);
            // The run's name is its curve's (a trainer may name it other than its folder);
            // its final loss goes under the same name.
            let mut run_name = name.clone();
            for mut r in t.rows {
                r.run = Some(r.run.unwrap_or_else(|| name.clone()));
                run_name = r.run.clone().unwrap_or_default();
                r.budget = r.budget.or(budget);
                rows.push(r);
            }
            if let Some(l) = summary.fit_loss().filter(|l| l.is_finite() && *l > 0.0) {
                finals.insert(run_name, l * scale);
            }
        }
        if !skipped.is_empty() {
            notes.push(format!(
                "{} run(s) left out: {}",
                skipped.len(),
                crate::error::list_runs(&skipped)
            ));
        }
        if rows.is_empty() {
            return Err(CoreError::NoRuns {
                path: dir.to_path_buf(),
                curve: CURVE_FILE,
                left_out: if skipped.is_empty() {
                    String::new()
                } else {
                    format!("; left out: {}", crate::error::list_runs(&skipped))
                },
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
            varying_text: Vec::new(),
            counted: counted.unwrap_or_default(),
        })
    }
}
