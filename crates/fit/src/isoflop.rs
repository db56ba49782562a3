//! Approach 2: IsoFLOP profiles.
//!
//! Runs are grouped by budget: by a `budget` column where the table has one, else to the
//! nearest of a list of nominal budgets within a tolerance in decades, else by clustering
//! ln C (a new group wherever sorted log10 C jumps by more than the tolerance). Per budget,
//! loss = q0 + q1 x + q2 x^2 with x = ln N is fitted by least squares and its vertex
//! x* = -q1 / (2 q2) gives N_opt; D_opt = C / (6 N_opt) with C the geometric mean of the
//! group's FLOPs. A budget whose parabola opens downward (q2 <= 0) or whose vertex lies
//! outside its sampled sizes is refused with a warning. Power laws N_opt = k C^a and
//! D_opt = k' C^b are then fitted across the accepted budgets.
//!
//! The parabola is fitted in x centred on the budget's mean ln N (for conditioning: sizes
//! near 1e9 make x^2 near 430 otherwise), and the frontier by ordinary least squares of
//! ln N_opt (and ln D_opt) on ln C.

use crate::error::FitError;
use crate::frontier::Frontier;
use crate::stats::{bootstrap_clusters, clusters};
use isoflop_core::Observation;

/// The nine IsoFLOP budgets of Hoffmann et al. 2022, Figure 3: 6e18 to 3e21 FLOPs.
pub const CHINCHILLA_BUDGETS: [f64; 9] = [6e18, 1e19, 3e19, 6e19, 1e20, 3e20, 6e20, 1e21, 3e21];

/// Settings of an Approach 2 fit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct IsoFlopOptions {
    /// Budget assignment.
    pub grouping: Grouping,
    /// Fewest runs for a budget's parabola (at least 3).
    pub min_runs: usize,
    /// The bootstrap.
    #[serde(flatten)]
    pub boot: crate::stats::Bootstrap,
    /// Fit each budget's parabola only to the runs within this many decades of N around
    /// its minimum (re-centred once on the first vertex); `None`: every run of the budget.
    /// A parabola over a wide grid is biased where the loss is not symmetric in ln N.
    #[serde(default = "default_window")]
    pub window_decades: Option<f64>,
    /// What each budget's C is in the power laws across budgets.
    #[serde(default)]
    pub budget_flops: BudgetFlops,
}

/// A window for [`IsoFlopOptions::window_decades`] that keeps a 16x band of sizes. Not the
/// default: measured on synthetic grids 4x to 256x wide (docs/deviations.md,
/// `examples/approach2_window.rs`), the whole-range parabola's bias was at most 0.002 in a,
/// and with 0.5% noise its error was the smaller one at every width.
pub const WINDOW_DECADES: f64 = 0.6;

fn default_window() -> Option<f64> {
    None
}

/// What a budget's C is when the frontier is regressed on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetFlops {
    /// The geometric mean of 6ND over the budget's runs (what the runs spent).
    #[default]
    Mean,
    /// The nominal budget (the `budget` column or `--budgets` list) where there is one.
    Nominal,
}

impl Default for IsoFlopOptions {
    fn default() -> Self {
        IsoFlopOptions {
            grouping: Grouping::default(),
            min_runs: 3,
            boot: crate::stats::Bootstrap::default(),
            window_decades: default_window(),
            budget_flops: BudgetFlops::Mean,
        }
    }
}

/// One budget's profile.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BudgetProfile {
    /// The nominal budget (from the column or list), or the group's geometric-mean FLOPs.
    pub budget: f64,
    /// Geometric mean of the group's FLOPs: the C used for the power laws.
    pub flops: f64,
    /// Runs in the group.
    pub runs: usize,
    /// Smallest and largest N sampled.
    pub params_range: (f64, f64),
    /// The runs of this budget: (N, loss).
    pub points: Vec<(f64, f64)>,
    /// Parabola coefficients in x = ln N: loss = q0 + q1 x + q2 x^2.
    pub parabola: Option<[f64; 3]>,
    /// N at the vertex.
    pub optimal_params: Option<f64>,
    /// C / (6 N_opt).
    pub optimal_tokens: Option<f64>,
    /// Loss at the vertex.
    pub min_loss: Option<f64>,
    /// Why the budget was refused, if it was.
    pub refused: Option<String>,
    /// The reason's kind, shared by every budget refused for it (the warnings count budgets
    /// by it); not written to JSON.
    #[serde(skip)]
    pub refused_for: Option<&'static str>,
    /// Runs the parabola was fitted to (all of them, or those in the window).
    #[serde(default)]
    pub fitted_runs: usize,
    /// The vertex's own 95% interval in N (the fitted runs resampled, 200 times, seeded).
    #[serde(default)]
    pub vertex_interval: Option<crate::stats::Interval>,
}

pub use crate::frontier::FrontierIntervals;

/// The result of an Approach 2 fit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct IsoFlopFit {
    /// Every budget, accepted or refused, by increasing FLOPs.
    pub budgets: Vec<BudgetProfile>,
    /// The frontier across accepted budgets.
    pub frontier: Frontier,
    /// Bootstrap intervals.
    pub intervals: Option<FrontierIntervals>,
    /// Bootstrap frontiers, kept for prediction intervals.
    pub samples: Vec<Frontier>,
    /// Warnings for the user.
    pub warnings: Vec<String>,
}

const NAME: &str = "Approach 2";

/// Least-squares parabola in x; `None` when the normal equations are singular.
fn fit_parabola(x: &[f64], y: &[f64]) -> Option<[f64; 3]> {
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    // Centre x for conditioning, solve, then expand back.
    let mut s = [0.0f64; 5];
    let mut t = [0.0f64; 3];
    for (&xi, &yi) in x.iter().zip(y) {
        let u = xi - mx;
        let mut p = 1.0;
        for (k, sk) in s.iter_mut().enumerate() {
            *sk += p;
            if k < 3 {
                t[k] += p * yi;
            }
            p *= u;
        }
    }
    let m = [[s[0], s[1], s[2]], [s[1], s[2], s[3]], [s[2], s[3], s[4]]];
    let c = solve3(m, t)?;
    // loss = c0 + c1 (x - mx) + c2 (x - mx)^2
    Some([
        c[0] - c[1] * mx + c[2] * mx * mx,
        c[1] - 2.0 * c[2] * mx,
        c[2],
    ])
}

fn solve3(m: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&m);
    let scale = m.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
    if d.abs() <= 1e-13 * scale.powi(3) {
        return None;
    }
    let mut out = [0.0; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let mut mk = m;
        for r in 0..3 {
            mk[r][k] = b[r];
        }
        *o = det(&mk) / d;
    }
    Some(out)
}

/// The runs within `w` decades of N around `centre` (ln N); at least the three sizes nearest
/// to it.
fn window<'a>(points: &[&'a Observation], centre: f64, w: f64) -> Vec<&'a Observation> {
    let half = w * std::f64::consts::LN_10;
    let inside: Vec<&Observation> = points
        .iter()
        .copied()
        .filter(|p| (p.params.ln() - centre).abs() <= half)
        .collect();
    let mut sizes: Vec<f64> = inside.iter().map(|p| p.params).collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    if sizes.len() >= 3 {
        return inside;
    }
    let mut all: Vec<f64> = points.iter().map(|p| p.params).collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    all.sort_by(|a, b| (a.ln() - centre).abs().total_cmp(&(b.ln() - centre).abs()));
    let keep: Vec<f64> = all.into_iter().take(3).collect();
    points
        .iter()
        .copied()
        .filter(|p| keep.contains(&p.params))
        .collect()
}

/// The parabola's vertex (ln N, loss) of `pts`, where it opens upward.
fn vertex_of(pts: &[&Observation]) -> Option<(f64, f64, [f64; 3])> {
    let x: Vec<f64> = pts.iter().map(|p| p.params.ln()).collect();
    let y: Vec<f64> = pts.iter().map(|p| p.loss).collect();
    let q = fit_parabola(&x, &y)?;
    if q[2] <= 0.0 {
        return None;
    }
    let xv = -q[1] / (2.0 * q[2]);
    Some((xv, q[0] + q[1] * xv + q[2] * xv * xv, q))
}

fn profile(
    points: &[&Observation],
    nominal: Option<f64>,
    opts: &IsoFlopOptions,
    with_interval: bool,
) -> BudgetProfile {
    let min_runs = opts.min_runs.max(3);
    let flops = (points.iter().map(|p| p.flops.ln()).sum::<f64>() / points.len() as f64).exp();
    let lo = points
        .iter()
        .map(|p| p.params)
        .fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.params).fold(0.0, f64::max);
    let mut prof = BudgetProfile {
        budget: nominal.unwrap_or(flops),
        flops,
        runs: points.len(),
        params_range: (lo, hi),
        points: points.iter().map(|p| (p.params, p.loss)).collect(),
        parabola: None,
        optimal_params: None,
        optimal_tokens: None,
        min_loss: None,
        refused: None,
        refused_for: None,
        fitted_runs: points.len(),
        vertex_interval: None,
    };
    let mut distinct: Vec<f64> = points.iter().map(|p| p.params).collect();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if points.len() < min_runs || distinct.len() < 3 {
        prof.refused_for = Some(TOO_FEW);
        prof.refused = Some(format!(
            "{} runs at {} distinct sizes; a parabola needs at least {} runs at 3 sizes",
            points.len(),
            distinct.len(),
            min_runs
        ));
        return prof;
    }
    // The runs the parabola is fitted to: all, or a window around the lowest loss,
    // re-centred once on the vertex it gives.
    let mut chosen: Vec<&Observation> = points.to_vec();
    if let Some(w) = opts.window_decades {
        let best = points
            .iter()
            .min_by(|a, b| a.loss.total_cmp(&b.loss))
            .expect("non-empty");
        chosen = window(points, best.params.ln(), w);
        if let Some((xv, _, _)) = vertex_of(&chosen) {
            if xv >= lo.ln() && xv <= hi.ln() {
                chosen = window(points, xv, w);
            }
        }
    }
    prof.fitted_runs = chosen.len();
    let x: Vec<f64> = chosen.iter().map(|p| p.params.ln()).collect();
    let y: Vec<f64> = chosen.iter().map(|p| p.loss).collect();
    let Some(q) = fit_parabola(&x, &y) else {
        prof.refused_for = Some("each one's parabola has singular normal equations");
        prof.refused = Some("the parabola's normal equations are singular".into());
        return prof;
    };
    prof.parabola = Some(q);
    if q[2] <= 0.0 {
        prof.refused_for = Some("each one's parabola opens downward");
        prof.refused = Some(format!(
            "the parabola opens downward (curvature {:.3e})",
            q[2]
        ));
        return prof;
    }
    let xv = -q[1] / (2.0 * q[2]);
    let n_opt = xv.exp();
    if n_opt < lo || n_opt > hi {
        prof.refused_for = Some("each one's vertex lies outside its sampled sizes");
        prof.refused = Some(format!(
            "the vertex N = {n_opt:.3e} lies outside the sampled sizes {lo:.3e}..{hi:.3e}"
        ));
        return prof;
    }
    prof.optimal_params = Some(n_opt);
    prof.optimal_tokens = Some(flops / (6.0 * n_opt));
    prof.min_loss = Some(q[0] + q[1] * xv + q[2] * xv * xv);
    if !with_interval {
        return prof;
    }
    // The vertex's own interval: the fitted runs resampled.
    let mut rng = isoflop_core::Rng::stream(opts.boot.seed ^ 0x7e57, flops.to_bits());
    let vertices = (0..200).filter_map(|_| {
        let pick: Vec<&Observation> = (0..chosen.len())
            .map(|_| chosen[rng.below(chosen.len())])
            .collect();
        let mut s: Vec<f64> = pick.iter().map(|p| p.params).collect();
        s.sort_by(f64::total_cmp);
        s.dedup();
        if s.len() < 3 {
            return None;
        }
        vertex_of(&pick).map(|v| v.0.exp())
    });
    prof.vertex_interval = crate::stats::percentile_interval(vertices, 0.95);
    prof
}

fn profiles(
    points: &[Observation],
    groups: &[Option<usize>],
    nominal: &[Option<f64>],
    opts: &IsoFlopOptions,
    with_interval: bool,
) -> Vec<BudgetProfile> {
    let mut members: Vec<Vec<&Observation>> = vec![Vec::new(); nominal.len()];
    for (p, g) in points.iter().zip(groups) {
        if let Some(g) = g {
            members[*g].push(p);
        }
    }
    let mut out: Vec<BudgetProfile> = members
        .iter()
        .zip(nominal)
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, nom)| profile(m, *nom, opts, with_interval))
        .collect();
    out.sort_by(|a, b| a.flops.total_cmp(&b.flops));
    out
}

/// The budgets of `points` as the fit groups them, each with its profile (parabola and vertex
/// where usable) and the indices of its points, by increasing FLOPs. Points that no budget
/// takes are left out.
pub fn group_budgets(
    points: &[Observation],
    opts: &IsoFlopOptions,
) -> Vec<(BudgetProfile, Vec<usize>)> {
    let (groups, nominal) = assign(points, &opts.grouping);
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); nominal.len()];
    for (i, g) in groups.iter().enumerate() {
        if let Some(g) = g {
            members[*g].push(i);
        }
    }
    let mut out: Vec<(BudgetProfile, Vec<usize>)> = members
        .into_iter()
        .zip(&nominal)
        .filter(|(m, _)| !m.is_empty())
        .map(|(m, nom)| {
            let pts: Vec<&Observation> = m.iter().map(|&i| &points[i]).collect();
            (profile(&pts, *nom, opts, true), m)
        })
        .collect();
    out.sort_by(|a, b| a.0.flops.total_cmp(&b.0.flops));
    out
}

/// The kind of refusal of a budget with too few runs or sizes.
const TOO_FEW: &str = "too few runs or sizes for a parabola";

/// Budgets refused for one reason: at least this many share one line of warning.
pub const REFUSALS_IN_ONE_LINE: usize = 3;

/// The warning line of one refused budget (`isoflop fit --verbose` prints every one).
pub fn refusal_line(b: &BudgetProfile) -> Option<String> {
    b.refused.as_ref().map(|why| {
        format!(
            "Approach 2: budget {:.3e} ({} runs) refused: {why}",
            b.budget, b.runs
        )
    })
}

/// The kinds of refusal that [`REFUSALS_IN_ONE_LINE`] budgets or more share, in order of
/// first appearance.
fn folded_kinds(budgets: &[BudgetProfile]) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for k in budgets.iter().filter_map(|b| b.refused_for) {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds.retain(|k| {
        budgets.iter().filter(|b| b.refused_for == Some(k)).count() >= REFUSALS_IN_ONE_LINE
    });
    kinds
}

/// The lines of the refused budgets that the warnings fold into a count (what `isoflop fit
/// --verbose` adds), each as [`refusal_line`] writes it.
pub fn folded_refusals(budgets: &[BudgetProfile]) -> Vec<String> {
    let kinds = folded_kinds(budgets);
    budgets
        .iter()
        .filter(|b| b.refused_for.is_some_and(|k| kinds.contains(&k)))
        .filter_map(refusal_line)
        .collect()
}

/// The warnings of the refused budgets: one line per budget, except where
/// [`REFUSALS_IN_ONE_LINE`] budgets or more were refused for one reason, which then share
/// one line that counts them, names the first few, and says how to see each.
fn refusal_warnings(budgets: &[BudgetProfile], min_runs: usize) -> Vec<String> {
    let folded = folded_kinds(budgets);
    let mut out = Vec::new();
    let mut said: Vec<&'static str> = Vec::new();
    for b in budgets {
        let Some(kind) = b.refused_for else { continue };
        if !folded.contains(&kind) {
            out.extend(refusal_line(b));
            continue;
        }
        if said.contains(&kind) {
            continue;
        }
        said.push(kind);
        let these: Vec<&BudgetProfile> = budgets
            .iter()
            .filter(|b| b.refused_for == Some(kind))
            .collect();
        let reason = if kind == TOO_FEW {
            format!(
                "each with fewer than {min_runs} runs at 3 distinct sizes (a parabola needs them)"
            )
        } else {
            kind.to_string()
        };
        let list =
            isoflop_core::error::list(these.iter().map(|b| format!("{:.3e}", b.budget)), ", ");
        out.push(format!(
            "Approach 2: {} of {} budgets refused, {reason}: {list} (`isoflop fit --verbose` lists each, and `--json` has every budget's reason)",
            these.len(),
            budgets.len()
        ));
    }
    out
}

fn frontier_of(profiles: &[BudgetProfile], on: BudgetFlops) -> Option<Frontier> {
    let ok: Vec<&BudgetProfile> = profiles.iter().filter(|p| p.refused.is_none()).collect();
    if ok.len() < 2 {
        return None;
    }
    let c: Vec<f64> = ok
        .iter()
        .map(|p| match on {
            BudgetFlops::Mean => p.flops,
            BudgetFlops::Nominal => p.budget,
        })
        .collect();
    let n: Vec<f64> = ok
        .iter()
        .map(|p| p.optimal_params.expect("accepted"))
        .collect();
    let d: Vec<f64> = ok
        .iter()
        .map(|p| p.optimal_tokens.expect("accepted"))
        .collect();
    Frontier::fit(&c, &n, &d)
}

/// Fits IsoFLOP profiles and the frontier across them.
///
/// # Errors
/// [`FitError::Unsupported`] when fewer than two budgets yield a usable parabola (a single
/// budget cannot give an exponent); [`FitError::InvalidOption`] for `min_runs` below 3.
///
/// # Example
/// ```
/// use isoflop_fit::{fit_isoflop, synthetic, IsoFlopOptions, ParametricLaw};
/// // Nine sizes around the optimum at each of four budgets, drawn from Epoch's law.
/// let law = ParametricLaw::EPOCH_2024;
/// let points = synthetic::isoflop_points(&law, &[1e18, 1e19, 1e20, 1e21], 0.0, 0);
/// let boot = isoflop_fit::stats::Bootstrap { resamples: 0, ..Default::default() };
/// let opts = IsoFlopOptions { boot, ..Default::default() };
/// let fit = fit_isoflop(&points, &opts).unwrap();
/// assert_eq!(fit.budgets.len(), 4);
/// // The parabolas' vertices follow the law's own frontier, N_opt ~ C^a.
/// assert!((fit.frontier.params_exponent - law.params_exponent()).abs() < 0.01);
/// ```
pub fn fit_isoflop(points: &[Observation], opts: &IsoFlopOptions) -> Result<IsoFlopFit, FitError> {
    if opts.min_runs < 3 {
        return Err(FitError::InvalidOption(format!(
            "min_runs must be at least 3, got {}",
            opts.min_runs
        )));
    }
    let (groups, nominal) = assign(points, &opts.grouping);
    let budgets = profiles(points, &groups, &nominal, opts, true);
    let mut warnings = refusal_warnings(&budgets, opts.min_runs);
    let unassigned = groups.iter().filter(|g| g.is_none()).count();
    if unassigned > 0 {
        warnings.push(format!(
            "Approach 2: {unassigned} runs lie near no nominal budget and are not used"
        ));
    }
    let accepted = budgets.iter().filter(|b| b.refused.is_none()).count();
    let Some(frontier) = frontier_of(&budgets, opts.budget_flops) else {
        return Err(FitError::Unsupported {
            approach: NAME,
            reason: format!(
                "{} budget(s) found, {accepted} with a usable parabola; fitting an exponent needs at least 2",
                budgets.len()
            ),
        });
    };
    let mut fit = IsoFlopFit {
        budgets,
        frontier,
        intervals: None,
        samples: Vec::new(),
        warnings,
    };
    if opts.boot.resamples > 0 {
        let units = clusters(points.iter().map(|p| p.params), opts.boot.unit);
        let samples: Vec<Frontier> =
            bootstrap_clusters(&units, opts.boot.resamples, opts.boot.seed, |idx| {
                let pts: Vec<Observation> = idx.iter().map(|&i| points[i].clone()).collect();
                let g: Vec<Option<usize>> = idx.iter().map(|&i| groups[i]).collect();
                // The vertices' own intervals are not needed here: skipped.
                frontier_of(
                    &profiles(&pts, &g, &nominal, opts, false),
                    opts.budget_flops,
                )
            })
            .into_iter()
            .flatten()
            .collect();
        if samples.len() < opts.boot.resamples {
            fit.warnings.push(format!(
                "Approach 2 bootstrap: {} of {} resamples left fewer than 2 usable budgets and are left out",
                opts.boot.resamples - samples.len(),
                opts.boot.resamples
            ));
        }
        fit.intervals = FrontierIntervals::from_samples(
            &samples,
            opts.boot.resamples,
            opts.boot.seed,
            opts.boot.level,
        );
        fit.samples = samples;
    }
    Ok(fit)
}

mod grouping;
use grouping::assign;
pub use grouping::{Grouping, TOL_DECADES};

#[cfg(test)]
mod tests;
