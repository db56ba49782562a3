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
    print_header(w, r)?;
    let level = (r.settings.parametric.boot.level * 100.0).round();
    writeln!(w)?;
    print_approach1(w, r, level)?;
    print_approach2(w, r, level)?;
    print_approach3(w, r, level)?;
    if let Some(d) = &r.design_check {
        print_design_check(w, r, d)?;
    }
    Ok(())
}

/// The table's source, counts, convention and notes.
fn print_header(w: &mut impl Write, r: &FitReport) -> Result<()> {
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
    Ok(())
}

/// Approach 1: the envelope's frontier and the loss frontier of its thirds.
fn print_approach1(w: &mut impl Write, r: &FitReport, level: f64) -> Result<()> {
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
                r.settings.envelope.boot.unit,
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
    Ok(())
}

/// Approach 2: each budget's parabola and the frontier through their vertices.
fn print_approach2(w: &mut impl Write, r: &FitReport, level: f64) -> Result<()> {
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
                r.settings.isoflop.boot.unit,
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
    Ok(())
}

/// Approach 3: the law's parameters with intervals, the optimiser's diagnostics.
fn print_approach3(w: &mut impl Write, r: &FitReport, level: f64) -> Result<()> {
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
            let rows: [(&str, f64, Option<&Interval>, &dyn Fn(f64) -> String); 8] = [
                ("E", f.law.e, i.map(|i| &i.e), &g4),
                ("A", f.law.a, i.map(|i| &i.a), &g1),
                ("B", f.law.b, i.map(|i| &i.b), &g1),
                ("alpha", f.law.alpha, i.map(|i| &i.alpha), &g4),
                ("beta", f.law.beta, i.map(|i| &i.beta), &g4),
                (
                    "a = beta/(alpha+beta)",
                    f.params_exponent,
                    i.map(|i| &i.params_exponent),
                    &g4,
                ),
                (
                    "b = alpha/(alpha+beta)",
                    f.tokens_exponent,
                    i.map(|i| &i.tokens_exponent),
                    &g4,
                ),
                ("G", f.g, i.map(|i| &i.g), &g4),
            ];
            for (name, v, interval, fmt) in rows {
                writeln!(w, "  {:<24}{:>10}  {}", name, fmt(v), iv(interval, fmt))?;
            }
            writeln!(w, "  N_opt(C) = G (C/6)^a,  D_opt(C) = (C/6)^b / G")?;
            writeln!(
                w,
                "  objective {:.9e} (sum of Huber, delta {}); {}; the best stopped by the {:?} rule, max |gradient| {:.1e}",
                f.objective, r.settings.parametric.delta, d.search_words(), d.termination, d.grad_max
            )?;
            if let Some(sc) = &f.screening {
                let what = match d.projections {
                    Some(_) => "the projections",
                    None => "the starts",
                };
                writeln!(
                    w,
                    "  screened: {what} ran on {} of the {} points (seeded sample); the {} point(s) found were polished on all points",
                    sc.subsample, sc.points, sc.polished
                )?;
            }
            if let Some(i) = i {
                writeln!(w, "  intervals: {level}% percentile bootstrap, {} of {} resamples usable, seed {}{}", i.usable, i.resamples, i.seed, unit_words(r.settings.parametric.boot.unit))?;
                if let Some(m) = i.resample_points {
                    writeln!(w, "  (m-out-of-n bootstrap: resamples of {m} points, deviations scaled by sqrt({m}/{}))", f.points)?;
                }
            }
        }
        Outcome::Skipped(why) => writeln!(w, "not fitted: {why}")?,
        Outcome::NotRequested => writeln!(w, "not requested")?,
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

mod validation;
pub use validation::{print_validation, print_validation_summary};
