//! The split of a validation: which runs are held out (`Holdout`), and the table of the
//! rest.

use super::*;

pub(super) fn run_key(o: &Observation) -> String {
    o.run.clone().unwrap_or_else(|| format!("line {}", o.line))
}

/// The table restricted to the runs whose keys `keep` holds.
pub(super) fn subset(table: &RunTable, keep: &std::collections::HashSet<String>) -> RunTable {
    let mut t = table.clone();
    t.rows.retain(|o| keep.contains(&run_key(o)));
    t.finals.retain(|k, _| keep.contains(k));
    t
}

/// A hold-out split of a table's final points, in their order.
pub(super) struct Split {
    /// The rule that chose the held-out runs, in words.
    pub(super) rule: String,
    /// The points fitted.
    pub(super) fitted: Vec<Observation>,
    /// The points held out.
    pub(super) held: Vec<Observation>,
    /// The table restricted to the fitted runs.
    pub(super) table: RunTable,
}

/// Splits `points` (final points of `table`) by `holdout`.
pub(super) fn split(
    table: &RunTable,
    points: &[Observation],
    holdout: Holdout,
    settings: &FitSettings,
) -> Result<Split, FitError> {
    let (held, rule) = choose(points, holdout, settings)?;
    let (held, fitted): (Vec<_>, Vec<_>) = points.iter().cloned().zip(held).partition(|p| p.1);
    let fitted: Vec<Observation> = fitted.into_iter().map(|(o, _)| o).collect();
    let keep = fitted.iter().map(run_key).collect();
    Ok(Split {
        rule,
        table: subset(table, &keep),
        fitted,
        held: held.into_iter().map(|(o, _)| o).collect(),
    })
}

pub(super) fn split_error(what: String) -> FitError {
    FitError::InvalidOption(format!("hold-out split: {what}"))
}

/// Which final points are held out, and the rule in words.
pub(super) fn choose(
    finals: &[Observation],
    holdout: Holdout,
    settings: &FitSettings,
) -> Result<(Vec<bool>, String), FitError> {
    let flops: Vec<f64> = finals.iter().map(|o| o.flops).collect();
    let (lo, hi) = flops
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &c| (a.min(c), b.max(c)));
    let budgets = group_budgets(finals, &settings.isoflop);
    let top = |k: usize| -> Result<(Vec<bool>, String), FitError> {
        if k == 0 || k >= budgets.len() {
            return Err(split_error(format!(
                "--holdout-top-budgets {k} of {} budgets leaves no budget on one side",
                budgets.len()
            )));
        }
        // Every run at or above the held budgets' smallest FLOPs goes with them (runs that
        // no budget took included), so the fitted side lies wholly below.
        let from = budgets[budgets.len() - k..]
            .iter()
            .flat_map(|(_, idx)| idx.iter().map(|&i| finals[i].flops))
            .fold(f64::INFINITY, f64::min);
        let held: Vec<bool> = finals.iter().map(|o| o.flops >= from).collect();
        Ok((
            held,
            format!(
                "the {k} largest of {} budgets (every run from {from:.3e} FLOPs up)",
                budgets.len()
            ),
        ))
    };
    let (held, rule) = match holdout {
        Holdout::TopBudgets(k) => top(k)?,
        Holdout::FlopsAbove(c) => {
            if !(c >= lo && c < hi) {
                return Err(split_error(format!(
                    "--holdout-flops-above {c:.3e} lies outside the runs' FLOPs ({lo:.3e} to {hi:.3e})"
                )));
            }
            (
                flops.iter().map(|&f| f > c).collect(),
                format!("runs above {c:.3e} FLOPs"),
            )
        }
        Holdout::ParamsAbove(n) => {
            let (plo, phi) = finals.iter().fold((f64::INFINITY, 0.0f64), |(a, b), o| {
                (a.min(o.params), b.max(o.params))
            });
            if !(n >= plo && n < phi) {
                return Err(split_error(format!(
                    "--holdout-params-above {n:.3e} lies outside the runs' sizes ({plo:.3e} to {phi:.3e})"
                )));
            }
            (
                finals.iter().map(|o| o.params > n).collect(),
                format!("runs above {n:.3e} parameters"),
            )
        }
        Holdout::Default => {
            let usable = budgets.iter().filter(|(p, _)| p.runs >= 3).count();
            if budgets.len() >= 3 && usable >= 3 {
                top(1)?
            } else {
                let mut v = flops.clone();
                v.sort_by(f64::total_cmp);
                let p80 = v[((v.len() - 1) as f64 * 0.8).round() as usize];
                (
                    flops.iter().map(|&f| f > p80).collect(),
                    format!("runs above the 80th percentile of FLOPs ({p80:.3e})"),
                )
            }
        }
    };
    let n_held = held.iter().filter(|h| **h).count();
    let n_fit = held.len() - n_held;
    if n_held < 2 || n_fit < 6 {
        return Err(split_error(format!(
            "{rule}: {n_fit} runs fitted and {n_held} held out; the fit needs at least 6 and at least 2 must be held out"
        )));
    }
    let fitted: Vec<Observation> = finals
        .iter()
        .zip(&held)
        .filter(|(_, h)| !**h)
        .map(|(o, _)| o.clone())
        .collect();
    let fitted_budgets = group_budgets(&fitted, &settings.isoflop).len();
    if fitted_budgets < 2 {
        return Err(split_error(format!(
            "{rule}: the fitted runs ({n_fit}) form {fitted_budgets} budget; at least 2 are needed to extrapolate from"
        )));
    }
    Ok((held, rule))
}
