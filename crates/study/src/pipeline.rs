//! The stages of a study and [`run_study`], which runs them in order: dispatch (the
//! caller's), [`collect`], [`read_and_fit`], validate, [`draw`].

use crate::error::StudyError;
use crate::spec::FitSpec;
use isoflop_core::study_dir::StudyDir;
use isoflop_core::RunTable;
use isoflop_fit::report::FitReport;
use isoflop_fit::study::fit_table;
use isoflop_fit::validate::Validation;
use isoflop_fit::LawSet;
use isoflop_plot::report::{Provenance, Section, Written};
use isoflop_sweep::exec::{self, RunState};
use isoflop_sweep::plan::Sweep;
use std::path::{Path, PathBuf};

/// A study: its plan (the sweep file and its runs), its fit options and its folder.
#[derive(Clone, Debug)]
pub struct Study {
    /// The sweep file.
    pub sweep_file: PathBuf,
    /// Its runs.
    pub sweep: Sweep,
    /// How the runs are fitted.
    pub fit: FitSpec,
    /// Where the table, laws, fit, validation, figures and report go.
    pub dir: StudyDir,
    /// Replace files in the folder that isoflop did not write.
    pub force: bool,
}

/// The caller's way of training a study's runs (a local pool; none where they were trained
/// elsewhere): given the sweep and its file, the number of runs that failed.
pub type Dispatch<'a> =
    &'a mut dyn FnMut(&Sweep, &Path) -> Result<usize, Box<dyn std::error::Error + Send + Sync>>;

/// What a study made.
pub struct Done {
    /// Runs that failed in the dispatch (0 without one).
    pub failed: usize,
    /// The collected table and what it left out.
    pub collected: Collected,
    /// The table as fitted.
    pub table: RunTable,
    /// The fit.
    pub report: FitReport,
    /// Its laws (`law.json`).
    pub laws: LawSet,
    /// The validation on the largest budget, or why there is none.
    pub validation: Result<Validation, String>,
    /// The study's largest budget (or its largest run's FLOPs where it plans none).
    pub largest: f64,
    /// The figures drawn.
    pub written: Written,
}

/// Runs `study`: `dispatch` (where given), then collects every ended run into the folder's
/// table, fits it, writes `law.json` and `fit.json`, validates on the largest budget
/// (`validation.json`), and draws the figures and the report projected to 100 times the
/// largest budget. `progress` gets a line at each phase of a long fit.
///
/// # Errors
/// The dispatch's error; [`collect`]'s, [`read_and_fit`]'s, [`draw`]'s; a file that could
/// not be written. A validation that cannot be made is not an error (see [`Done`]).
pub fn run_study(
    study: &Study,
    dispatch: Option<Dispatch>,
    prov: &Provenance,
    progress: Option<fn(&str)>,
) -> Result<Done, StudyError> {
    let mut settings = study.fit.settings().map_err(StudyError::Options)?;
    settings.parametric.progress = progress;
    let failed = match dispatch {
        Some(d) => d(&study.sweep, &study.sweep_file).map_err(StudyError::Dispatch)?,
        None => 0,
    };
    let dir = &study.dir;
    std::fs::create_dir_all(dir.root()).map_err(|source| StudyError::Write {
        path: dir.root().into(),
        source,
    })?;
    let collected = collect(&study.sweep_file, &dir.runs_table(), study.force)?;
    let (table, report) = read_and_fit(&collected.path, &study.fit, progress)?;
    let laws = report.laws();
    write(
        &dir.law(),
        &serde_json::to_vec_pretty(&laws).expect("laws serialise"),
    )?;
    write(
        &dir.fit(),
        &serde_json::to_vec_pretty(&report).expect("reports serialise"),
    )?;
    let s = &study.sweep;
    let largest = match s.runs.iter().filter_map(|r| r.budget).fold(0.0, f64::max) {
        b if b > 0.0 => b,
        _ => table.rows.iter().map(|o| o.flops).fold(0.0, f64::max),
    };
    // Validation: the same fit on all but the largest budget, scored on it.
    let holdout = isoflop_fit::validate::Holdout::Default;
    let validation = isoflop_fit::validate::validate(&table, &settings, holdout, false)
        .map_err(|e| e.to_string());
    if let Ok(v) = &validation {
        write(
            &dir.validation(),
            &serde_json::to_vec_pretty(v).expect("validations serialise"),
        )?;
    }
    let sections: Vec<Section> = validation
        .iter()
        .map(isoflop_plot::report::validation_section)
        .collect();
    let written = draw(
        dir.root(),
        &report,
        &table,
        100.0 * largest,
        prov,
        &sections,
    )?;
    Ok(Done {
        failed,
        collected,
        table,
        report,
        laws,
        validation,
        largest,
        written,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), StudyError> {
    isoflop_core::manifest::write(path, bytes).map_err(|source| StudyError::Write {
        path: path.into(),
        source,
    })
}

/// The table [`collect`] wrote and what it says about the runs left out of it.
#[derive(Clone, Debug)]
pub struct Collected {
    /// The table.
    pub path: PathBuf,
    /// A line naming the runs not in the table and why, where there are any.
    pub missing: Option<String>,
    /// A line naming the trunks of cooldown branches (whose rows are in their branches'
    /// curves), where there are any.
    pub trunks: Option<String>,
}

/// Collects every run of the sweep in `sweep_file` that ended into the table `out` (a file
/// isoflop wrote, or a new one, unless `force`).
///
/// # Errors
/// [`StudyError::Foreign`] for a file isoflop did not write; [`StudyError::NothingToCollect`]
/// where no run has ended; the sweep file's and the runs' read errors.
pub fn collect(sweep_file: &Path, out: &Path, force: bool) -> Result<Collected, StudyError> {
    let s = Sweep::read(sweep_file)?;
    let results = s.results_dir(sweep_file);
    if !force && isoflop_core::manifest::foreign(out) {
        return Err(StudyError::Foreign(format!(
            "{} exists and isoflop did not write it (or it changed since); collect would replace it: give another --out, or pass --force",
            out.display()
        )));
    }
    let (table, missing) = match exec::collect(&s, &results) {
        Ok(t) => t,
        Err(isoflop_core::CoreError::Empty { .. } | isoflop_core::CoreError::NoRuns { .. }) => {
            return Err(StudyError::NothingToCollect {
                sweep: sweep_file.into(),
            })
        }
        Err(e) => return Err(e.into()),
    };
    let missing = (!missing.is_empty()).then(|| {
        format!(
            "{} run(s) not in the table: {}",
            missing.len(),
            isoflop_core::error::list_runs(missing.iter().map(|(id, st)| format!(
                "{id} ({})",
                match st {
                    RunState::Finished {
                        left_out: Some(w), ..
                    } => format!("finished, but {w}"),
                    RunState::Failed { status, reason } => format!("{status}: {reason}"),
                    other => other.name().to_string(),
                }
            )))
        )
    });
    let trunks: Vec<&str> = s
        .runs
        .iter()
        .filter(|r| r.is_trunk())
        .map(|r| r.id.as_str())
        .collect();
    let trunks = (!trunks.is_empty()).then(|| {
        format!(
            "{} trunk(s) of cooldown branches not in the table (each branch's curve holds its trunk's rows): {}",
            trunks.len(),
            trunks.join(", ")
        )
    });
    write(out, table.to_csv().as_bytes())?;
    Ok(Collected {
        path: out.into(),
        missing,
        trunks,
    })
}

/// Reads `runs` (a table or a folder of runs) with the options' columns and fits it: what
/// `fit`, `plot` and `run` do first. `progress` gets a line at each phase of a long fit.
///
/// # Errors
/// The options' error, the reader's (file, line, column), or the fit's.
pub fn read_and_fit(
    runs: &Path,
    spec: &FitSpec,
    progress: Option<fn(&str)>,
) -> Result<(RunTable, FitReport), StudyError> {
    // The options are checked before a large table is read.
    spec.settings().map_err(StudyError::Options)?;
    let table = RunTable::read_with(runs, &spec.columns()).map_err(|source| StudyError::Read {
        path: runs.into(),
        source,
    })?;
    let report = fit(&table, spec, progress).map_err(|source| StudyError::Fit {
        path: runs.into(),
        source,
    })?;
    Ok((table, report))
}

/// Fits `table` (read with [`FitSpec::columns`]) with the options of `spec`: the one fit
/// that `isoflop fit`, `plot`, `run` (through [`read_and_fit`]) and Python's `isoflop.fit`
/// make. `progress` gets a line at each phase of a long Approach 3.
///
/// # Errors
/// [`isoflop_fit::FitError::InvalidOption`] for options no fit can use; the fit's errors.
pub fn fit(
    table: &RunTable,
    spec: &FitSpec,
    progress: Option<fn(&str)>,
) -> Result<FitReport, isoflop_fit::FitError> {
    let mut s = spec.settings()?;
    s.parametric.progress = progress;
    fit_table(table, &s)
}

/// Fails where nothing usable came out of a fit: Approach 3 did not converge and no other
/// approach was fitted. Every command checks this after reporting what it has.
///
/// # Errors
/// [`StudyError::Unusable`].
pub fn usable(report: &FitReport) -> Result<(), StudyError> {
    let converged3 = report.approach3.fitted().map(|f| f.diagnostics.converged);
    if converged3 == Some(false)
        && report.approach1.fitted().is_none()
        && report.approach2.fitted().is_none()
    {
        return Err(StudyError::Unusable);
    }
    Ok(())
}

/// Draws the figures, `figures.json` and `report.html` of `report` into `out`, projected to
/// `target_flops`.
///
/// # Errors
/// The plot crate's error, naming the folder.
pub fn draw(
    out: &Path,
    report: &FitReport,
    table: &RunTable,
    target_flops: f64,
    prov: &Provenance,
    sections: &[Section],
) -> Result<Written, StudyError> {
    isoflop_plot::report::write_all_with(out, report, table, target_flops, prov, sections).map_err(
        |source| StudyError::Draw {
            path: out.into(),
            source,
        },
    )
}

/// Warnings where the table mixes what may be several experiments: text columns whose
/// values vary, with no `--where` or `--group-by` to separate them.
pub fn mixed_warnings(table: &RunTable, spec: &FitSpec) -> Vec<String> {
    if !spec.filters.is_empty() || !spec.group_by.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (col, n, values) in &table.varying_text {
        let col = isoflop_core::error::clip(col);
        let limit = isoflop_core::error::LIST_MAX;
        let shown: Vec<String> = values
            .iter()
            .take(limit)
            .map(|v| isoflop_core::error::clip(v))
            .collect();
        let more = if *n > shown.len() {
            format!(", and {} more", n - shown.len())
        } else {
            String::new()
        };
        let shown = shown.join(", ");
        out.push(format!(
            "column '{col}' holds {n} different values ({shown}{more}): the runs are fitted as one study; --group-by {col} fits each separately, --where '{col}=VALUE' picks one"
        ));
    }
    out
}

/// The value combinations of `columns` in `runs` (after the options' filters), each as the
/// filters that select it.
///
/// # Errors
/// The reader's error, or a column the file lacks.
pub fn groups(
    runs: &Path,
    spec: &FitSpec,
    columns: &[String],
) -> Result<Vec<Vec<isoflop_core::Filter>>, StudyError> {
    let mut out: Vec<Vec<isoflop_core::Filter>> = vec![Vec::new()];
    for col in columns {
        let mut next = Vec::new();
        for g in out {
            let mut choice = spec.columns();
            choice.filters.extend(g.iter().cloned());
            for v in RunTable::distinct_values(runs, col, &choice)? {
                let mut h = g.clone();
                h.push(isoflop_core::Filter {
                    column: col.clone(),
                    value: v,
                    equal: true,
                });
                next.push(h);
            }
        }
        out = next;
    }
    Ok(out)
}
