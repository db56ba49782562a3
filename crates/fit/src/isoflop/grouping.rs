//! Which budget each run belongs to: a `budget` column, the nearest of nominal budgets
//! within a tolerance, or clusters of ln C.

use super::*;

/// How runs are assigned to budgets.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// Use each row's `budget` value; fall back to clustering when some row lacks one.
    Auto {
        /// Gap in decades of C that starts a new cluster.
        tol_decades: f64,
    },
    /// Assign each run to the nearest nominal budget within `tol_decades` (others unused).
    Nominal {
        /// The nominal budgets.
        budgets: Vec<f64>,
        /// Largest distance in decades.
        tol_decades: f64,
    },
}

/// The default grouping tolerance, in decades of FLOPs: the gap between sorted FLOPs that
/// starts a new budget, or the farthest a run may lie from a nominal budget (0.08 decades is
/// a factor 1.2; the paper's nearest budgets, 6e19 and 1e20, are 0.22 decades apart).
pub const TOL_DECADES: f64 = 0.08;

impl Grouping {
    /// The grouping a user names: `None` (the `budget` column, else clusters of FLOPs),
    /// `chinchilla` (the paper's nine budgets) or a comma-separated list of FLOPs; runs go
    /// to the nearest within `tol_decades`.
    ///
    /// # Errors
    /// A message naming an entry of the list that is not a positive number.
    pub fn from_spec(spec: Option<&str>, tol_decades: f64) -> Result<Grouping, String> {
        Ok(match spec {
            None => Grouping::Auto { tol_decades },
            Some("chinchilla") => Grouping::Nominal {
                budgets: CHINCHILLA_BUDGETS.to_vec(),
                tol_decades,
            },
            Some(list) => {
                let budgets = list
                    .split(',')
                    .map(|t| {
                        t.trim()
                            .parse::<f64>()
                            .ok()
                            .filter(|v| v.is_finite() && *v > 0.0)
                            .ok_or_else(|| format!("'{t}' is not a positive number"))
                    })
                    .collect::<Result<Vec<f64>, String>>()?;
                isoflop_core::units::check_budgets(&budgets)?;
                Grouping::Nominal {
                    budgets,
                    tol_decades,
                }
            }
        })
    }
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping::Auto {
            tol_decades: TOL_DECADES,
        }
    }
}

/// Group index per point (None: unassigned) and each group's nominal budget.
pub(super) fn assign(
    points: &[Observation],
    grouping: &Grouping,
) -> (Vec<Option<usize>>, Vec<Option<f64>>) {
    match grouping {
        Grouping::Nominal {
            budgets,
            tol_decades,
        } => {
            let idx = points
                .iter()
                .map(|p| {
                    let lc = p.flops.log10();
                    budgets
                        .iter()
                        .enumerate()
                        .map(|(i, b)| (i, (lc - b.log10()).abs()))
                        .filter(|(_, d)| *d <= *tol_decades)
                        .min_by(|x, y| x.1.total_cmp(&y.1))
                        .map(|(i, _)| i)
                })
                .collect();
            (idx, budgets.iter().map(|b| Some(*b)).collect())
        }
        Grouping::Auto { tol_decades } => {
            if points.iter().all(|p| p.budget.is_some()) {
                let mut values: Vec<f64> =
                    points.iter().map(|p| p.budget.expect("checked")).collect();
                values.sort_by(f64::total_cmp);
                values.dedup();
                let idx = points
                    .iter()
                    .map(|p| values.iter().position(|v| Some(*v) == p.budget))
                    .collect();
                return (idx, values.into_iter().map(Some).collect());
            }
            let mut order: Vec<usize> = (0..points.len()).collect();
            order.sort_by(|&i, &j| points[i].flops.total_cmp(&points[j].flops));
            let mut idx = vec![None; points.len()];
            let mut group = 0usize;
            let mut prev: Option<f64> = None;
            for &i in &order {
                let lc = points[i].flops.log10();
                if let Some(p) = prev {
                    if lc - p > *tol_decades {
                        group += 1;
                    }
                }
                idx[i] = Some(group);
                prev = Some(lc);
            }
            let n_groups = if points.is_empty() { 0 } else { group + 1 };
            (idx, vec![None; n_groups])
        }
    }
}
