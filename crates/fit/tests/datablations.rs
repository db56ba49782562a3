//! The data-constrained law fitted to Muennighoff et al. 2023's 296 C4 runs (../shared/data,
//! from the datablations repository, Apache-2.0). Skips, saying so, when ../shared is absent.

use isoflop_core::table::RunTable;
use isoflop_fit::data_constrained::{fit_data_constrained, DataConstrainedLaw};
use isoflop_fit::forms::score;
use isoflop_fit::stats::BootUnit;
use std::path::PathBuf;

fn runs() -> Option<Vec<isoflop_core::Observation>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/muennighoff2023_datablations_c4_runs.csv");
    if !p.exists() {
        eprintln!(
            "skipped: {} is absent (tests that read ../shared skip without it)",
            p.display()
        );
        return None;
    }
    let t = RunTable::read(&p).expect("the C4 runs read");
    assert_eq!(t.rows.len(), 296);
    assert!(t.rows.iter().all(|o| o.unique_tokens.is_some()));
    Some(t.final_rows())
}

/// Fitted on all 296 runs, the law describes the repeated runs at least as well as the
/// released law does (which was fitted to a curated subset, its Chinchilla part to other
/// runs); the errors are printed for docs/validation.md.
#[test]
fn fitted_on_the_c4_runs_it_predicts_the_repeated_runs_as_well_as_the_released_law() {
    let Some(pts) = runs() else { return };
    let fit = fit_data_constrained(&pts, 0, 0, BootUnit::Run).unwrap();
    assert!(fit.converged, "{fit:?}");
    assert_eq!(fit.single_epoch_runs, 41);
    let repeated: Vec<_> = pts
        .iter()
        .filter(|o| o.tokens > o.unique_tokens.unwrap())
        .cloned()
        .collect();
    assert_eq!(repeated.len(), 255);
    let ours = score(&fit.law, &repeated);
    let theirs = score(&DataConstrainedLaw::muennighoff2023(), &repeated);
    eprintln!(
        "fitted law: {:?}\nours {ours:?}\nreleased {theirs:?}",
        fit.law
    );
    assert!(
        ours.objective_per_point <= theirs.objective_per_point,
        "{ours:?} {theirs:?}"
    );
    assert!(ours.mean_abs_rel_error < 0.08, "{ours:?}");
}

/// The held-out comparison of forms on the C4 runs: the 8 runs of the largest budget (8.7B
/// parameters, 9.3e21 FLOPs) held out, each form refitted to the other 288. Checked against
/// the same fits made by hand and each held-out run's error summed here; the scores are
/// printed for docs/validation.md.
#[test]
fn forms_compared_on_the_largest_c4_budget_match_a_fit_made_by_hand() {
    let Some(pts) = runs() else { return };
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/muennighoff2023_datablations_c4_runs.csv");
    let table = RunTable::read(&p).unwrap();
    let mut settings = isoflop_fit::FitSettings::default().with_bootstrap(0, 0);
    settings.approaches = vec![3];
    settings.laws = vec!["chinchilla".into(), "data-constrained".into()];
    let report = isoflop_fit::fit_table(&table, &settings).unwrap();
    let h = report.held_out.as_ref().and_then(|o| o.fitted()).unwrap();
    let cut = pts.iter().map(|o| o.flops).fold(0.0, f64::max) * 0.9;
    let (held, fitted): (Vec<_>, Vec<_>) = pts.iter().cloned().partition(|o| o.flops > cut);
    assert_eq!((h.held_runs, h.fitted_runs), (held.len(), fitted.len()));
    assert_eq!(held.len(), 8);
    assert!(held.iter().all(|o| (o.params / 8.67e9 - 1.0).abs() < 0.01));
    let dc = fit_data_constrained(&fitted, 0, 0, BootUnit::Run)
        .unwrap()
        .law;
    let a3 = isoflop_fit::fit_parametric(&fitted, &settings.parametric)
        .unwrap()
        .law;
    let err = |pred: &dyn Fn(&isoflop_core::Observation) -> f64| {
        held.iter()
            .map(|o| (pred(o) - o.loss).abs() / o.loss)
            .sum::<f64>()
            / held.len() as f64
    };
    let by_hand = [
        (
            "data-constrained",
            err(&|o| dc.loss(o.params, o.tokens, o.unique_tokens.unwrap())),
        ),
        ("chinchilla", err(&|o| a3.loss(o.params, o.tokens))),
    ];
    eprintln!("held out: {h:?}");
    for (form, e) in by_hand {
        let s = h.scores.iter().find(|s| s.form == form).unwrap();
        assert!(
            (s.mean_abs_rel_error - e).abs() < 1e-12,
            "{form}: {s:?} against {e}"
        );
    }
}

/// How near the paper's R_D* 15.4 and R_N* 5.3 are to what these runs support. Our point
/// estimates are not theirs (docs/validation.md: their constants came from a curated subset, their
/// Chinchilla part from other runs), so "near" is measured two ways: both constants lie
/// inside our 95% bootstrap intervals, and holding them while refitting the other five
/// parameters raises the objective by less than 10%.
#[test]
fn the_papers_decay_constants_lie_inside_the_intervals_and_fit_almost_as_well() {
    use isoflop_fit::forms::{huber, minimize_huber};
    use isoflop_fit::ParametricLaw;
    let Some(pts) = runs() else { return };
    let fit = fit_data_constrained(&pts, 100, 0, BootUnit::Run).unwrap();
    let paper = DataConstrainedLaw::muennighoff2023();
    let (rd, rn) = (fit.rd_star_interval.unwrap(), fit.rn_star_interval.unwrap());
    eprintln!(
        "R_D* {:.2} ({:.3e} to {:.3e}), R_N* {:.3} ({:.3e} to {:.3e}) from {} resamples",
        fit.law.rd_star,
        rd.lo,
        rd.hi,
        fit.law.rn_star,
        rn.lo,
        rn.hi,
        fit.samples.len()
    );
    assert!(rd.lo < paper.rd_star && paper.rd_star < rd.hi, "{rd:?}");
    assert!(rn.lo < paper.rn_star && paper.rn_star < rn.hi, "{rn:?}");
    // The profile: the paper's constants held, E, A, B, alpha and beta refitted from ours.
    let law_at = |x: &[f64; 5]| DataConstrainedLaw {
        base: ParametricLaw::from_log(x),
        rd_star: paper.rd_star,
        rn_star: paper.rn_star,
    };
    let objective = |x: &[f64; 5]| {
        let law = law_at(x);
        pts.iter()
            .map(|o| {
                let p = law.loss(o.params, o.tokens, o.unique_tokens.unwrap());
                huber(p.ln() - o.loss.ln(), 1e-3)
            })
            .sum::<f64>()
    };
    let x0 = fit.law.base.to_log();
    let (x, held, _) = minimize_huber(objective, &[x0], &Default::default()).unwrap();
    let repeated: Vec<_> = pts
        .iter()
        .filter(|o| o.tokens > o.unique_tokens.unwrap())
        .cloned()
        .collect();
    eprintln!(
        "objective {:.4e}, with the paper's constants {held:.4e} (+{:.1}%); repeated runs' error {:.2}% against {:.2}%",
        fit.objective,
        100.0 * (held / fit.objective - 1.0),
        100.0 * score(&law_at(&x), &repeated).mean_abs_rel_error,
        100.0 * score(&fit.law, &repeated).mean_abs_rel_error,
    );
    assert!(
        held >= fit.objective * (1.0 - 1e-9),
        "the fit missed a lower objective"
    );
    assert!(held < 1.1 * fit.objective);
}
