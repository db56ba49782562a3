//! The study pipeline that `fit`, `plot` and `run` share, as the command line uses it: the
//! fit options ([`isoflop_study::FitSpec`], flattened into each command), the progress lines
//! of a long fit, and the warnings and figures printed. The work is in `isoflop_study`.

use anyhow::Result;
use isoflop_core::RunTable;
use isoflop_fit::report::{FitReport, FitSettings};
use std::path::Path;

/// Options shared by `fit`, `plot`, `validate` and `run`.
pub type FitOpts = isoflop_study::FitSpec;

/// Prints a line of a long fit's progress on stderr, with the seconds since the first.
pub fn progress_line(line: &str) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let t = START.get_or_init(std::time::Instant::now);
    eprintln!("[{:6.1} s] {line}", t.elapsed().as_secs_f64());
}

/// The fit settings of the options (checked), with the progress lines on stderr.
pub fn settings(a: &FitOpts) -> Result<FitSettings> {
    let mut s = a.settings()?;
    s.parametric.progress = Some(progress_line);
    Ok(s)
}

/// Reads `runs` (a table or a folder of runs) with the options' columns and fits it: what
/// `fit`, `plot` and `run` do first.
///
/// # Errors
/// The options' error, the reader's (file, line, column), or the fit's.
pub fn read_and_fit(runs: &Path, opts: &FitOpts) -> Result<(RunTable, FitReport)> {
    Ok(isoflop_study::read_and_fit(
        runs,
        opts,
        Some(progress_line),
    )?)
}

/// Warns where the table mixes what may be several experiments.
pub fn warn_mixed(table: &RunTable, opts: &FitOpts) {
    for w in isoflop_study::mixed_warnings(table, opts) {
        eprintln!("warning: {w}");
    }
}

/// The value combinations of `columns` in `runs`, each as the filters that select it.
///
/// # Errors
/// The reader's error, or a column the file lacks.
pub fn groups(
    runs: &Path,
    opts: &FitOpts,
    columns: &[String],
) -> Result<Vec<Vec<isoflop_core::Filter>>> {
    Ok(isoflop_study::groups(runs, opts, columns)?)
}

/// Fails where nothing usable came out of a fit.
///
/// # Errors
/// That, in one line.
pub fn usable(report: &FitReport) -> Result<()> {
    Ok(isoflop_study::usable(report)?)
}

/// How this build names itself in a report.
pub fn provenance() -> isoflop_plot::report::Provenance {
    isoflop_plot::report::Provenance {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        versions: format!(
            "isoflop {} (plotters 0.3, contour 0.13)",
            env!("CARGO_PKG_VERSION")
        ),
    }
}

/// Prints the report's warnings and what could not be drawn.
pub fn print_drawn(report: &FitReport, written: &isoflop_plot::report::Written) {
    for w in report.warnings() {
        eprintln!("warning: {w}");
    }
    for s in &written.skipped {
        eprintln!("not drawn: {s}");
    }
}

/// Draws the figures, `figures.json` and `report.html` of `report` into `out`, projected to
/// `target_flops`; prints the report's warnings and what could not be drawn.
///
/// # Errors
/// The plot crate's error, naming the folder.
pub fn draw(
    out: &Path,
    report: &FitReport,
    table: &RunTable,
    target_flops: f64,
    sections: &[isoflop_plot::report::Section],
) -> Result<isoflop_plot::report::Written> {
    let written = isoflop_study::draw(out, report, table, target_flops, &provenance(), sections)?;
    print_drawn(report, &written);
    Ok(written)
}
