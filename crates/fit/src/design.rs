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
use crate::report::{fit_table_with, FitSettings};
use isoflop_core::RunTable;

/// A bias larger than this (in a) is also a warning.
pub const WARN_BIAS: f64 = 0.05;

/// Approaches 1 and 2 on losses drawn exactly from a law at the table's own N and D.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DesignCheck {
    /// The law's a = beta/(alpha+beta), the value an unbiased approach returns.
    pub law_a: f64,
    /// Approach 1's a on the law's losses, where it could be fitted.
    pub approach1_a: Option<f64>,
    /// Approach 2's a on the law's losses, where it could be fitted.
    pub approach2_a: Option<f64>,
}

impl DesignCheck {
    /// Approach 1's bias in a (its a less the law's).
    pub fn approach1_bias(&self) -> Option<f64> {
        self.approach1_a.map(|a| a - self.law_a)
    }

    /// Approach 2's bias in a.
    pub fn approach2_bias(&self) -> Option<f64> {
        self.approach2_a.map(|a| a - self.law_a)
    }

    /// A warning per approach whose bias exceeds [`WARN_BIAS`].
    pub fn warnings(&self) -> Vec<String> {
        [
            ("Approach 1", self.approach1_a),
            ("Approach 2", self.approach2_a),
        ]
        .into_iter()
        .filter_map(|(name, a)| {
            let a = a?;
            let bias = a - self.law_a;
            (bias.abs() > WARN_BIAS).then(|| {
                format!(
                    "{name}: on losses drawn exactly from Approach 3's law (a = {:.4}) at these runs' sizes and tokens it gives a = {a:.4}, a bias of {bias:+.4} from the design alone (sizes, budgets, curves)",
                    self.law_a
                )
            })
        })
        .collect()
    }
}

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
/// rows with `law`'s losses. An approach that cannot be fitted there is `None`.
///
/// # Errors
/// [`FitError`] from the settings' check.
pub fn design_check(
    table: &RunTable,
    law: &ParametricLaw,
    settings: &FitSettings,
) -> Result<DesignCheck, FitError> {
    let mut s = settings.clone().with_bootstrap(0, settings.parametric.seed);
    s.approaches.retain(|&k| k == 1 || k == 2);
    s.laws = vec!["chinchilla".into()];
    s.explicit = false;
    let report = fit_table_with(&on_law(table, law), &s, false)?;
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
