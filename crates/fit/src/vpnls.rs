//! Variable projection for Approach 3 (`--solver vpnls`, after Open Athena's vpnls).
//!
//! For fixed exponents (alpha, beta) the law L = E + A N^-alpha + B D^-beta is linear in
//! (E, A, B). The projection solves them, non-negative, by least squares on the linearised
//! log residual (ln L_fit - ln L ~ (L_fit - L) / L, so each point weighs 1 / L^2),
//! iteratively reweighted for the Huber loss (a point whose log residual r exceeds delta
//! weighs delta / |r|). Three unknowns make the non-negative problem small enough to solve
//! exactly: every subset of (E, A, B) left free is solved, and the best feasible solution is
//! the optimum. What remains is a search in two dimensions, with no start points:
//!
//! 1. the profile objective (the paper's objective at the projected (E, A, B)) on a grid of
//!    alpha and beta, 0.05 to 2.5 in steps of 0.05;
//! 2. each of the grid's best local minima (at most [`POLISHED`]) refined by a pattern
//!    search in (alpha, beta), the step halved from 0.025 to 1e-3 (on the grid a
//!    projection stops after 3 rounds of reweighting, enough to tell basins apart; in the
//!    refinement after at most 30);
//! 3. each refined point polished by L-BFGS on the paper's objective in all five
//!    parameters (the caller's [`crate::lbfgs`] run), so the optimum is the paper's, not the
//!    linearisation's.
//!
//! The projection is exact for a law with no noise: there the residuals vanish, and the
//! linearisation with them.

use crate::forms::huber;
use isoflop_core::Observation;
use rayon::prelude::*;

/// The grid's local minima refined and polished, best first.
pub const POLISHED: usize = 4;

/// The exponents the grid searches: 0.05 to 2.5 in steps of 0.05.
fn exponents() -> Vec<f64> {
    (1..=50).map(|k| 0.05 * k as f64).collect()
}

/// The points in the form the projection uses.
struct Points {
    ln_n: Vec<f64>,
    ln_d: Vec<f64>,
    loss: Vec<f64>,
    ln_loss: Vec<f64>,
}

/// A projection: the non-negative (E, A, B) for one (alpha, beta), and the paper's objective
/// there.
#[derive(Clone, Copy, Debug)]
pub struct Projected {
    /// alpha, beta.
    pub exponents: [f64; 2],
    /// E, A, B (each at least 0).
    pub coefficients: [f64; 3],
    /// The sum of Huber losses of the log residuals.
    pub objective: f64,
}

impl Projected {
    /// The start x = (ln_a, ln_b, ln_e, alpha, beta) for the polish; a coefficient the
    /// projection set to zero starts at `floor` (its logarithm would be minus infinity).
    pub fn start(&self, floor: f64) -> [f64; 5] {
        let [e, a, b] = self.coefficients;
        let ln = |c: f64| c.max(floor).ln();
        [ln(a), ln(b), ln(e), self.exponents[0], self.exponents[1]]
    }
}

/// What the search did.
#[derive(Clone, Debug)]
pub struct Search {
    /// The refined points to polish, best first (at most [`POLISHED`]).
    pub refined: Vec<Projected>,
    /// Projections solved.
    pub projections: usize,
}

/// Solves the 3 x 3 system `m c = r` restricted to the unknowns in `free` (a bit mask);
/// `None` where that block is singular.
fn solve_free(m: &[[f64; 3]; 3], r: &[f64; 3], free: u8) -> Option<[f64; 3]> {
    let idx: Vec<usize> = (0..3).filter(|k| free & (1 << k) != 0).collect();
    let k = idx.len();
    let mut a = [[0.0f64; 4]; 3];
    for (i, &p) in idx.iter().enumerate() {
        for (j, &q) in idx.iter().enumerate() {
            a[i][j] = m[p][q];
        }
        a[i][k] = r[p];
    }
    // Gaussian elimination with partial pivoting on the k x k block.
    for col in 0..k {
        let piv = (col..k).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[piv][col].abs() < 1e-12 * m[idx[col]][idx[col]].abs().max(f64::MIN_POSITIVE) {
            return None;
        }
        a.swap(col, piv);
        for row in 0..k {
            if row != col {
                let f = a[row][col] / a[col][col];
                for c in col..=k {
                    a[row][c] -= f * a[col][c];
                }
            }
        }
    }
    let mut c = [0.0; 3];
    for (i, &p) in idx.iter().enumerate() {
        c[p] = a[i][k] / a[i][i];
    }
    Some(c)
}

/// The non-negative least-squares solution of the normal equations `m c = r` of three
/// unknowns: the best of the solutions with each subset of them free that are all
/// non-negative (the optimum is one of them).
fn nnls3(m: &[[f64; 3]; 3], r: &[f64; 3]) -> [f64; 3] {
    let mut best = ([0.0; 3], 0.0);
    for free in 1u8..8 {
        let Some(c) = solve_free(m, r, free) else {
            continue;
        };
        if c.iter().any(|&x| x < 0.0) {
            continue;
        }
        // The quadratic 1/2 c'Mc - r'c at its free optimum is -1/2 r'c.
        let q = -0.5 * (0..3).map(|k| r[k] * c[k]).sum::<f64>();
        if q < best.1 {
            best = (c, q);
        }
    }
    best.0
}

impl Points {
    fn new(points: &[Observation]) -> Self {
        Points {
            ln_n: points.iter().map(|p| p.params.ln()).collect(),
            ln_d: points.iter().map(|p| p.tokens.ln()).collect(),
            loss: points.iter().map(|p| p.loss).collect(),
            ln_loss: points.iter().map(|p| p.loss.ln()).collect(),
        }
    }

    /// The projection at (alpha, beta): IRLS for the Huber loss, at most `rounds` rounds,
    /// ended when no point's weight moves by more than 1e-6.
    fn project(&self, alpha: f64, beta: f64, delta: f64, rounds: usize) -> Projected {
        let (u, v) = (self.powers_n(alpha), self.powers_d(beta));
        self.project_on(&u, &v, [alpha, beta], delta, rounds)
    }

    /// N^-alpha of every point.
    fn powers_n(&self, alpha: f64) -> Vec<f64> {
        self.ln_n.iter().map(|x| (-alpha * x).exp()).collect()
    }

    /// D^-beta of every point.
    fn powers_d(&self, beta: f64) -> Vec<f64> {
        self.ln_d.iter().map(|x| (-beta * x).exp()).collect()
    }

    /// [`Points::project`] given the powers `u` = N^-alpha and `v` = D^-beta of the
    /// `exponents` (the grid computes each exponent's powers once, not once a pair).
    fn project_on(
        &self,
        u: &[f64],
        v: &[f64],
        exponents: [f64; 2],
        delta: f64,
        rounds: usize,
    ) -> Projected {
        let n = self.loss.len();
        let mut h = vec![1.0f64; n];
        let mut c = [0.0f64; 3];
        // The paper's objective at the latest c, summed in the pass that reweights.
        let mut objective = f64::INFINITY;
        for _ in 0..rounds {
            let mut m = [[0.0f64; 3]; 3];
            let mut r = [0.0f64; 3];
            for i in 0..n {
                let w = h[i] / (self.loss[i] * self.loss[i]);
                let col = [1.0, u[i], v[i]];
                for p in 0..3 {
                    r[p] += w * col[p] * self.loss[i];
                    for q in 0..3 {
                        m[p][q] += w * col[p] * col[q];
                    }
                }
            }
            // Columns scaled to unit weighted size, for the conditioning of the 3 x 3 system.
            let s: [f64; 3] = std::array::from_fn(|k| m[k][k].sqrt().max(f64::MIN_POSITIVE));
            let ms: [[f64; 3]; 3] =
                std::array::from_fn(|p| std::array::from_fn(|q| m[p][q] / (s[p] * s[q])));
            let rs: [f64; 3] = std::array::from_fn(|p| r[p] / s[p]);
            let cs = nnls3(&ms, &rs);
            c = std::array::from_fn(|k| cs[k] / s[k]);
            let mut moved = 0.0f64;
            objective = 0.0;
            for i in 0..n {
                let fit = c[0] + c[1] * u[i] + c[2] * v[i];
                let res = fit.ln() - self.ln_loss[i];
                objective += huber(res, delta);
                let w = if res.abs() <= delta || !res.is_finite() {
                    1.0
                } else {
                    delta / res.abs()
                };
                moved = moved.max((w - h[i]).abs());
                h[i] = w;
            }
            if moved <= 1e-6 {
                break;
            }
        }
        Projected {
            exponents,
            coefficients: c,
            objective: if objective.is_finite() {
                objective
            } else {
                f64::INFINITY
            },
        }
    }
}

/// IRLS rounds of a projection on the grid (enough to tell the basins apart) and in the
/// refinement.
const GRID_ROUNDS: usize = 3;
const REFINE_ROUNDS: usize = 30;

/// Pattern search in (alpha, beta) from `p`, the step halved from 0.025 to 1e-3 whenever
/// no neighbour improves (the polish on the paper's objective goes on from there); counts
/// its projections in `count`.
fn refine(pts: &Points, p: Projected, delta: f64, count: &mut usize) -> Projected {
    let mut best = pts.project(p.exponents[0], p.exponents[1], delta, REFINE_ROUNDS);
    *count += 1;
    let mut step = 0.025;
    while step >= 1e-3 {
        let mut moved = false;
        for (da, db) in [
            (1.0, 0.0),
            (-1.0, 0.0),
            (0.0, 1.0),
            (0.0, -1.0),
            (1.0, 1.0),
            (-1.0, -1.0),
            (1.0, -1.0),
            (-1.0, 1.0),
        ] {
            let (a, b) = (best.exponents[0] + da * step, best.exponents[1] + db * step);
            if a <= 0.0 || b <= 0.0 {
                continue;
            }
            let q = pts.project(a, b, delta, REFINE_ROUNDS);
            *count += 1;
            if q.objective < best.objective {
                best = q;
                moved = true;
            }
        }
        if !moved {
            step /= 2.0;
        }
    }
    best
}

/// The search: the profile objective on the grid, its best local minima refined.
pub fn search(points: &[Observation], delta: f64) -> Search {
    let pts = Points::new(points);
    let ex = exponents();
    let k = ex.len();
    let un: Vec<Vec<f64>> = ex.iter().map(|&a| pts.powers_n(a)).collect();
    let vd: Vec<Vec<f64>> = ex.iter().map(|&b| pts.powers_d(b)).collect();
    let grid: Vec<Projected> = (0..k * k)
        .into_par_iter()
        .map(|i| {
            let (a, b) = (i / k, i % k);
            pts.project_on(&un[a], &vd[b], [ex[a], ex[b]], delta, GRID_ROUNDS)
        })
        .collect();
    let mut projections = grid.len();
    let at = |i: usize, j: usize| grid[i * k + j].objective;
    // Local minima of the grid: no neighbour lower.
    let mut minima: Vec<Projected> = Vec::new();
    for i in 0..k {
        for j in 0..k {
            let f = at(i, j);
            if !f.is_finite() {
                continue;
            }
            let lowest = (-1i64..=1).all(|di| {
                (-1i64..=1).all(|dj| {
                    let (p, q) = (i as i64 + di, j as i64 + dj);
                    if (di, dj) == (0, 0) || p < 0 || q < 0 || p >= k as i64 || q >= k as i64 {
                        return true;
                    }
                    at(p as usize, q as usize) >= f
                })
            });
            if lowest {
                minima.push(grid[i * k + j]);
            }
        }
    }
    minima.sort_by(|a, b| a.objective.total_cmp(&b.objective));
    minima.truncate(POLISHED);
    let refined: Vec<(Projected, usize)> = minima
        .into_par_iter()
        .map(|p| {
            let mut count = 0;
            (refine(&pts, p, delta, &mut count), count)
        })
        .collect();
    projections += refined.iter().map(|r| r.1).sum::<usize>();
    let mut refined: Vec<Projected> = refined.into_iter().map(|r| r.0).collect();
    refined.sort_by(|a, b| a.objective.total_cmp(&b.objective));
    Search {
        refined,
        projections,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_unknowns_non_negative_least_squares_is_the_best_feasible_subset() {
        // Unconstrained optimum (1, -1, 2): the constrained one sets the second to zero and
        // refits the others, which brute force over a fine grid confirms.
        let cols = |i: usize| {
            let x = i as f64 / 10.0;
            [1.0, x, x * x]
        };
        let y = |i: usize| {
            let c = cols(i);
            c[0] - c[1] + 2.0 * c[2] + 0.01 * (i as f64).sin()
        };
        let mut m = [[0.0; 3]; 3];
        let mut r = [0.0; 3];
        for i in 0..20 {
            let c = cols(i);
            for p in 0..3 {
                r[p] += c[p] * y(i);
                for q in 0..3 {
                    m[p][q] += c[p] * c[q];
                }
            }
        }
        let c = nnls3(&m, &r);
        assert!(c.iter().all(|&x| x >= 0.0), "{c:?}");
        let sse = |c: [f64; 3]| {
            (0..20)
                .map(|i| {
                    let k = cols(i);
                    (k[0] * c[0] + k[1] * c[1] + k[2] * c[2] - y(i)).powi(2)
                })
                .sum::<f64>()
        };
        let mut brute = f64::INFINITY;
        for a in 0..=300 {
            for b in 0..=50 {
                for e in 0..=300 {
                    let t = [a as f64 * 0.01, b as f64 * 0.01, e as f64 * 0.01];
                    brute = brute.min(sse(t));
                }
            }
        }
        assert!(sse(c) <= brute + 1e-12, "{} vs {brute}", sse(c));
        assert!(c[1] == 0.0, "{c:?}");
    }

    #[test]
    fn the_projection_of_a_noiseless_law_at_its_exponents_is_the_law() {
        let law = crate::synthetic::TRUTH;
        let mut points = Vec::new();
        for n in [1e7, 3e7, 1e8, 3e8, 1e9] {
            for d in [1e9, 3e9, 1e10, 3e10] {
                points.push(crate::synthetic::point(n, d, law.loss(n, d)));
            }
        }
        let p = Points::new(&points).project(law.alpha, law.beta, 1e-3, REFINE_ROUNDS);
        let [e, a, b] = p.coefficients;
        assert!((e / law.e - 1.0).abs() < 1e-9, "{e}");
        assert!((a / law.a - 1.0).abs() < 1e-7, "{a}");
        assert!((b / law.b - 1.0).abs() < 1e-7, "{b}");
        assert!(p.objective < 1e-20, "{}", p.objective);
        // The search finds the exponents without a start.
        let s = search(&points, 1e-3);
        let best = s.refined[0];
        assert!((best.exponents[0] - law.alpha).abs() < 2e-3, "{best:?}");
        assert!((best.exponents[1] - law.beta).abs() < 2e-3, "{best:?}");
    }
}
