//! The study layer of a fit: every approach of one table (the [`crate::report`] below it),
//! with the checks that refit it: the design check ([`crate::design`]) and the law forms
//! compared on held-out runs ([`crate::validate`]). The approaches sit below, each knowing
//! nothing of the others; this module is the only one that calls them all and their checks.

use crate::error::FitError;
use crate::report::{fit_approaches, FitReport, FitSettings, Outcome};
use isoflop_core::RunTable;

/// Fits every requested approach that the table supports.
///
/// # Errors
/// When no approach could be fitted, or when `settings.explicit` is set and a requested
/// approach could not be: the error names the approach and why.
///
/// # Example
/// ```
/// use isoflop_core::RunTable;
/// use isoflop_fit::{fit_table, FitSettings};
/// // A 4 x 4 grid of runs from L = 1.8 + 480/N^0.35 + 2100/D^0.37.
/// let mut csv = String::from("params,tokens,loss\n");
/// for n in [1e7, 1e8, 1e9, 1e10] {
///     for d in [1e9, 1e10, 1e11, 1e12] {
///         let l = 1.8 + 480.0 / f64::powf(n, 0.35) + 2100.0 / f64::powf(d, 0.37);
///         csv += &format!("{n},{d},{l}\n");
///     }
/// }
/// let table = RunTable::from_csv(std::path::Path::new("runs.csv"), &csv).unwrap();
/// let mut settings = FitSettings::default().with_bootstrap(0, 0);
/// settings.approaches = vec![3];
/// let report = fit_table(&table, &settings).unwrap();
/// let law = report.approach3.fitted().unwrap().law;
/// assert!((law.alpha - 0.35).abs() < 1e-3 && (law.e - 1.8).abs() < 1e-3);
/// ```
pub fn fit_table(table: &RunTable, settings: &FitSettings) -> Result<FitReport, FitError> {
    let mut report = fit_approaches(table, settings)?;
    let finals = table.final_rows();
    let (points, _) = isoflop_core::table::drop_highest_loss(&finals, settings.drop_top);
    add_checks(&mut report, table, &points, settings)?;
    Ok(report)
}

/// The design check (Approaches 1 and 2 on Approach 3's own losses) and, with two law forms
/// or more, the forms' comparison held out.
fn add_checks(
    report: &mut FitReport,
    table: &RunTable,
    points: &[isoflop_core::Observation],
    settings: &FitSettings,
) -> Result<(), FitError> {
    if let Some(f) = report.approach3.fitted() {
        // The check refits the approaches fitted here, and only those.
        let mut check = settings.clone();
        check.approaches.retain(|&k| match k {
            1 => report.approach1.fitted().is_some(),
            2 => report.approach2.fitted().is_some(),
            _ => false,
        });
        if !check.approaches.is_empty() {
            report.design_check = Some(crate::design::design_check(table, &f.law, &check)?);
        }
    }
    if report.forms().len() >= 2 {
        report.held_out = Some(
            match crate::validate::forms_held_out(table, points, settings) {
                Ok(h) => Outcome::Fitted(h),
                Err(e) => Outcome::Skipped(e.to_string()),
            },
        );
    }
    Ok(())
}
