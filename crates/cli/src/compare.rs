//! Fits side by side: `fit --group-by` (each group of rows alone) and `fit
//! --compare-conventions` (the whole table under each way of counting N and C), one row of
//! exponents each.

use crate::study::{self, FitOpts};
use anyhow::{bail, Result};
use isoflop_fit::report::FitReport;
use std::io::Write;
use std::path::Path;

type Row = (String, Result<FitReport>);

/// `fit --group-by`: each group fitted alone, one row per group.
pub fn fit_groups(runs: &Path, opts: &FitOpts, json: bool) -> Result<()> {
    let s = study::settings(opts)?;
    let groups = study::groups(runs, opts, &opts.group_by)?;
    let mut rows: Vec<Row> = Vec::new();
    for g in &groups {
        let label = g
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut choice = opts.columns();
        choice.filters.extend(g.iter().cloned());
        let result = isoflop_core::RunTable::read_with(runs, &choice)
            .map_err(anyhow::Error::from)
            .and_then(|t| isoflop_fit::fit_table(&t, &s).map_err(anyhow::Error::from));
        rows.push((label, result));
    }
    let title = format!(
        "isoflop fit: {} in {} groups by {}",
        runs.display(),
        rows.len(),
        opts.group_by.join(", ")
    );
    print_rows(&title, "group", "group", &rows, json)
}

/// `fit --compare-conventions`: the table refitted under each convention it has both
/// columns of ([`isoflop_core::table::CONVENTIONS`]).
pub fn fit_conventions(runs: &Path, opts: &FitOpts, json: bool) -> Result<()> {
    let s = study::settings(opts)?;
    let table = isoflop_core::RunTable::read_with(runs, &opts.columns())?;
    let conventions = table.counted.conventions.clone();
    if conventions.len() < 2 {
        bail!(
            "{}: --compare-conventions needs columns of two conventions or more; it has {} (columns it looks for: {}; `isoflop import --model-config` writes them)",
            runs.display(),
            conventions.len(),
            isoflop_core::table::CONVENTIONS
                .iter()
                .map(|(_, p, f)| format!("{p} with {f}"))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let mut rows: Vec<Row> = Vec::new();
    for c in &conventions {
        let mut choice = opts.columns();
        choice.params = Some(c.params.clone());
        choice.flops = Some(c.flops.clone());
        let result = isoflop_core::RunTable::read_with(runs, &choice)
            .map_err(anyhow::Error::from)
            .and_then(|t| isoflop_fit::fit_table(&t, &s).map_err(anyhow::Error::from));
        rows.push((format!("{} ({} / {})", c.label, c.params, c.flops), result));
    }
    let title = format!(
        "isoflop fit: {} under {} counting conventions (N column / C column)",
        runs.display(),
        rows.len()
    );
    print_rows(&title, "convention", "convention", &rows, json)
}

fn print_rows(title: &str, key: &str, heading: &str, rows: &[Row], json: bool) -> Result<()> {
    let mut w = std::io::stdout().lock();
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|(label, r)| match r {
                Ok(rep) => serde_json::json!({ key: label, "report": rep }),
                Err(e) => serde_json::json!({ key: label, "error": format!("{e:#}") }),
            })
            .collect();
        serde_json::to_writer_pretty(&mut w, &v)?;
        writeln!(w)?;
        return Ok(());
    }
    writeln!(w, "{title}")?;
    writeln!(
        w,
        "  a = the exponent of N_opt in C, b of D_opt (Approach 3), with 95% intervals"
    )?;
    let width = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(5)
        .clamp(12, 72);
    writeln!(
        w,
        "  {:<width$} {:>5} {:>22} {:>22} {:>22} {:>22} {:>9}",
        heading, "runs", "Approach 1 a", "Approach 2 a", "Approach 3 a", "Approach 3 b", "budgets"
    )?;
    let cell = |x: Option<(f64, Option<isoflop_fit::stats::Interval>)>| match x {
        Some((v, Some(i))) => format!("{v:.3} [{:.3}, {:.3}]", i.lo, i.hi),
        Some((v, None)) => format!("{v:.3}"),
        None => "-".into(),
    };
    for (label, r) in rows {
        match r {
            Ok(rep) => {
                let a1 = rep.approach1.fitted().map(|f| {
                    (
                        f.frontier.params_exponent,
                        f.intervals.as_ref().map(|i| i.params_exponent),
                    )
                });
                let a2 = rep.approach2.fitted().map(|f| {
                    (
                        f.frontier.params_exponent,
                        f.intervals.as_ref().map(|i| i.params_exponent),
                    )
                });
                let a3 = rep.approach3.fitted().filter(|f| f.diagnostics.converged);
                let a3a = a3.map(|f| {
                    (
                        f.params_exponent,
                        f.intervals.as_ref().map(|i| i.params_exponent),
                    )
                });
                let a3b = a3.map(|f| {
                    (
                        f.tokens_exponent,
                        f.intervals.as_ref().map(|i| i.tokens_exponent),
                    )
                });
                let budgets = rep
                    .approach2
                    .fitted()
                    .map(|f| {
                        let ok = f.budgets.iter().filter(|b| b.refused.is_none()).count();
                        format!("{ok}/{}", f.budgets.len())
                    })
                    .unwrap_or_else(|| "-".into());
                writeln!(
                    w,
                    "  {:<width$} {:>5} {:>22} {:>22} {:>22} {:>22} {:>9}",
                    label,
                    rep.runs,
                    cell(a1),
                    cell(a2),
                    cell(a3a),
                    cell(a3b),
                    budgets
                )?;
            }
            Err(e) => writeln!(
                w,
                "  {label:<width$} not fitted: {}",
                format!("{e:#}").replace('\n', " ")
            )?,
        }
    }
    writeln!(w, "  budgets: usable of found (Approach 2)")?;
    Ok(())
}
