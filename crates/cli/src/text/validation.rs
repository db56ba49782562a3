//! A validation as text: the split, the summary per approach, the held-out budgets and runs,
//! the backtest.

use super::*;

/// A validation as text: the split, the summary per approach, the held-out budgets, the
/// held-out runs, and the backtest where there is one.
pub fn print_validation(w: &mut impl Write, v: &isoflop_fit::validate::Validation) -> Result<()> {
    writeln!(w, "isoflop validate: {}", v.fit.source)?;
    print_validation_summary(w, v)?;
    print_validation_details(w, v)
}

/// The split and the summary per approach.
pub fn print_validation_summary(
    w: &mut impl Write,
    v: &isoflop_fit::validate::Validation,
) -> Result<()> {
    writeln!(
        w,
        "  held out: {} ({} runs); fitted on the other {} runs, up to {} FLOPs",
        v.split,
        v.held_runs,
        v.fitted_runs,
        sci(v.max_fitted_flops)
    )?;
    writeln!(w)?;
    let row = |w: &mut dyn Write, c: &[String]| -> Result<()> {
        writeln!(
            w,
            "  {:<10} {:<6} {:>3} {:>10} {:>9} {:>8} {:>19} {:>9} {:>13}",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
        )?;
        Ok(())
    };
    let headers = isoflop_fit::validate::Summary::HEADERS.map(String::from);
    row(w, &headers)?;
    for s in &v.summary {
        row(w, &s.cells())?;
    }
    if let Some(f) = v.fit.approach3.fitted() {
        for d in &f.degenerate {
            writeln!(w, "  note: the law fitted to the fitted runs is degenerate ({d}); these are its predictions")?;
        }
    }
    if !v.forms.is_empty() {
        writeln!(w)?;
        print_scores(
            w,
            "  law forms, each fitted to the fitted runs, scored on the held-out runs:",
            &v.forms,
        )?;
    }
    if let Some(s) = v.summary.iter().find(|s| s.quantity == "loss") {
        if let Some(i) = &s.bias_interval {
            if !(i.lo <= s.bias && s.bias <= i.hi) {
                writeln!(
                    w,
                    "  the loss bias {:.2}% lies outside what the law expects: it does not extrapolate to these runs",
                    100.0 * s.bias
                )?;
            }
        }
    }
    Ok(())
}

/// The held-out budgets and runs, and the backtest.
fn print_validation_details(
    w: &mut impl Write,
    v: &isoflop_fit::validate::Validation,
) -> Result<()> {
    writeln!(w)?;
    writeln!(
        w,
        "  held-out budgets: N_opt (and L_min) predicted against the held-out runs' own parabola"
    )?;
    for b in &v.budgets {
        let obs = match (b.observed_params, b.observed_loss) {
            (Some(n), Some(l)) => format!("vertex {} at {:.4}", count(n), l),
            _ => format!("no vertex ({})", b.refused.as_deref().unwrap_or("refused")),
        };
        let preds: Vec<String> = b
            .predicted
            .iter()
            .map(|(a, n, l)| match l {
                Some(l) => format!("{a} {} at {l:.4}", count(*n)),
                None => format!("{a} {}", count(*n)),
            })
            .collect();
        writeln!(
            w,
            "  {:>10} (+{:.2} decades): {obs}; {}",
            sci(b.flops),
            b.decades,
            preds.join(", ")
        )?;
    }
    writeln!(w)?;
    writeln!(
        w,
        "  held-out runs (Approach 3): {:>8} {:>8} {:>9} {:>9} {:>19} {:>7}",
        "params", "tokens", "observed", "predicted", "95% prediction", "error"
    )?;
    for r in &v.runs {
        writeln!(
            w,
            "  {:<27} {:>8} {:>8} {:>9.4} {:>9.4} {:>19} {:>6.2}%",
            r.run,
            count(r.params),
            count(r.tokens),
            r.observed,
            r.predicted,
            iv(r.interval.as_ref(), |x| format!("{x:.4}")),
            100.0 * r.rel_error
        )?;
    }
    if !v.backtest.is_empty() {
        writeln!(w)?;
        writeln!(
            w,
            "  backtest: fit on budgets up to the origin, predict each later budget"
        )?;
        writeln!(
            w,
            "  {:>10} {:>10} {:>8} {:>11}  N_opt |error| by approach",
            "origin", "target", "decades", "loss |err|"
        )?;
        for r in &v.backtest {
            let n: Vec<String> = r
                .n_opt_errors
                .iter()
                .map(|(a, e)| format!("{a} {:.1}%", 100.0 * e))
                .collect();
            writeln!(
                w,
                "  {:>10} {:>10} {:>8.2} {:>11}  {}",
                sci(r.origin),
                sci(r.target),
                r.decades,
                r.loss_error
                    .map(|e| format!("{:.2}%", 100.0 * e))
                    .unwrap_or_else(|| "-".into()),
                n.join(", ")
            )?;
        }
    }
    Ok(())
}
