//! Where the evaluations of a 4,500-start Approach 3 fit go (a profiling aid).
use isoflop_core::RunTable;
use isoflop_fit::lbfgs::{minimize, Options};
use isoflop_fit::parametric::{Grid, Objective, HUBER_DELTA};
fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        format!(
            "{}/../../data/chinchilla_points_kyo_takano.csv",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    let t = RunTable::read(std::path::Path::new(&path)).unwrap();
    let obj = Objective::new(&t.rows, HUBER_DELTA);
    let opts = Options::default();
    let mut rows = Vec::new();
    for x0 in Grid::paper().starts() {
        let m = minimize(|x, g| obj.value_grad(x, g), x0, &opts);
        rows.push((m.f, m.evaluations, m.iterations, m.termination, m.x));
    }
    let best = rows.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let mut classes: std::collections::BTreeMap<String, (usize, usize)> = Default::default();
    for r in &rows {
        let key = if (r.0 - best).abs() <= 1e-6 * best {
            "best".to_string()
        } else if r.4[2] < -5.0 {
            "E->0 valley".into()
        } else {
            format!("other f~{:.2e}", r.0)
        };
        let e = classes.entry(key).or_default();
        e.0 += 1;
        e.1 += r.1;
    }
    let total: usize = rows.iter().map(|r| r.1).sum();
    for (k, (n, ev)) in classes {
        println!(
            "{k:>24}: {n:5} starts, {ev:7} evaluations ({:.0}%), {:.0} per start",
            100.0 * ev as f64 / total as f64,
            ev as f64 / n as f64
        );
    }
    let mut ev: Vec<usize> = rows.iter().map(|r| r.1).collect();
    ev.sort();
    println!(
        "evaluations per start: median {}, p90 {}, max {}",
        ev[ev.len() / 2],
        ev[ev.len() * 9 / 10],
        ev[ev.len() - 1]
    );
}
