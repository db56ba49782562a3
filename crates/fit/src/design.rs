//! What a study's design alone does to Approaches 1 and 2.
//!
//! Approaches 1 and 2 estimate the exponent a from the sizes, budgets and curves that were
//! trained; where those sit off the frontier, or a budget's parabola is lopsided, the
//! estimate is biased even with perfect losses. The check: replace every row's loss by a
//! law's (Approach 3's fit) at that row's N and D, with no noise, refit both approaches with
//! the same settings, and compare their a with the law's own, beta/(alpha+beta). What is
//! left of the approaches' disagreement on real losses is then the data's, not the design's.

use crate::error::FitError;
use crate::law::ParametricLaw;
use crate::report::{fit_approaches, FitSettings};
use isoflop_core::RunTable;

pub use crate::report::{DesignCheck, WARN_BIAS};

/// The table with every row's loss replaced by `law`'s at its (N, D), and no final-loss
/// column (each run's final loss is then its last row's, which is the law's at its D).
pub fn on_law(table: &RunTable, law: &ParametricLaw) -> RunTable {
    let mut t = table.clone();
    for r in &mut t.rows {
        r.loss = law.loss(r.params, r.tokens);
    }
    t.finals.clear();
    t
}

/// Approaches 1 and 2 (those `settings` asks for) refitted without bootstrap on `table`'s
/// rows with `law`'s losses. An approach not asked for, or that cannot be fitted there, is
/// `None` ([`crate::fit_table`] asks for those it fitted on the real losses).
///
/// # Errors
/// [`FitError`] from the settings' check.
pub fn design_check(
    table: &RunTable,
    law: &ParametricLaw,
    settings: &FitSettings,
) -> Result<DesignCheck, FitError> {
    let mut s = settings
        .clone()
        .with_bootstrap(0, settings.parametric.boot.seed);
    s.approaches.retain(|&k| k == 1 || k == 2);
    s.laws = vec!["chinchilla".into()];
    s.explicit = false;
    let report = fit_approaches(&on_law(table, law), &s)?;
    Ok(DesignCheck {
        law_a: law.params_exponent(),
        approach1_a: report
            .approach1
            .fitted()
            .map(|f| f.frontier.params_exponent),
        approach2_a: report
            .approach2
            .fitted()
            .map(|f| f.frontier.params_exponent),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Chinchilla's law (Hoffmann et al. 2022, Approach 3): a = 0.28 / 0.62.
    const LAW: ParametricLaw = ParametricLaw {
        e: 1.69,
        a: 406.4,
        b: 410.7,
        alpha: 0.34,
        beta: 0.28,
    };

    /// Solves a 3 x 3 system by Gaussian elimination with partial pivoting.
    fn gauss3(mut m: [[f64; 4]; 3]) -> [f64; 3] {
        for col in 0..3 {
            let p = (col..3)
                .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
                .unwrap();
            m.swap(col, p);
            for r in 0..3 {
                if r != col {
                    let f = m[r][col] / m[col][col];
                    for k in col..4 {
                        m[r][k] -= f * m[col][k];
                    }
                }
            }
        }
        [m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]]
    }

    #[test]
    fn approach2_on_the_laws_losses_equals_a_hand_fit() {
        // Three budgets, five sizes each, centred on sqrt(C/120) (20 tokens per parameter)
        // while the law's optimum drifts as C^0.45: the samples slide along the curve.
        let budgets: [f64; 3] = [1e18, 1e19, 1e20];
        let mut csv = String::from("run,params,tokens,flops,loss,budget\n");
        let mut by_budget: Vec<Vec<(f64, f64, f64)>> = Vec::new();
        for (i, &c) in budgets.iter().enumerate() {
            let mut runs = Vec::new();
            for k in 0..5 {
                let n = (c / 120.0).sqrt() * 4f64.powf(k as f64 / 2.0 - 1.0);
                let d = c / (6.0 * n);
                let l = LAW.loss(n, d);
                csv += &format!("r{i}-{k},{n},{d},{},{},{c}\n", 6.0 * n * d, l + 0.5);
                runs.push((n, 6.0 * n * d, l));
            }
            by_budget.push(runs);
        }
        let table = RunTable::from_csv(Path::new("grid.csv"), &csv).unwrap();
        let check = design_check(&table, &LAW, &FitSettings::default()).unwrap();
        assert_eq!(check.approach1_a, None, "no curves, no Approach 1");
        // By hand: each budget's least-squares parabola in ln N (uncentred normal
        // equations), its vertex, then the slope of ln N* on the runs' mean ln C.
        let (mut xs, mut ys) = (Vec::new(), Vec::new());
        for runs in &by_budget {
            let mut m = [[0.0; 4]; 3];
            for &(n, _, l) in runs {
                let x = n.ln();
                let row = [1.0, x, x * x];
                for r in 0..3 {
                    for k in 0..3 {
                        m[r][k] += row[r] * row[k];
                    }
                    m[r][3] += row[r] * l;
                }
            }
            let q = gauss3(m);
            ys.push(-q[1] / (2.0 * q[2]));
            xs.push(runs.iter().map(|r| r.1.ln()).sum::<f64>() / runs.len() as f64);
        }
        let (mx, my) = (xs.iter().sum::<f64>() / 3.0, ys.iter().sum::<f64>() / 3.0);
        let slope = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| (x - mx) * (y - my))
            .sum::<f64>()
            / xs.iter().map(|x| (x - mx).powi(2)).sum::<f64>();
        let a2 = check.approach2_a.unwrap();
        assert!((a2 - slope).abs() < 1e-6, "{a2} against {slope} by hand");
        assert!((check.law_a - 0.28 / 0.62).abs() < 1e-12);
        // The table's own losses (offset by 0.5 nats) are not used: only N and D are.
        assert!((check.approach2_bias().unwrap() - (slope - 0.28 / 0.62)).abs() < 1e-6);
    }

    #[test]
    fn approach1_recovers_the_law_from_dense_curves() {
        // Twenty sizes 30M..3B, each logged every 100 steps, 60 times, up to 80 tokens per
        // parameter (so that the default smoothing, 10 steps, changes nothing).
        let mut csv = String::from("run,step,params,tokens,loss\n");
        for i in 0..20 {
            let n = 3e7 * 100f64.powf(i as f64 / 19.0);
            for k in 1..=60 {
                let d = 80.0 * n * k as f64 / 60.0;
                csv += &format!("n{i},{},{n},{d},{}\n", 100 * k, 9.0);
            }
        }
        let table = RunTable::from_csv(Path::new("curves.csv"), &csv).unwrap();
        let check = design_check(&table, &LAW, &FitSettings::default()).unwrap();
        let bias = check.approach1_bias().unwrap();
        assert!(bias.abs() < 0.005, "Approach 1 bias {bias}");
        assert!(check
            .warnings()
            .iter()
            .all(|w| !w.starts_with("Approach 1")));
        // Without a step column, 10 steps of smoothing are 10 rows of these 60: the curves'
        // bend is smoothed into the envelope, and the check shows it.
        let unstepped = csv_without_steps(&csv);
        let table = RunTable::from_csv(Path::new("rows.csv"), &unstepped).unwrap();
        let check = design_check(&table, &LAW, &FitSettings::default()).unwrap();
        assert!(check.approach1_bias().unwrap() < -WARN_BIAS, "{check:?}");
        assert!(check.warnings()[0].starts_with("Approach 1"));
    }

    fn csv_without_steps(csv: &str) -> String {
        csv.lines()
            .map(|l| {
                let mut f: Vec<&str> = l.split(',').collect();
                f.remove(1);
                f.join(",") + "\n"
            })
            .collect()
    }

    #[test]
    fn a_large_bias_is_a_warning_naming_the_approach() {
        let d = DesignCheck {
            law_a: 0.74,
            approach1_a: Some(0.73),
            approach2_a: Some(0.68),
        };
        let w = d.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with("Approach 2") && w[0].contains("-0.0600"),
            "{w:?}"
        );
    }
}
