//! Figures 5 and 6 (law forms beyond Chinchilla's): their data checked against the laws'
//! own formulas and the fit's scores, and drawn only where such a form was fitted.

use isoflop_core::{Observation, RunTable};
use isoflop_fit::data_constrained::DataConstrainedLaw;
use isoflop_fit::report::{FitReport, FitSettings, Outcome};
use isoflop_fit::study::fit_table;
use isoflop_plot::report::{write_all, Provenance};
use isoflop_plot::spec;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("plot-forms-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn obs(n: f64, d: f64, u: Option<f64>, loss: f64) -> Observation {
    Observation {
        line: 0,
        run: Some(format!("n{n:e}-d{d:e}-u{u:?}")),
        step: None,
        params: n,
        tokens: d,
        flops: 6.0 * n * d,
        loss,
        budget: None,
        unique_tokens: u,
    }
}

/// Runs drawn without noise from Muennighoff et al.'s released law.
fn data_constrained_table() -> RunTable {
    RunTable {
        source: "data-constrained".into(),
        rows: isoflop_fit::synthetic::data_constrained_runs(&DataConstrainedLaw::muennighoff2023()),
        ..Default::default()
    }
}

/// IsoFLOP runs drawn without noise from a Kaplan law: 5 budgets a decade apart, 6 sizes.
fn kaplan_table() -> RunTable {
    let mut rows = Vec::new();
    for b in 0..5 {
        let c = 1e17 * 10f64.powi(b);
        for k in 0..6 {
            let n = (c / 120.0).sqrt() * 10f64.powf(-0.75 + 0.3 * k as f64);
            let t = c / (6.0 * n);
            rows.push(obs(
                n,
                t,
                None,
                ((3e12 / n).powf(0.09 / 0.11) + 2e13 / t).powf(0.11),
            ));
        }
    }
    RunTable {
        source: "kaplan".into(),
        rows,
        ..Default::default()
    }
}

fn fit(table: &RunTable, laws: &[&str], resamples: usize) -> FitReport {
    let mut s = FitSettings::default().with_bootstrap(resamples, 1);
    s.approaches = vec![3];
    s.laws = laws.iter().map(|l| l.to_string()).collect();
    fit_table(table, &s).unwrap()
}

fn write(dir: &std::path::Path, r: &FitReport, table: &RunTable) -> isoflop_plot::report::Written {
    let prov = Provenance {
        command: "test".into(),
        versions: "test".into(),
    };
    write_all(dir, r, table, 1e23, &prov).unwrap()
}

#[test]
fn repetition_curves_are_the_laws_effective_data_and_parameters() {
    let table = data_constrained_table();
    let r = fit(&table, &["data-constrained"], 20);
    let f = r.data_constrained.as_ref().unwrap().fitted().unwrap();
    // Drawn without noise from the released law: the fit finds its decay constants.
    assert!(
        (f.law.rd_star / 15.387756 - 1.0).abs() < 1e-3,
        "{:?}",
        f.law
    );
    let s = spec::repetition(&r, &table).unwrap();
    let law = f.law;
    let u = 1e10;
    let u_n = law.params_for_tokens(u);
    // Left: D'/U of a run of D = x U tokens, by the law's own effective(); right: N'/U_N of
    // a run of N = x U_N parameters.
    for &(x, y) in &s.tokens.fitted {
        let (_, d) = law.effective(0.5 * u_n, x * u, u);
        assert!(
            (y / (d / u) - 1.0).abs() < 1e-9,
            "x {x}: {y} against {}",
            d / u
        );
    }
    for &(x, y) in &s.params.fitted {
        let (n, _) = law.effective(x * u_n, u, u);
        assert!(
            (y / (n / u_n) - 1.0).abs() < 1e-9,
            "x {x}: {y} against {}",
            n / u_n
        );
    }
    let released = DataConstrainedLaw::muennighoff2023();
    for &(x, y) in &s.tokens.released {
        let (_, d) = released.effective(1e6, x * u, u);
        assert!((y / (d / u) - 1.0).abs() < 1e-9);
    }
    // The band holds the fitted curve; every run is a tick on both panels.
    let (lo, hi) = s.tokens.band.as_ref().unwrap();
    for ((a, b), c) in lo.iter().zip(hi).zip(&s.tokens.fitted) {
        assert!(a.1 <= c.1 + 1e-9 && c.1 <= b.1 + 1e-9, "{a:?} {c:?} {b:?}");
    }
    assert_eq!(s.tokens.runs.len(), table.rows.len());
    assert_eq!(s.params.runs.len(), table.rows.len());
    assert!(s.tokens.runs.iter().all(|e| s.tokens.x.contains(*e)));
}

#[test]
fn each_forms_panel_scores_as_the_fit_compared_it() {
    let table = kaplan_table();
    let r = fit(&table, &["chinchilla", "kaplan"], 0);
    let s = spec::forms_fit(&r, &table).unwrap();
    assert_eq!(s.panels.len(), 2);
    let Some(Outcome::Fitted(held)) = &r.held_out else {
        panic!("no held-out comparison: {:?}", r.held_out)
    };
    for p in &s.panels {
        let fitted = r.comparison.iter().find(|c| c.form == p.form).unwrap();
        assert!((p.rmse_log - fitted.rmse_log).abs() < 1e-12, "{p:?}");
        let h = held.scores.iter().find(|c| c.form == p.form).unwrap();
        assert_eq!(p.held_out_error, Some(h.mean_abs_rel_error));
        assert_eq!(p.points.len(), 30);
    }
    // The runs' own form puts every run on the diagonal.
    let k = s.panels.iter().find(|p| p.form == "kaplan").unwrap();
    assert!(
        k.points.iter().all(|q| (q.0 / q.1 - 1.0).abs() < 1e-4),
        "{k:?}"
    );
}

#[test]
fn the_figures_of_other_forms_are_drawn_only_where_such_a_form_was_fitted() {
    let d = tmp("only-where-fitted");
    let dc = data_constrained_table();
    let w = write(&d, &fit(&dc, &["chinchilla", "data-constrained"], 0), &dc);
    for name in ["fig5_law_forms", "fig6_repetition"] {
        let png = std::fs::read(d.join(format!("{name}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{name}");
        let svg = std::fs::read_to_string(d.join(format!("{name}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{name}");
    }
    assert!(!w
        .skipped
        .iter()
        .any(|s| s.starts_with("fig5") || s.starts_with("fig6")));
    // Kaplan's form has no repetition figure; Chinchilla's alone has neither, says nothing
    // of them, and leaves no earlier plot's files of them behind.
    let k = kaplan_table();
    let w = write(&d, &fit(&k, &["chinchilla", "kaplan"], 0), &k);
    assert!(d.join("fig5_law_forms.png").exists());
    assert!(!d.join("fig6_repetition.png").exists() && !d.join("fig6_repetition.svg").exists());
    assert!(
        !w.skipped.iter().any(|s| s.starts_with("fig6")),
        "{:?}",
        w.skipped
    );
    let w = write(&d, &fit(&k, &["chinchilla"], 0), &k);
    assert!(!d.join("fig5_law_forms.png").exists() && !d.join("fig5_law_forms.svg").exists());
    assert!(
        !w.skipped.iter().any(|s| s.starts_with("fig5")),
        "{:?}",
        w.skipped
    );
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(!html.contains("Figure 5") && !html.contains("Figure 6"));
}
