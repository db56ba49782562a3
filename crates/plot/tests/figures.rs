//! The data behind each figure, checked against independent sources; every figure renders
//! to a valid SVG and PNG; the report opens in headless Chromium with every figure loaded.

use isoflop_core::{Observation, RunTable};
use isoflop_fit::isoflop::{Grouping, CHINCHILLA_BUDGETS};
use isoflop_fit::report::{FitReport, FitSettings};
use isoflop_fit::study::fit_table;
use isoflop_fit::synthetic::cosine_curves;
use isoflop_fit::ParametricLaw;
use isoflop_plot::render::{self, Figure};
use isoflop_plot::report::{write_all, Provenance};
use isoflop_plot::spec;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("plot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn epoch() -> Option<(RunTable, FitReport)> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/epoch_chinchilla_svg_extracted_data.csv");
    if !p.exists() {
        eprintln!("skipped: {} is absent", p.display());
        return None;
    }
    let table = RunTable::read(&p).unwrap();
    let mut s = FitSettings::default().with_bootstrap(50, 1);
    s.drop_top = 5;
    s.isoflop.grouping = Grouping::Nominal {
        budgets: CHINCHILLA_BUDGETS.to_vec(),
        tol_decades: 0.08,
    };
    let r = fit_table(&table, &s).unwrap();
    Some((table, r))
}

/// Synthetic cosine-schedule curves from a known law, as a run table.
fn curves_table() -> RunTable {
    let law = isoflop_fit::synthetic::TRUTH;
    let rows: Vec<Observation> = cosine_curves(&law, 0.002, 3)
        .into_values()
        .flatten()
        .collect();
    RunTable {
        source: "synthetic".into(),
        rows,
        ..Default::default()
    }
}

#[test]
fn isoloss_frontier_is_the_closed_form_and_contours_are_level_sets() {
    let Some((table, r)) = epoch() else { return };
    let f = spec::isoloss(&r, &table).unwrap();
    let law = r.approach3.fitted().unwrap().law;
    assert!(f.frontier.len() > 100);
    for &(c, n) in &f.frontier {
        assert!((n / law.optimal_params(c) - 1.0).abs() < 1e-12);
        assert!(f.x.contains(c) && f.y.contains(n));
    }
    assert!(f.contours.len() >= 4, "{}", f.contours.len());
    for c in &f.contours {
        for line in &c.lines {
            for &(flops, n) in line {
                // The law along D = C/(6N) at a contour point equals its level, up to the
                // grid's linear interpolation (the grid is 240 x 180 over ~6 decades).
                let l = law.loss(n, flops / (6.0 * n));
                assert!(
                    (l - c.loss).abs() < 0.02 * c.loss,
                    "level {} has a point at loss {l}",
                    c.loss
                );
                assert!(f.x.contains(flops) && f.y.contains(n));
            }
        }
    }
    assert_eq!(f.runs.len(), 245);
    assert_eq!(f.budgets.len(), 9);
}

#[test]
fn slices_optima_are_the_approach2_vertices() {
    let Some((_, r)) = epoch() else { return };
    let f = spec::isoflop_slices(&r, 5.76e23).unwrap();
    let a2 = r.approach2.fitted().unwrap();
    assert_eq!(f.slices.len(), a2.budgets.len());
    for (s, b) in f.slices.iter().zip(&a2.budgets) {
        assert_eq!(s.optimum, b.optimal_params.zip(b.min_loss));
        assert_eq!(s.points.len(), b.runs);
        // The vertex is the parabola's minimum: check against the parabola by brute force.
        let q = b.parabola.unwrap();
        let (n, l) = s.optimum.unwrap();
        for k in -50..=50 {
            let x = n.ln() + k as f64 * 0.01;
            assert!(q[0] + q[1] * x + q[2] * x * x >= l - 1e-12);
        }
        for curve in s.parabola.iter().chain(s.law.iter()) {
            assert!(curve
                .iter()
                .all(|&(a, b)| f.x.contains(a) && f.y.contains(b)));
        }
    }
    let law = r.approach3.fitted().unwrap().law;
    let (n, l, c) = f.target.unwrap();
    assert_eq!(c, 5.76e23);
    assert!(
        (n / law.optimal_params(c) - 1.0).abs() < 1e-12
            && (l - law.loss(n, law.optimal_tokens(c))).abs() < 1e-12
    );
}

#[test]
fn projections_write_the_projected_value_at_the_target() {
    let Some((table, r)) = epoch() else { return };
    let p = spec::projections(&r, &table, 5.76e23).unwrap();
    let fr = r.approach2.fitted().unwrap().frontier;
    assert_eq!(p.params.approach, "Approach 2");
    assert!((p.params.projected / fr.optimal_params(5.76e23) - 1.0).abs() < 1e-12);
    // "67B (52B-85B)": the projection and its 95% interval over the bootstrap frontiers,
    // which holds it; the band brackets the line everywhere.
    let (lo, hi) = p.params.interval.unwrap();
    assert!(lo < p.params.projected && p.params.projected < hi);
    assert_eq!(
        p.params.label,
        format!(
            "{} ({}-{})",
            spec::short_count(p.params.projected),
            spec::short_count(lo),
            spec::short_count(hi)
        )
    );
    assert!(
        p.params.label.ends_with("B)") && p.tokens.label.ends_with("T)"),
        "{} {}",
        p.params.label,
        p.tokens.label
    );
    let (blo, bhi) = p.params.band.as_ref().unwrap();
    for ((a, b), (c, d)) in blo.iter().zip(bhi) {
        let f = p.params.line.iter().find(|q| q.0 == *a).unwrap().1;
        assert!(a == c && *b <= f && f <= *d, "{a}: {b} {f} {d}");
    }
    assert_eq!(p.params.points.len(), 9);
    assert!(p.curves.is_none());
}

#[test]
fn training_curves_from_synthetic_cosine_runs() {
    let table = curves_table();
    let r = fit_table(&table, &FitSettings::default().with_bootstrap(20, 1)).unwrap();
    let f = spec::training_curves(&r, &table).unwrap();
    assert_eq!(f.runs.len(), 32);
    // Colour scale in millions of parameters: the smallest and largest models.
    assert!(
        (f.colour.lo - 10.0).abs() < 1e-6
            && (f.colour.hi / (1e7 * 10f64.powf(2.1) / 1e6) - 1.0).abs() < 1e-9,
        "{:?}",
        f.colour
    );
    // The envelope is the per-FLOPs minimum of the smoothed curves, so it never lies above
    // the raw curves by much, and it lies inside the axes.
    assert!(!f.envelope.is_empty());
    assert!(f
        .envelope
        .iter()
        .all(|&(c, l)| f.x.contains(c) && f.y.contains(l)));
    let names: Vec<&str> = f.predicted.iter().map(|p| p.0.as_str()).collect();
    assert!(
        names.contains(&"Approach 1") && names.contains(&"Approach 3"),
        "{names:?}"
    );
    // Approach 3's predicted loss line is the law along its own frontier.
    let law = r.approach3.fitted().unwrap().law;
    let (_, line) = f.predicted.iter().find(|p| p.0 == "Approach 3").unwrap();
    for &(c, l) in line {
        assert!((l - law.loss(law.optimal_params(c), law.optimal_tokens(c))).abs() < 1e-12);
    }
    let p = spec::projections(&r, &table, 1e24).unwrap();
    assert_eq!(p.params.approach, "Approach 1");
    assert!(p.curves.is_some());
}

fn assert_valid_png(path: &std::path::Path, size: (u32, u32)) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(&b[12..16], b"IHDR");
    let w = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    let h = u32::from_be_bytes([b[20], b[21], b[22], b[23]]);
    assert_eq!((w, h), size);
    assert!(b.len() > 5_000);
}

#[test]
fn every_figure_renders_to_valid_svg_and_png() {
    let table = curves_table();
    let r = fit_table(&table, &FitSettings::default().with_bootstrap(20, 1)).unwrap();
    let figs = spec::figures(&r, &table, 1e24);
    let d = tmp("render");
    let mut drawn = 0;
    for (name, fig) in [
        (
            "tc",
            figs.training_curves
                .as_ref()
                .ok()
                .map(Figure::TrainingCurves),
        ),
        (
            "pr",
            figs.projections.as_ref().ok().map(Figure::Projections),
        ),
        ("il", figs.isoloss.as_ref().ok().map(Figure::IsoLoss)),
        (
            "sl",
            figs.isoflop_slices.as_ref().ok().map(Figure::IsoFlopSlices),
        ),
    ] {
        let fig = fig.unwrap_or_else(|| panic!("{name} not built"));
        let svg = render::svg(fig).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        assert!(
            svg.matches("<text").count() > 10,
            "{name} has too little text"
        );
        let p = d.join(format!("{name}.png"));
        render::png(fig, &p).unwrap();
        assert_valid_png(&p, fig.size());
        drawn += 1;
    }
    assert_eq!(drawn, 4);
}

#[test]
fn a_table_with_one_budget_draws_what_it_can_and_says_what_it_cannot() {
    let law = ParametricLaw::CHINCHILLA;
    let rows = isoflop_fit::synthetic::isoflop_points(&law, &[1e20], 0.001, 2);
    let table = RunTable {
        source: "one-budget".into(),
        rows,
        ..Default::default()
    };
    let r = fit_table(&table, &FitSettings::default().with_bootstrap(10, 1)).unwrap();
    let d = tmp("one");
    let w = write_all(
        &d,
        &r,
        &table,
        1e22,
        &Provenance {
            command: "test".into(),
            versions: "test".into(),
        },
    )
    .unwrap();
    assert!(
        w.skipped
            .iter()
            .any(|s| s.starts_with("fig1") && s.contains("training curves")),
        "{:?}",
        w.skipped
    );
    assert!(
        w.skipped
            .iter()
            .any(|s| s.starts_with("fig4") && s.contains("Approach 2")),
        "{:?}",
        w.skipped
    );
    assert!(d.join("fig3_isoloss.png").exists() && d.join("report.html").exists());
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    assert!(html.contains("not drawn") && html.contains("Approach 2 not fitted"));
}

#[test]
fn report_opens_offline_in_headless_chromium_with_every_figure_loaded() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        eprintln!("skipped: Debian's chromium is not installed (scripts/setup.sh installs it)");
        return;
    };
    let table = curves_table();
    let r = fit_table(&table, &FitSettings::default().with_bootstrap(20, 1)).unwrap();
    let d = tmp("chromium");
    let w = write_all(
        &d,
        &r,
        &table,
        1e24,
        &Provenance {
            command: "isoflop plot synthetic".into(),
            versions: "isoflop test".into(),
        },
    )
    .unwrap();
    let n_figs = w
        .files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    assert_eq!(n_figs, 4);
    let profile = d.join("profile");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", d.join("report.html").display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        dom.contains(&format!("data-figures-loaded=\"{n_figs}/{n_figs}\"")),
        "chromium said:\n{}\n{}",
        &dom[..dom.len().min(300)],
        &err[..err.len().min(1500)]
    );
}
