//! Tests of validate.rs.
use super::*;
use crate::law::ParametricLaw;
use crate::synthetic::{isoflop_points, TRUTH};

const BUDGETS: [f64; 5] = [1e18, 3e18, 1e19, 3e19, 1e20];

fn table(points: Vec<Observation>) -> RunTable {
    RunTable {
        source: "synthetic".into(),
        rows: points
            .into_iter()
            .enumerate()
            .map(|(i, mut o)| {
                o.line = i + 2;
                o
            })
            .collect(),
        ..Default::default()
    }
}

fn settings(resamples: usize, seed: u64) -> FitSettings {
    let mut s = FitSettings::default().with_bootstrap(resamples, seed);
    s.approaches = vec![2, 3];
    s
}

#[test]
fn on_a_known_law_errors_match_the_noise_and_intervals_cover_about_95_percent() {
    // 1% noise; 24 seeds, 9 held-out runs each (the largest budget): 216 predictions.
    // With true 95% coverage, fewer than 195 covered has probability below 0.1%
    // (binomial(216, 0.95): mean 205.2, sd 3.2); more than 214, below 0.1% as well.
    let (mut covered, mut total, mut bias_ok) = (0usize, 0usize, 0usize);
    for seed in 0..24 {
        let t = table(isoflop_points(&TRUTH, &BUDGETS, 0.01, seed));
        let v = validate(&t, &settings(200, seed), Holdout::Default, false).unwrap();
        assert_eq!(v.held_runs, 9, "{}", v.split);
        let s = v.summary.iter().find(|s| s.quantity == "loss").unwrap();
        // Half a decade beyond the fitted runs, 1% noise: errors of a few percent at most.
        assert!(s.mean_abs_rel_error < 0.03, "seed {seed}: {s:?}");
        assert!(s.bias.abs() < 0.025, "seed {seed}: {s:?}");
        let i = s.bias_interval.as_ref().unwrap();
        bias_ok += (i.lo <= s.bias && s.bias <= i.hi) as usize;
        for r in &v.runs {
            let i = r.interval.as_ref().unwrap();
            covered += (i.lo <= r.observed && r.observed <= i.hi) as usize;
            total += 1;
        }
    }
    assert_eq!(total, 216);
    eprintln!("{covered} of {total} held-out runs inside their 95% prediction intervals; bias inside its interval in {bias_ok} of 24 seeds");
    assert!(
        (195..=214).contains(&covered),
        "{covered} of {total} covered"
    );
    // binomial(24, 0.95): 19 or fewer with probability 0.7%.
    assert!(bias_ok >= 20, "{bias_ok} of 24");
}

#[test]
fn a_bent_frontier_is_caught_as_a_bias_outside_the_intervals() {
    // The exponents drift with scale, beta(D) = 0.30 + 0.10 log10(D / 1e9) and alpha(N) =
    // 0.34 + 0.10 log10(N / 1e8): locally
    // a power law, so the fitted budgets fit well, but a law fitted on them under-predicts
    // how far the loss falls at the largest budget.
    let mut pts = isoflop_points(&TRUTH, &BUDGETS, 0.0, 0);
    let mut rng = isoflop_core::Rng::new(7);
    for o in &mut pts {
        let beta = 0.30 + 0.10 * (o.tokens / 1e9).log10();
        let alpha = 0.34 + 0.10 * (o.params / 1e8).log10();
        let law = ParametricLaw {
            alpha,
            beta,
            ..TRUTH
        };
        o.loss = law.loss(o.params, o.tokens) * (1.0 + 0.002 * rng.normal());
    }
    // Fitted on three budgets, predicting the two above (up to a decade beyond).
    let v = validate(
        &table(pts),
        &settings(200, 1),
        Holdout::TopBudgets(2),
        false,
    )
    .unwrap();
    let s = v.summary.iter().find(|s| s.quantity == "loss").unwrap();
    eprintln!("bent frontier: {s:?}");
    let i = s.bias_interval.as_ref().unwrap();
    assert!(
        !(i.lo <= s.bias && s.bias <= i.hi),
        "bias {} inside {i:?}",
        s.bias
    );
    // Every held-out run is missed in the same direction.
    assert!(
        v.runs
            .iter()
            .all(|r| r.rel_error.signum() == s.bias.signum()),
        "{:?}",
        v.runs
    );
}

#[test]
fn the_backtest_has_a_row_per_origin_and_target() {
    let t = table(isoflop_points(&TRUTH, &BUDGETS, 0.005, 3));
    let v = validate(&t, &settings(0, 0), Holdout::TopBudgets(1), true).unwrap();
    // Origins after 2, 3, 4 budgets: 3 + 2 + 1 rows.
    assert_eq!(v.backtest.len(), 6);
    assert!(v
        .backtest
        .iter()
        .all(|r| r.decades > 0.0 && r.loss_error.unwrap() < 0.02));
    assert_eq!(v.budgets.len(), 1);
    let b = &v.budgets[0];
    let (_, n3, _) = b.predicted.iter().find(|p| p.0 == "approach3").unwrap();
    assert!((n3 / b.observed_params.unwrap() - 1.0).abs() < 0.1, "{b:?}");
}

#[test]
fn splits_that_leave_a_side_empty_or_lie_outside_the_data_are_refused() {
    let t = table(isoflop_points(&TRUTH, &BUDGETS, 0.01, 0));
    let s = settings(0, 0);
    for (h, says) in [
        (Holdout::TopBudgets(5), "of 5 budgets"),
        (Holdout::TopBudgets(0), "of 5 budgets"),
        (Holdout::FlopsAbove(1e30), "outside the runs' FLOPs"),
        (Holdout::ParamsAbove(1.0), "outside the runs' sizes"),
        (Holdout::FlopsAbove(1e18), "form 1 budget"),
    ] {
        let e = validate(&t, &s, h, false).unwrap_err().to_string();
        assert!(
            e.contains("hold-out split") && e.contains(says),
            "{h:?}: {e}"
        );
    }
}
