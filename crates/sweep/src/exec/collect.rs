//! The plan index a sweep writes into its results folder, and the table `isoflop fit` reads
//! from a sweep's finished runs.

use super::{state, RunState};
use crate::plan::Sweep;
use isoflop_core::record;
use isoflop_core::table::{PlanIndex, PlannedBudget, PLAN_FILE};
use isoflop_core::RunTable;
use std::path::Path;

/// Writes the sweep's [`PLAN_FILE`] into its results folder: each run's planned budget,
/// which the reader of run folders attaches to the run's rows.
///
/// # Errors
/// The I/O error, with the path.
pub fn write_plan_index(sweep: &Sweep, results: &Path) -> std::io::Result<()> {
    let index = PlanIndex {
        runs: sweep
            .runs
            .iter()
            .map(|r| (r.id.clone(), PlannedBudget { budget: r.budget }))
            .collect(),
    };
    std::fs::create_dir_all(results)?;
    record::write_atomic(
        &results.join(PLAN_FILE),
        &serde_json::to_vec_pretty(&index).expect("plan index serialises"),
    )
}

/// The table `isoflop fit` reads: every finished run of the sweep, read by the one reader
/// of run folders ([`RunTable::read_runs`]) and limited to the sweep's runs; and the ids of
/// the runs that are not in it, with their state.
///
/// # Errors
/// The reader's error (a bad curve, or no finished run), or the plan index's write error.
pub fn collect(
    sweep: &Sweep,
    results: &Path,
) -> Result<(RunTable, Vec<(String, RunState)>), isoflop_core::CoreError> {
    write_plan_index(sweep, results).map_err(|source| isoflop_core::CoreError::Io {
        path: results.join(PLAN_FILE),
        source,
    })?;
    let missing: Vec<(String, RunState)> = sweep
        .runs
        .iter()
        .map(|r| (r.id.clone(), state(results, r)))
        .filter(|(_, st)| !matches!(st, RunState::Finished { left_out: None, .. }))
        .collect();
    let mut table = RunTable::read_runs(results)?;
    let planned: std::collections::HashSet<&str> =
        sweep.runs.iter().map(|r| r.id.as_str()).collect();
    let before = table.rows.len();
    let mut extra = std::collections::BTreeSet::new();
    table.rows.retain(|r| {
        let keep = r.run.as_deref().is_some_and(|id| planned.contains(id));
        if !keep {
            extra.insert(r.run.clone().unwrap_or_default());
        }
        keep
    });
    table.finals.retain(|id, _| planned.contains(id.as_str()));
    if table.rows.len() < before {
        table.notes.push(format!(
            "left out run folders that the sweep does not plan: {}",
            extra.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if table.rows.is_empty() {
        return Err(isoflop_core::CoreError::Empty {
            path: results.to_path_buf(),
        });
    }
    Ok((table, missing))
}
