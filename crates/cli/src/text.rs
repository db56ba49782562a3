//! Reports as text: the fit, the allocation table. One module renders them for every
//! command.

use crate::format::{count, sci};
use anyhow::Result;
use isoflop_fit::allocate::Allocation;
use isoflop_fit::report::{FitReport, Outcome};
use isoflop_fit::stats::BootUnit;
use isoflop_fit::stats::Interval;
use std::io::Write;

fn iv(i: Option<&Interval>, f: impl Fn(f64) -> String) -> String {
    match i {
        Some(i) => format!("[{}, {}]", f(i.lo), f(i.hi)),
        None => String::new(),
    }
}

/// The fit report as `isoflop fit` prints it.
pub fn print_report(w: &mut impl Write, r: &FitReport) -> Result<()> {
    writeln!(w, "isoflop fit: {}", r.source)?;
    writeln!(w, "  {} rows, {} runs", r.rows, r.runs)?;
    writeln!(
        w,
        "  counted: N from column '{}', C from '{}'; loss in {}",
        r.counted.params, r.counted.flops, r.counted.loss_unit
    )?;
    if r.dropped > 0 {
        writeln!(
            w,
            "  dropped the {} highest-loss runs before Approaches 2 and 3 ({} used)",
            r.dropped,
            r.runs - r.dropped
        )?;
    }
    for n in &r.notes {
        writeln!(w, "  note: {n}")?;
    }
    let level = (r.settings.parametric.level * 100.0).round();
    writeln!(w)?;
    write!(w, "Approach 1 (minimum-loss envelope of training curves): ")?;
    match &r.approach1 {
        Outcome::Fitted(f) => {
            writeln!(
                w,
                "{} curves, {} runs on the envelope, {} envelope points",
                f.runs,
                f.runs_on_envelope.len(),
                f.envelope.len()
            )?;
            frontier_lines(
                w,
                &f.frontier,
                f.intervals.as_ref(),
                level,
                r.settings.envelope.unit,
            )?;
            if !f.thirds.is_empty() {
                let t: Vec<String> = f
                    .thirds
                    .iter()
                    .map(|t| {
                        format!(
                            "{:.4} [{:.4}, {:.4}]",
                            t.exponent, t.interval.lo, t.interval.hi
                        )
                    })
                    .collect();
                writeln!(
                    w,
                    "  loss frontier L ~ C^s on the envelope's first, middle and last thirds: {}",
                    t.join(", ")
                )?;
            }
        }
        Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
        Outcome::NotRequested => writeln!(w, "not requested")?,
    }
    writeln!(w)?;
    write!(w, "Approach 2 (IsoFLOP profiles): ")?;
    match &r.approach2 {
        Outcome::Fitted(f) => {
            let ok = f.budgets.iter().filter(|b| b.refused.is_none()).count();
            writeln!(
                w,
                "{} budgets, {ok} with a usable parabola",
                f.budgets.len()
            )?;
            writeln!(
                w,
                "  {:>10} {:>5} {:>19} {:>9} {:>19} {:>9} {:>8}",
                "budget", "runs", "sizes", "N_opt", "vertex interval", "D_opt", "L_min"
            )?;
            for b in &f.budgets {
                let (lo, hi) = b.params_range;
                match (b.optimal_params, b.optimal_tokens, b.min_loss) {
                    (Some(n), Some(d), Some(l)) => writeln!(
                        w,
                        "  {:>10} {:>5} {:>19} {:>9} {:>19} {:>9} {:>8.4}",
                        sci(b.budget),
                        if b.fitted_runs < b.runs {
                            format!("{}/{}", b.fitted_runs, b.runs)
                        } else {
                            b.runs.to_string()
                        },
                        format!("{}..{}", count(lo), count(hi)),
                        count(n),
                        iv(b.vertex_interval.as_ref(), count),
                        count(d),
                        l
                    )?,
                    _ => writeln!(
                        w,
                        "  {:>10} {:>5} {:>19} refused: {}",
                        sci(b.budget),
                        b.runs,
                        format!("{}..{}", count(lo), count(hi)),
                        b.refused.as_deref().unwrap_or("")
                    )?,
                }
            }
            frontier_lines(
                w,
                &f.frontier,
                f.intervals.as_ref(),
                level,
                r.settings.isoflop.unit,
            )?;
            let s = &r.settings.isoflop;
            writeln!(
                w,
                "  parabolas fitted {}; frontier regressed on each budget's {} FLOPs",
                match s.window_decades {
                    Some(d) =>
                        format!("within {d} decades of each budget's minimum (runs: fitted/all)"),
                    None => "to every run of each budget".into(),
                },
                match s.budget_flops {
                    isoflop_fit::isoflop::BudgetFlops::Mean => "mean (geometric mean of 6ND)",
                    isoflop_fit::isoflop::BudgetFlops::Nominal => "nominal",
                }
            )?;
        }
        Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
        Outcome::NotRequested => writeln!(w, "not requested")?,
    }
    writeln!(w)?;
    write!(
        w,
        "Approach 3 (parametric law L(N, D) = E + A/N^alpha + B/D^beta): "
    )?;
    match &r.approach3 {
        Outcome::Fitted(f) => {
            let d = &f.diagnostics;
            if d.converged {
                writeln!(w, "{} points", f.points)?;
            } else {
                writeln!(w, "DID NOT CONVERGE; the values below are not a result")?;
            }
            let i = f.intervals.as_ref();
            let g4 = |v: f64| format!("{v:.4}");
            let g1 = |v: f64| format!("{v:.1}");
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "E",
                g4(f.law.e),
                iv(i.map(|i| &i.e), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "A",
                g1(f.law.a),
                iv(i.map(|i| &i.a), g1)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "B",
                g1(f.law.b),
                iv(i.map(|i| &i.b), g1)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "alpha",
                g4(f.law.alpha),
                iv(i.map(|i| &i.alpha), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "beta",
                g4(f.law.beta),
                iv(i.map(|i| &i.beta), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "a = beta/(alpha+beta)",
                g4(f.params_exponent),
                iv(i.map(|i| &i.params_exponent), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "b = alpha/(alpha+beta)",
                g4(f.tokens_exponent),
                iv(i.map(|i| &i.tokens_exponent), g4)
            )?;
            writeln!(
                w,
                "  {:<24}{:>10}  {}",
                "G",
                g4(f.g),
                iv(i.map(|i| &i.g), g4)
            )?;
            writeln!(w, "  N_opt(C) = G (C/6)^a,  D_opt(C) = (C/6)^b / G")?;
            writeln!(
                w,
                "  objective {:.9e} (sum of Huber, delta {}); {} of {} starts reached it, {} converged; best start stopped by the {:?} rule, max |gradient| {:.1e}",
                f.objective, r.settings.parametric.delta, d.reached_best, d.starts, d.converged_starts, d.termination, d.grad_max
            )?;
            if let Some(sc) = &f.screening {
                writeln!(
                    w,
                    "  screened: the {} starts ran on {} of the {} points (seeded sample); the {} distinct optima found were polished on all points",
                    d.starts, sc.subsample, sc.points, sc.polished
                )?;
            }
            if let Some(i) = i {
                writeln!(w, "  intervals: {level}% percentile bootstrap, {} of {} resamples usable, seed {}{}", i.usable, i.resamples, i.seed, unit_words(r.settings.parametric.unit))?;
                if let Some(m) = i.resample_points {
                    writeln!(w, "  (m-out-of-n bootstrap: resamples of {m} points, deviations scaled by sqrt({m}/{}))", f.points)?;
                }
            }
        }
        Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
        Outcome::NotRequested => writeln!(w, "not requested")?,
    }
    if let Some(d) = &r.design_check {
        print_design_check(w, r, d)?;
    }
    Ok(())
}

/// The design check: Approaches 1 and 2 on Approach 3's own losses.
fn print_design_check(
    w: &mut impl Write,
    r: &FitReport,
    d: &isoflop_fit::design::DesignCheck,
) -> Result<()> {
    writeln!(w)?;
    writeln!(
        w,
        "Design check: refitted on losses drawn exactly from Approach 3's law (a = {:.4}) at every row's N and D, each approach's a and its bias from the design alone:",
        d.law_a
    )?;
    for (name, fitted, a) in [
        ("Approach 1", r.approach1.fitted().is_some(), d.approach1_a),
        ("Approach 2", r.approach2.fitted().is_some(), d.approach2_a),
    ] {
        if !fitted {
            continue;
        }
        match a {
            Some(a) => writeln!(w, "  {name}: a = {a:.4}, bias {:+.4}", a - d.law_a)?,
            None => writeln!(w, "  {name}: could not be fitted on the law's losses")?,
        }
    }
    Ok(())
}

/// What the intervals line says of the bootstrap's unit (nothing for runs, the default).
fn unit_words(unit: BootUnit) -> &'static str {
    match unit {
        BootUnit::Run => "",
        BootUnit::Size => "; resampling model sizes, each with all its runs",
    }
}

fn frontier_lines(
    w: &mut impl Write,
    f: &isoflop_fit::Frontier,
    i: Option<&isoflop_fit::isoflop::FrontierIntervals>,
    level: f64,
    unit: BootUnit,
) -> Result<()> {
    let g4 = |v: f64| format!("{v:.4}");
    writeln!(
        w,
        "  N_opt = {:.4e} * C^{:.4}  a {}",
        f.params_coef,
        f.params_exponent,
        iv(i.map(|i| &i.params_exponent), g4)
    )?;
    writeln!(
        w,
        "  D_opt = {:.4e} * C^{:.4}  b {}",
        f.tokens_coef,
        f.tokens_exponent,
        iv(i.map(|i| &i.tokens_exponent), g4)
    )?;
    if let Some(i) = i {
        writeln!(
            w,
            "  intervals: {level}% percentile bootstrap, {} of {} resamples usable, seed {}{}",
            i.usable,
            i.resamples,
            i.seed,
            unit_words(unit)
        )?;
    }
    Ok(())
}

/// The data-constrained law, Kaplan's law and the comparison of forms, where fitted.
pub fn print_forms(w: &mut impl Write, r: &FitReport) -> Result<()> {
    if let Some(o) = &r.data_constrained {
        writeln!(w)?;
        write!(w, "Data-constrained law (Muennighoff et al. 2023): ")?;
        match o {
            Outcome::Fitted(f) => {
                let b = &f.law.base;
                writeln!(
                    w,
                    "Chinchilla part from {} single-epoch runs, R_D* and R_N* from all {} runs, then all seven refined together{}",
                    f.single_epoch_runs,
                    f.runs,
                    if f.converged {
                        ""
                    } else {
                        "; DID NOT CONVERGE"
                    }
                )?;
                writeln!(
                    w,
                    "  E {:.4}  A {:.1}  B {:.1}  alpha {:.4}  beta {:.4}",
                    b.e, b.a, b.b, b.alpha, b.beta
                )?;
                let g3 = |v: f64| {
                    if v.abs() < 1e4 {
                        format!("{v:.3}")
                    } else {
                        sci(v)
                    }
                };
                writeln!(
                    w,
                    "  R_D* {:>9.3}  {}\n  R_N* {:>9.3}  {}",
                    f.law.rd_star,
                    iv(f.rd_star_interval.as_ref(), g3),
                    f.law.rn_star,
                    iv(f.rn_star_interval.as_ref(), g3)
                )?;
            }
            Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
            Outcome::NotRequested => writeln!(w, "not requested")?,
        }
    }
    if let Some(o) = &r.kaplan {
        writeln!(w)?;
        write!(
            w,
            "Kaplan et al. 2020 (L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D): "
        )?;
        match o {
            Outcome::Fitted(f) => writeln!(
                w,
                "{} points{}\n  N_c {:.4e}  alpha_N {:.4}  D_c {:.4e}  alpha_D {:.4}",
                f.points,
                if f.converged {
                    ""
                } else {
                    "; DID NOT CONVERGE"
                },
                f.law.n_c,
                f.law.alpha_n,
                f.law.d_c,
                f.law.alpha_d
            )?,
            Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
            Outcome::NotRequested => writeln!(w, "not requested")?,
        }
    }
    if !r.comparison.is_empty() {
        writeln!(w)?;
        print_scores(
            w,
            &format!(
                "Forms compared on the {} runs they were fitted to:",
                r.comparison[0].points
            ),
            &r.comparison,
        )?;
        match &r.held_out {
            Some(Outcome::Fitted(h)) => print_scores(
                w,
                &format!(
                    "Forms compared on runs they did not see: each refitted to {} runs and scored on {} held out ({}):",
                    h.fitted_runs, h.held_runs, h.split
                ),
                &h.scores,
            )?,
            Some(Outcome::Skipped(why)) => {
                writeln!(w, "No held-out comparison of forms: {why}")?
            }
            _ => {}
        }
    }
    Ok(())
}

/// A table of law forms' scores under a title, best first.
fn print_scores(
    w: &mut impl Write,
    title: &str,
    scores: &[isoflop_fit::forms::Score],
) -> Result<()> {
    writeln!(w, "{title}")?;
    writeln!(
        w,
        "  {:<18} {:>14} {:>10} {:>14}",
        "form", "Huber/point", "rms ln L", "mean |err|/L"
    )?;
    for s in scores {
        writeln!(
            w,
            "  {:<18} {:>14.4e} {:>10.4} {:>13.2}%",
            s.form,
            s.objective_per_point,
            s.rmse_log,
            100.0 * s.mean_abs_rel_error
        )?;
    }
    Ok(())
}

/// What the allocation table's intervals are, and what misallocation costs (Approach 3).
pub fn allocation_notes(allocs: &[Allocation]) -> String {
    let mut s = String::new();
    for a in allocs.iter().filter(|a| a.approach == "approach3") {
        if let (Some(l), Some(p)) = (a.loss, &a.loss_prediction) {
            s += &format!(
                "approach3 at {}: loss {l:.3}; its interval above is the law's (the parameters' uncertainty); a run trained so would land in [{:.3}, {:.3}] (prediction interval: the parameters and the fitted runs' scatter)\n",
                sci(a.flops),
                p.lo,
                p.hi
            );
        }
        for m in &a.misallocation {
            s += &format!(
                "  training {} instead of {} on {} FLOPs reaches loss {:.4} (+{:.4}); the optimal model gets there with {} FLOPs: {} FLOPs ({:.1}%) lost\n",
                count(m.params),
                count(a.params),
                sci(a.flops),
                m.loss,
                m.extra_loss,
                sci(m.optimal_flops),
                sci(m.flops_lost),
                100.0 * m.share_lost
            );
        }
    }
    s.trim_end().to_string()
}

/// The allocation table as text (one row per approach).
pub fn allocation_table(allocs: &[Allocation]) -> String {
    let mut s = format!(
        "{:<10} {:>10} {:>8} {:>18} {:>8} {:>18} {:>6} {:>7} {:>17}\n",
        "approach", "FLOPs", "params", "", "tokens", "", "D/N", "loss", ""
    );
    for al in allocs {
        let i = al.intervals.as_ref();
        let f3 = |v: f64| format!("{v:.3}");
        s += &format!(
            "{:<10} {:>10} {:>8} {:>18} {:>8} {:>18} {:>6.1} {:>7} {:>17}\n",
            al.approach,
            sci(al.flops),
            count(al.params),
            iv(i.map(|i| &i.params), count),
            count(al.tokens),
            iv(i.map(|i| &i.tokens), count),
            al.tokens_per_param,
            al.loss.map(f3).unwrap_or_else(|| "-".into()),
            iv(i.and_then(|i| i.loss.as_ref()), f3),
        );
    }
    s.trim_end().to_string()
}

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
