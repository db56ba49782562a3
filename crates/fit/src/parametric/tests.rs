//! Tests of parametric.rs.
use super::*;
use isoflop_core::Rng;

use crate::synthetic::{grid_points as synthetic, point as pt};

#[test]
fn recovers_a_known_law_from_noiseless_points() {
    let truth = crate::synthetic::TRUTH;
    let pts = synthetic(&truth, 0.0, 1);
    let opts = ParametricOptions {
        boot: crate::stats::Bootstrap {
            resamples: 0,
            ..Default::default()
        },
        ..Default::default()
    };
    let fit = fit_parametric(&pts, &opts).unwrap();
    assert!(fit.diagnostics.converged, "{:?}", fit.diagnostics);
    let l = fit.law;
    assert!(
        (l.alpha - 0.35).abs() < 1e-4 && (l.beta - 0.37).abs() < 1e-4,
        "{l:?}"
    );
    assert!((l.e / 1.8 - 1.0).abs() < 1e-4);
    assert!(fit.objective < 1e-12);
}

#[test]
fn recovers_exponents_within_intervals_under_noise() {
    // 1% multiplicative noise on an 8 x 8 grid of (N, D). A 95% interval misses the
    // truth 5% of the time, so check coverage over eight independent data sets: of the
    // 16 alpha and beta intervals, at least 13 must hold the truth (P(fewer) < 1% for
    // binomial(16, 0.95)), and every point estimate must be within 0.05.
    let truth = crate::synthetic::TRUTH;
    let mut covered = 0;
    for seed in 0..8 {
        let pts = synthetic(&truth, 0.01, seed);
        let opts = ParametricOptions {
            boot: crate::stats::Bootstrap {
                resamples: 100,
                seed: 5,
                ..Default::default()
            },
            ..Default::default()
        };
        let fit = fit_parametric(&pts, &opts).unwrap();
        assert!(fit.diagnostics.converged);
        assert!(
            (fit.law.alpha - 0.35).abs() < 0.05 && (fit.law.beta - 0.37).abs() < 0.05,
            "{:?}",
            fit.law
        );
        let iv = fit.intervals.expect("intervals");
        covered += (iv.alpha.lo <= 0.35 && 0.35 <= iv.alpha.hi) as usize;
        covered += (iv.beta.lo <= 0.37 && 0.37 <= iv.beta.hi) as usize;
    }
    assert!(covered >= 13, "{covered} of 16 intervals hold the truth");
}

#[test]
fn too_few_points_is_an_error() {
    let pts: Vec<Observation> = (0..5).map(|i| pt(1e6 * (i + 1) as f64, 1e8, 3.0)).collect();
    let e = fit_parametric(&pts, &ParametricOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("5 points") && e.contains("at least 6"), "{e}");
}

/// `n` points at random (N, D) from `law` with multiplicative noise.
fn scattered(law: &ParametricLaw, n: usize, noise: f64, seed: u64) -> Vec<Observation> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let p = 10f64.powf(6.0 + 4.0 * rng.uniform());
            let d = 10f64.powf(8.0 + 4.0 * rng.uniform());
            pt(p, d, law.loss(p, d) * (noise * rng.normal()).exp())
        })
        .collect()
}

#[test]
fn screening_on_a_subsample_reaches_the_full_procedures_optimum() {
    let truth = crate::synthetic::TRUTH;
    for (n, m, seed) in [(3_000, 400, 1), (1_500, 100, 2)] {
        let pts = scattered(&truth, n, 0.01, seed);
        let full = fit_parametric(
            &pts,
            &ParametricOptions {
                boot: crate::stats::Bootstrap {
                    resamples: 0,
                    ..Default::default()
                },
                screen: Screen::Off,
                ..Default::default()
            },
        )
        .unwrap();
        let screened = fit_parametric(
            &pts,
            &ParametricOptions {
                boot: crate::stats::Bootstrap {
                    resamples: 0,
                    ..Default::default()
                },
                screen: Screen::Points(m),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(full.screening.is_none());
        assert_eq!(screened.screening.as_ref().unwrap().subsample, m);
        assert!(screened.diagnostics.converged);
        let rel = (screened.objective - full.objective).abs() / full.objective;
        assert!(
            rel < 1e-9,
            "{n} points: {} vs {}",
            screened.objective,
            full.objective
        );
        for (a, b) in screened.x.iter().zip(&full.x) {
            assert!((a - b).abs() < 1e-4, "{:?} vs {:?}", screened.x, full.x);
        }
    }
    // Auto leaves tables up to SCREEN_ABOVE points alone.
    assert_eq!(Screen::Auto.subsample(SCREEN_ABOVE), None);
    assert_eq!(
        Screen::Auto.subsample(SCREEN_ABOVE + 1),
        Some(SCREEN_POINTS)
    );
    assert_eq!(Screen::Points(500).subsample(400), None);
}

#[test]
fn the_m_out_of_n_bootstrap_matches_the_ordinary_one() {
    // 3,000 points: ordinary resamples of 3,000 against resamples of 600 scaled by
    // sqrt(600/3000). The intervals' widths agree within 35% (each is an estimate from
    // 200 resamples) and both hold the truth.
    let truth = crate::synthetic::TRUTH;
    let pts = scattered(&truth, 3_000, 0.02, 9);
    let fit = |boot_points| {
        fit_parametric(
            &pts,
            &ParametricOptions {
                boot: crate::stats::Bootstrap {
                    resamples: 200,
                    seed: 3,
                    ..Default::default()
                },
                boot_points,
                ..Default::default()
            },
        )
        .unwrap()
        .intervals
        .unwrap()
    };
    let (full, small) = (fit(None), fit(Some(600)));
    assert_eq!(
        (full.resample_points, small.resample_points),
        (None, Some(600))
    );
    for (name, a, b, t) in [
        ("alpha", &full.alpha, &small.alpha, truth.alpha),
        ("beta", &full.beta, &small.beta, truth.beta),
    ] {
        let (wa, wb) = (a.hi - a.lo, b.hi - b.lo);
        assert!((wb / wa - 1.0).abs() < 0.35, "{name}: widths {wa} and {wb}");
        assert!(
            a.lo <= t && t <= a.hi && b.lo <= t && t <= b.hi,
            "{name}: {a:?} {b:?} {t}"
        );
    }
}

#[test]
fn variable_projection_reaches_the_grids_optimum_without_starts() {
    let no_boot = crate::stats::Bootstrap {
        resamples: 0,
        ..Default::default()
    };
    let with = |solver: Solver, screen: Screen| ParametricOptions {
        boot: no_boot,
        solver,
        screen,
        ..Default::default()
    };
    let truth = crate::synthetic::TRUTH;
    // Noiseless: the law itself.
    let exact = fit_parametric(
        &synthetic(&truth, 0.0, 0),
        &with(Solver::Vpnls, Screen::Off),
    )
    .unwrap();
    assert!(exact.diagnostics.converged, "{:?}", exact.diagnostics);
    assert!(
        (exact.law.alpha - truth.alpha).abs() < 1e-6,
        "{:?}",
        exact.law
    );
    assert!(
        (exact.law.beta - truth.beta).abs() < 1e-6,
        "{:?}",
        exact.law
    );
    assert!(
        (exact.law.e / truth.e - 1.0).abs() < 1e-6,
        "{:?}",
        exact.law
    );
    // Noisy tables, and one screened on a subsample: the optimum of 4,500 starts, from at
    // most POLISHED polished points.
    for (n, noise, seed, screen) in [
        (200, 0.01, 3, Screen::Off),
        (400, 0.03, 4, Screen::Off),
        (1_500, 0.01, 5, Screen::Points(300)),
    ] {
        let pts = scattered(&truth, n, noise, seed);
        let grid = fit_parametric(&pts, &with(Solver::Lbfgs, screen)).unwrap();
        let vp = fit_parametric(&pts, &with(Solver::Vpnls, screen)).unwrap();
        assert!(vp.diagnostics.converged, "{:?}", vp.diagnostics);
        assert!(vp.diagnostics.starts <= crate::vpnls::POLISHED);
        assert!(vp.diagnostics.projections.unwrap() > 2500);
        assert!(grid.diagnostics.projections.is_none());
        let rel = (vp.objective - grid.objective) / grid.objective;
        assert!(
            rel < 1e-9,
            "{n} points, noise {noise}: {} vs {}",
            vp.objective,
            grid.objective
        );
        assert!(
            (vp.law.alpha - grid.law.alpha).abs() < 1e-4,
            "{:?} vs {:?}",
            vp.law,
            grid.law
        );
        assert!(
            (vp.law.beta - grid.law.beta).abs() < 1e-4,
            "{:?} vs {:?}",
            vp.law,
            grid.law
        );
    }
}
