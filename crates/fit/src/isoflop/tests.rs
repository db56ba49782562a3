//! Approach 2's tests.
use super::*;
use crate::parametric::ParametricLaw;
use crate::synthetic::isoflop_points;

#[test]
fn parabola_through_exact_points() {
    let x = [1.0, 2.0, 3.0, 4.0];
    let y: Vec<f64> = x.iter().map(|v| 2.0 - 3.0 * v + 0.5 * v * v).collect();
    let q = fit_parabola(&x, &y).unwrap();
    assert!(
        (q[0] - 2.0).abs() < 1e-9 && (q[1] + 3.0).abs() < 1e-9 && (q[2] - 0.5).abs() < 1e-9,
        "{q:?}"
    );
}

#[test]
fn recovers_the_laws_exponent_within_intervals() {
    // The vertices of exact IsoFLOP slices of a law lie near its closed-form frontier,
    // so the Approach 2 exponent must bracket a = beta/(alpha+beta).
    let law = crate::synthetic::TRUTH;
    let budgets = [1e18, 3e18, 1e19, 3e19, 1e20, 3e20];
    let pts = isoflop_points(&law, &budgets, 0.003, 2);
    let fit = fit_isoflop(
        &pts,
        &IsoFlopOptions {
            boot: crate::stats::Bootstrap {
                resamples: 300,
                seed: 3,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fit.budgets.len(), 6);
    assert!(
        fit.budgets.iter().all(|b| b.refused.is_none()),
        "{:?}",
        fit.warnings
    );
    let a = law.params_exponent();
    let iv = fit.intervals.unwrap();
    assert!(
        iv.params_exponent.lo <= a && a <= iv.params_exponent.hi,
        "{:?} vs {a}",
        iv.params_exponent
    );
    let b = law.tokens_exponent();
    assert!(
        iv.tokens_exponent.lo <= b && b <= iv.tokens_exponent.hi,
        "{:?} vs {b}",
        iv.tokens_exponent
    );
}

#[test]
fn refuses_downward_and_edge_vertices_and_single_budget() {
    let law = ParametricLaw::CHINCHILLA;
    let mut pts = isoflop_points(&law, &[1e19, 1e20], 0.0, 1);
    // A third budget whose sizes all lie far below the optimum: the vertex is outside.
    for k in 0..4 {
        let n = 1e5 * 2f64.powi(k);
        let c = 1e21;
        pts.push(Observation {
            line: 0,
            run: None,
            step: None,
            params: n,
            tokens: c / (6.0 * n),
            flops: c,
            loss: law.loss(n, c / (6.0 * n)),
            budget: Some(c),
            unique_tokens: None,
        });
    }
    let fit = fit_isoflop(
        &pts,
        &IsoFlopOptions {
            boot: crate::stats::Bootstrap {
                resamples: 0,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    let refused: Vec<_> = fit.budgets.iter().filter(|b| b.refused.is_some()).collect();
    assert_eq!(refused.len(), 1);
    let why = refused[0].refused.as_ref().unwrap();
    assert!(
        why.contains("outside the sampled sizes") || why.contains("downward"),
        "{why}"
    );
    assert!(
        fit.warnings.iter().any(|w| w.contains("1.000e21")),
        "{:?}",
        fit.warnings
    );
    // One budget only: an error that says why.
    let one = isoflop_points(&law, &[1e19], 0.0, 1);
    let e = fit_isoflop(&one, &IsoFlopOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("at least 2"), "{e}");
}

#[test]
fn clusters_by_flops_without_a_budget_column() {
    let law = ParametricLaw::CHINCHILLA;
    let mut pts = isoflop_points(&law, &[1e19, 1e20, 1e21], 0.0, 1);
    for p in &mut pts {
        p.budget = None;
    }
    let fit = fit_isoflop(
        &pts,
        &IsoFlopOptions {
            boot: crate::stats::Bootstrap {
                resamples: 0,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(fit.budgets.len(), 3);
    assert!((fit.budgets[1].flops / 1e20 - 1.0).abs() < 1e-9);
}

fn planned_grid(law: &ParametricLaw, width: f64, noise: f64, seed: u64) -> Vec<Observation> {
    crate::synthetic::planned_grid(law, &[1e18, 1e19, 1e20, 1e21], width, noise, seed)
}

#[test]
fn the_windowed_parabola_recovers_the_exponent_on_grids_4x_to_256x_wide() {
    // Chinchilla's law (alpha 0.34, beta 0.28: the loss is not symmetric in ln N, and the
    // true optimum drifts from the grids' centre across budgets).
    let law = ParametricLaw::CHINCHILLA;
    let truth = law.params_exponent();
    for width in [4.0, 16.0, 64.0, 256.0] {
        let whole = IsoFlopOptions {
            boot: crate::stats::Bootstrap {
                resamples: 0,
                ..Default::default()
            },
            window_decades: None,
            ..Default::default()
        };
        let bias = fit_isoflop(&planned_grid(&law, width, 0.0, 0), &whole)
            .unwrap()
            .frontier
            .params_exponent
            - truth;
        let windowed = IsoFlopOptions {
            boot: crate::stats::Bootstrap {
                resamples: 0,
                ..Default::default()
            },
            window_decades: Some(WINDOW_DECADES),
            ..Default::default()
        };
        let wbias = fit_isoflop(&planned_grid(&law, width, 0.0, 0), &windowed)
            .unwrap()
            .frontier
            .params_exponent
            - truth;
        eprintln!("grid {width}x: whole-range bias {bias:+.4}, windowed {wbias:+.4}");
        assert!(
            wbias.abs() <= bias.abs().max(3e-4),
            "{width}x: {wbias} vs {bias}"
        );
        // The whole-range bias is far below what 0.5% noise does to a (the default).
        assert!(bias.abs() < 0.003, "{width}x: {bias}");
        // With 0.5% noise, the truth lies in the bootstrap interval, either way.
        for window_decades in [None, Some(WINDOW_DECADES)] {
            let noisy = IsoFlopOptions {
                boot: crate::stats::Bootstrap {
                    resamples: 200,
                    seed: 4,
                    ..Default::default()
                },
                window_decades,
                ..Default::default()
            };
            let f = fit_isoflop(&planned_grid(&law, width, 0.005, width as u64), &noisy).unwrap();
            let i = f.intervals.unwrap().params_exponent;
            assert!(
                i.lo <= truth && truth <= i.hi,
                "{width}x {window_decades:?}: {truth} outside {i:?}"
            );
            // Each accepted vertex has its own interval.
            assert!(f
                .budgets
                .iter()
                .filter(|b| b.refused.is_none())
                .all(|b| b.vertex_interval.is_some()));
        }
    }
}

#[test]
fn budgets_refused_for_one_reason_share_one_line_of_warning() {
    let law = crate::synthetic::TRUTH;
    let mut points = crate::synthetic::isoflop_points(&law, &[1e18, 1e19, 1e20], 0.0, 0);
    // Budgets with one run each, far from the others and from each other.
    let lone = |c: f64| {
        let n = (c / 120.0).sqrt();
        crate::synthetic::point(n, c / (6.0 * n), law.loss(n, c / (6.0 * n)))
    };
    let opts = IsoFlopOptions {
        boot: crate::stats::Bootstrap {
            resamples: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    // Two such budgets: a line each.
    let two: Vec<Observation> = points
        .iter()
        .cloned()
        .chain([lone(1e22), lone(1e23)])
        .collect();
    let fit = fit_isoflop(&two, &opts).unwrap();
    assert_eq!(fit.warnings.len(), 2, "{:?}", fit.warnings);
    assert!(fit.warnings[0]
        .starts_with("Approach 2: budget 1.000e22 (1 runs) refused: 1 runs at 1 distinct sizes"));
    assert!(folded_refusals(&fit.budgets).is_empty());
    // Four: one line that counts them and names each budget; the lines folded into it are
    // what --verbose prints.
    points.extend([1e22, 1e23, 1e24, 1e25].map(lone));
    let fit = fit_isoflop(&points, &opts).unwrap();
    assert_eq!(fit.warnings.len(), 1, "{:?}", fit.warnings);
    assert!(
        fit.warnings[0].starts_with(
            "Approach 2: 4 of 7 budgets refused, each with fewer than 3 runs at 3 distinct sizes"
        ) && fit.warnings[0].contains("1.000e22, 1.000e23, 1.000e24, 1.000e25")
            && fit.warnings[0].contains("--verbose"),
        "{}",
        fit.warnings[0]
    );
    let each = folded_refusals(&fit.budgets);
    assert_eq!(each.len(), 4);
    assert!(
        each[3].starts_with("Approach 2: budget 1.000e25 (1 runs) refused"),
        "{each:?}"
    );
    // The accepted budgets are fitted as before.
    assert_eq!(
        fit.budgets.iter().filter(|b| b.refused.is_none()).count(),
        3
    );
}
