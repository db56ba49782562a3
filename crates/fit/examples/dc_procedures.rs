//! An experiment (2026-11-30): three procedures for fitting the data-constrained law, on
//! Muennighoff et al.'s C4 runs (../shared/data) and on runs drawn from their released law.
//! (a) the base law from every single-epoch run, then R_D* and R_N*; (b) the base law from
//! the single-epoch runs with no excess parameters (N <= U_N under the base law itself,
//! iterated), then R_D* and R_N*; (c) (a), then all seven parameters refined together (the
//! library's fit since this experiment).
//! `cargo run --release -p isoflop-fit --example dc_procedures`

use isoflop_core::{Observation, RunTable};
use isoflop_fit::data_constrained::DataConstrainedLaw;
use isoflop_fit::forms::{huber, minimize_huber, score};
use isoflop_fit::lbfgs::Options;
use isoflop_fit::objective::HUBER_DELTA;
use isoflop_fit::{fit_parametric, ParametricLaw, ParametricOptions};

/// The fit's objective: the sum of Huber_1e-3 of the log errors.
fn total(law: &DataConstrainedLaw, pts: &[Observation]) -> f64 {
    pts.iter()
        .map(|o| {
            let p = law.loss(o.params, o.tokens, o.unique_tokens.unwrap());
            huber(p.ln() - o.loss.ln(), HUBER_DELTA)
        })
        .sum()
}

fn decays(base: ParametricLaw, pts: &[Observation]) -> DataConstrainedLaw {
    let grid: Vec<[f64; 2]> = (0..6)
        .flat_map(|a| (0..6).map(move |b| [a as f64, b as f64]))
        .collect();
    let f = |x: &[f64; 2]| {
        let law = DataConstrainedLaw {
            base,
            rd_star: x[0].exp(),
            rn_star: x[1].exp(),
        };
        total(&law, pts)
    };
    let (x, _, _) = minimize_huber(f, &grid, &Options::default()).unwrap();
    DataConstrainedLaw {
        base,
        rd_star: x[0].exp(),
        rn_star: x[1].exp(),
    }
}

fn single(pts: &[Observation]) -> Vec<Observation> {
    pts.iter()
        .filter(|o| o.tokens <= o.unique_tokens.unwrap() * (1.0 + 1e-9))
        .cloned()
        .collect()
}

fn base(pts: &[Observation]) -> ParametricLaw {
    fit_parametric(
        pts,
        &ParametricOptions {
            boot: isoflop_fit::stats::Bootstrap {
                resamples: 0,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .unwrap()
    .law
}

fn no_excess(pts: &[Observation]) -> (ParametricLaw, usize) {
    let s = single(pts);
    let mut law = base(&s);
    let mut n = s.len();
    for _ in 0..20 {
        let dc = DataConstrainedLaw {
            base: law,
            rd_star: 1.0,
            rn_star: 1.0,
        };
        let keep: Vec<Observation> = s
            .iter()
            .filter(|o| o.params <= dc.params_for_tokens(o.unique_tokens.unwrap()) * (1.0 + 1e-9))
            .cloned()
            .collect();
        if keep.len() == n || keep.len() < 6 {
            break;
        }
        n = keep.len();
        law = base(&keep);
    }
    (law, n)
}

fn report(name: &str, pts: &[Observation]) {
    let repeated: Vec<Observation> = pts
        .iter()
        .filter(|o| o.tokens > o.unique_tokens.unwrap() * (1.0 + 1e-9))
        .cloned()
        .collect();
    let show = |label: &str, l: &DataConstrainedLaw| {
        let all = score(l, pts);
        let rep = score(l, &repeated);
        println!(
            "  {label:<34} E {:.3} A {:.1} B {:.1} alpha {:.3} beta {:.3} R_D* {:.2} R_N* {:.2}; Huber/pt {:.3e}; repeated {:.2}%",
            l.base.e, l.base.a, l.base.b, l.base.alpha, l.base.beta, l.rd_star, l.rn_star,
            all.objective_per_point, 100.0 * rep.mean_abs_rel_error
        );
    };
    println!(
        "{name}: {} runs, {} single-epoch",
        pts.len(),
        single(pts).len()
    );
    let a = decays(base(&single(pts)), pts);
    show("(a) every single-epoch run", &a);
    let (b0, n) = no_excess(pts);
    show(
        &format!("(b) {n} without excess parameters"),
        &decays(b0, pts),
    );
    // (c): the library's fit, which ends by refining (a)'s result jointly.
    let c = isoflop_fit::data_constrained::fit_data_constrained(
        pts,
        0,
        0,
        isoflop_fit::stats::BootUnit::Run,
    )
    .unwrap();
    show("(c) (a) refined jointly", &c.law);
    show("released law", &DataConstrainedLaw::muennighoff2023());
}

fn main() {
    let law = DataConstrainedLaw::muennighoff2023();
    let rows = isoflop_fit::synthetic::data_constrained_runs(&law);
    for u in [1e9, 5e9, 2.5e10] {
        println!("  U {u:e}: U_N {:.3e}", law.params_for_tokens(u));
    }
    report("drawn from the released law", &rows);
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/muennighoff2023_datablations_c4_runs.csv");
    if p.exists() {
        report("C4 runs", &RunTable::read(&p).unwrap().final_rows());
    }
}
