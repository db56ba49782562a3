//! Approach 3: the parametric loss L(N, D) = E + A/N^alpha + B/D^beta.
//!
//! ## Legend
//! N parameters, D tokens, C = 6ND FLOPs, L loss (nats). The fit works in log space with
//! x = (a, b, e, alpha, beta), where A = exp(a), B = exp(b), E = exp(e), and minimises
//!
//! ```text
//! F(x) = sum_i Huber_delta( LSE(a - alpha ln N_i, b - beta ln D_i, e) - ln L_i ),  delta = 1e-3
//! ```
//!
//! (Hoffmann et al. 2022, eq. 2 and Appendix D.2; Besiroglu et al. 2024), from every start of
//! a grid, by L-BFGS with the analytic gradient. With w_k the softmax weights of the three LSE
//! terms and h = Huber'(r_i) = clamp(r_i, -delta, delta):
//!
//! ```text
//! dF/da = sum h w1,  dF/db = sum h w2,  dF/de = sum h w3,
//! dF/dalpha = -sum h w1 ln N,  dF/dbeta = -sum h w2 ln D.
//! ```
//!
//! Minimising L subject to C = 6ND gives the closed form (the paper's eq. 4):
//! N_opt(C) = G (C/6)^a, D_opt(C) = G^-1 (C/6)^b, with a = beta/(alpha+beta),
//! b = alpha/(alpha+beta), G = (alpha A / (beta B))^(1/(alpha+beta)).

use crate::error::FitError;
use crate::fastmath;
use crate::lbfgs::{self, Options, Termination};
#[cfg(target_arch = "x86_64")]
use crate::simd512;
use crate::stats::{bootstrap, percentile_interval, Interval};
use isoflop_core::Observation;
use rayon::prelude::*;

/// The Huber threshold used by Hoffmann et al. and Epoch.
pub const HUBER_DELTA: f64 = 1e-3;

/// L(N, D) = E + A/N^alpha + B/D^beta.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParametricLaw {
    /// E, the irreducible loss (nats).
    #[serde(rename = "E")]
    pub e: f64,
    /// A, the parameter term's coefficient.
    #[serde(rename = "A")]
    pub a: f64,
    /// B, the data term's coefficient.
    #[serde(rename = "B")]
    pub b: f64,
    /// alpha, the parameter exponent.
    pub alpha: f64,
    /// beta, the data exponent.
    pub beta: f64,
}

impl ParametricLaw {
    /// Hoffmann et al. 2022, eq. 10, as printed: E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28.
    pub const CHINCHILLA: ParametricLaw = ParametricLaw {
        e: 1.69,
        a: 406.4,
        b: 410.7,
        alpha: 0.34,
        beta: 0.28,
    };
    /// The same fit with the unrounded exponents and E from the paper's source
    /// (alpha 0.33917, beta 0.28491, E 1.6934; A and B as printed). This is the law whose
    /// allocation at 5.76e23 FLOPs is about 40B parameters (the paper's Figure 4).
    pub const CHINCHILLA_UNROUNDED: ParametricLaw = ParametricLaw {
        e: 1.6934,
        a: 406.4,
        b: 410.7,
        alpha: 0.33917,
        beta: 0.28491,
    };
    /// Besiroglu et al. 2024 (Epoch AI), their published refit of the Chinchilla points:
    /// E 1.8172, A 482.01, B 2085.43, alpha 0.3478, beta 0.3658.
    pub const EPOCH_2024: ParametricLaw = ParametricLaw {
        e: 1.8172,
        a: 482.01,
        b: 2085.43,
        alpha: 0.3478,
        beta: 0.3658,
    };

    /// From log-space coordinates (a, b, e, alpha, beta).
    pub fn from_log(x: &[f64; 5]) -> Self {
        ParametricLaw {
            e: x[2].exp(),
            a: x[0].exp(),
            b: x[1].exp(),
            alpha: x[3],
            beta: x[4],
        }
    }

    /// To log-space coordinates (a, b, e, alpha, beta).
    pub fn to_log(&self) -> [f64; 5] {
        [self.a.ln(), self.b.ln(), self.e.ln(), self.alpha, self.beta]
    }

    /// Predicted loss of a model of `params` trained on `tokens`.
    pub fn loss(&self, params: f64, tokens: f64) -> f64 {
        self.e + self.a / params.powf(self.alpha) + self.b / tokens.powf(self.beta)
    }

    /// a = beta/(alpha+beta): N_opt grows as C^a.
    pub fn params_exponent(&self) -> f64 {
        self.beta / (self.alpha + self.beta)
    }

    /// b = alpha/(alpha+beta): D_opt grows as C^b.
    pub fn tokens_exponent(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }

    /// G = (alpha A / (beta B))^(1/(alpha+beta)).
    pub fn g(&self) -> f64 {
        (self.alpha * self.a / (self.beta * self.b)).powf(1.0 / (self.alpha + self.beta))
    }

    /// N_opt(C) = G (C/6)^a.
    pub fn optimal_params(&self, flops: f64) -> f64 {
        self.g() * (flops / 6.0).powf(self.params_exponent())
    }

    /// D_opt(C) = (C/6)^b / G.
    pub fn optimal_tokens(&self, flops: f64) -> f64 {
        (flops / 6.0).powf(self.tokens_exponent()) / self.g()
    }

    /// True when the law describes a loss that falls with both N and D.
    pub fn is_valid(&self) -> bool {
        [self.e, self.a, self.b, self.alpha, self.beta]
            .iter()
            .all(|v| v.is_finite() && *v > 0.0)
    }
}

/// The Approach 3 objective on a set of points, in log space.
///
/// Points are stored as three columns (ln N, ln D, ln L) so the inner loop vectorises. The
/// loop exists three ways ([`Kernel`]): AVX-512 intrinsics, the portable loop compiled for
/// AVX2 and FMA, and the portable loop as is; the fastest the CPU supports is chosen when the
/// objective is built.
#[derive(Clone, Debug)]
pub struct Objective {
    ln_n: Vec<f64>,
    ln_d: Vec<f64>,
    ln_l: Vec<f64>,
    delta: f64,
    kernel: Kernel,
}

const LANES: usize = 4;

/// Kernels for [`Objective::accumulate`].
const STABLE: u8 = 0;
const FAST: u8 = 1;
const FAST_FMA: u8 = 2;

/// Above this, exp(t - e) could overflow a sum of three terms: use the stable kernel.
const FAST_LIMIT: f64 = 700.0;

impl Objective {
    /// The objective over `points` with Huber threshold `delta`.
    pub fn new(points: &[Observation], delta: f64) -> Self {
        Objective {
            ln_n: points.iter().map(|p| p.params.ln()).collect(),
            ln_d: points.iter().map(|p| p.tokens.ln()).collect(),
            ln_l: points.iter().map(|p| p.loss.ln()).collect(),
            delta,
            kernel: Kernel::active(),
        }
    }

    /// The same objective evaluated by `kernel` (where this CPU supports it; else the
    /// portable loop).
    pub fn with_kernel(mut self, kernel: Kernel) -> Self {
        self.kernel = kernel.or_portable();
        self
    }

    /// The objective over the points at `idx` (a bootstrap resample).
    pub fn subset(&self, idx: &[usize]) -> Self {
        Objective {
            ln_n: idx.iter().map(|&i| self.ln_n[i]).collect(),
            ln_d: idx.iter().map(|&i| self.ln_d[i]).collect(),
            ln_l: idx.iter().map(|&i| self.ln_l[i]).collect(),
            delta: self.delta,
            kernel: self.kernel,
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.ln_n.len()
    }

    /// True when there are no points.
    pub fn is_empty(&self) -> bool {
        self.ln_n.is_empty()
    }

    /// F(x) and its gradient, x = (a, b, e, alpha, beta), by the objective's kernel
    /// ([`Kernel::active`] unless [`Objective::with_kernel`] chose another).
    #[inline]
    pub fn value_grad(&self, x: &[f64; 5], g: &mut [f64; 5]) -> f64 {
        // SAFETY: `self.kernel` was checked against the CPU when it was set.
        unsafe { self.value_grad_unchecked(self.kernel, x, g) }
    }

    /// F(x) and its gradient by `kernel`; a kernel this CPU cannot run falls back to the
    /// portable one.
    pub fn value_grad_by(&self, kernel: Kernel, x: &[f64; 5], g: &mut [f64; 5]) -> f64 {
        // SAFETY: `or_portable` returns a kernel this CPU supports.
        unsafe { self.value_grad_unchecked(kernel.or_portable(), x, g) }
    }

    /// # Safety
    /// The CPU must support `kernel` ([`Kernel::supported`]).
    #[inline]
    unsafe fn value_grad_unchecked(&self, kernel: Kernel, x: &[f64; 5], g: &mut [f64; 5]) -> f64 {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => self.value_grad_avx512(x, g),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => self.value_grad_avx2(x, g),
            _ => self.kernel::<false>(x, g),
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn value_grad_avx2(&self, x: &[f64; 5], g: &mut [f64; 5]) -> f64 {
        self.kernel::<true>(x, g)
    }

    /// The AVX-512 kernel ([`simd512`]), with the stable fallback.
    ///
    /// # Safety
    /// The CPU must support AVX-512F (`simd512::available()`).
    #[cfg(target_arch = "x86_64")]
    unsafe fn value_grad_avx512(&self, x: &[f64; 5], g: &mut [f64; 5]) -> f64 {
        // SAFETY: AVX-512F by this function's contract; the slices have equal lengths.
        let (l_n, l_d, l_l) = (&self.ln_n, &self.ln_d, &self.ln_l);
        let (mut tot, worst) =
            unsafe { simd512::accumulate::<false>(l_n, l_d, l_l, x, self.delta) };
        if !(worst < FAST_LIMIT) {
            // SAFETY: as above.
            tot = unsafe { simd512::accumulate::<true>(l_n, l_d, l_l, x, self.delta) }.0;
        }
        *g = [tot[1], tot[2], tot[3], tot[4], tot[5]];
        tot[0]
    }

    /// One point's contribution, LSE shifted by the point's maximum term: (Huber value,
    /// d/dLSE weights k e1, k e2, k e3).
    #[inline(always)]
    fn point(x: &[f64; 5], delta: f64, ln_n: f64, ln_d: f64, ln_l: f64) -> (f64, f64, f64, f64) {
        let [a, b, e, alpha, beta] = *x;
        let t1 = a - alpha * ln_n;
        let t2 = b - beta * ln_d;
        let m = t1.max(t2).max(e);
        let e1 = fastmath::exp(t1 - m);
        let e2 = fastmath::exp(t2 - m);
        let e3 = fastmath::exp(e - m);
        let s = e1 + e2 + e3;
        let r = m + fastmath::ln(s) - ln_l;
        // Huber: dh = clamp(r), h = dh (r - dh/2), which is r^2/2 inside and
        // delta (|r| - delta/2) outside, without a branch.
        let dh = r.clamp(-delta, delta);
        let h = dh * (r - 0.5 * dh);
        let k = dh / s;
        (h, k * e1, k * e2, k * e3)
    }

    /// One point's contribution with the LSE shifted by e, the same for every point:
    /// LSE = e + ln(1 + exp(t1 - e) + exp(t2 - e)). Two exponentials instead of three, and
    /// no per-point maximum; exact while t1 - e and t2 - e stay below [`FAST_LIMIT`] (the
    /// caller checks, and falls back to [`Objective::point`] otherwise).
    #[inline(always)]
    fn point_fast<const FMA: bool>(
        x: &[f64; 5],
        delta: f64,
        ln_n: f64,
        ln_d: f64,
        ln_l: f64,
    ) -> (f64, f64, f64, f64, f64) {
        let [a, b, e, alpha, beta] = *x;
        let u1 = a - alpha * ln_n - e;
        let u2 = b - beta * ln_d - e;
        let e1 = fastmath::exp_with::<FMA>(u1);
        let e2 = fastmath::exp_with::<FMA>(u2);
        let s = 1.0 + e1 + e2;
        let r = e + fastmath::ln_with::<FMA>(s) - ln_l;
        let dh = r.clamp(-delta, delta);
        let h = dh * (r - 0.5 * dh);
        let k = dh / s;
        (h, k * e1, k * e2, k, u1.max(u2))
    }

    /// One point by kernel `K`: [`STABLE`], [`FAST`] or [`FAST_FMA`]. A const, not a
    /// closure: closures do not inherit the caller's `target_feature`, and `mul_add` outside
    /// an FMA context is a library call.
    #[inline(always)]
    fn point_by<const K: u8>(
        x: &[f64; 5],
        delta: f64,
        n: f64,
        d: f64,
        l: f64,
    ) -> (f64, f64, f64, f64, f64) {
        match K {
            FAST_FMA => Self::point_fast::<true>(x, delta, n, d, l),
            FAST => Self::point_fast::<false>(x, delta, n, d, l),
            _ => {
                let (h, w1, w2, w3) = Self::point(x, delta, n, d, l);
                (h, w1, w2, w3, f64::NEG_INFINITY)
            }
        }
    }

    /// Sums kernel `K`'s point contributions over all points, in lanes the compiler
    /// vectorises: (value, the five gradient components) and the largest guard value.
    #[inline(always)]
    fn accumulate<const K: u8>(&self, x: &[f64; 5]) -> ([f64; 6], f64) {
        let delta = self.delta;
        let n = self.len();
        let full = n - n % LANES;
        let mut acc = [[0.0f64; LANES]; 6];
        let mut top = [f64::NEG_INFINITY; LANES];
        let (ln_n, ln_d, ln_l) = (&self.ln_n[..full], &self.ln_d[..full], &self.ln_l[..full]);
        for ((cn, cd), cl) in ln_n
            .chunks_exact(LANES)
            .zip(ln_d.chunks_exact(LANES))
            .zip(ln_l.chunks_exact(LANES))
        {
            for j in 0..LANES {
                let (h, w1, w2, w3, u) = Self::point_by::<K>(x, delta, cn[j], cd[j], cl[j]);
                acc[0][j] += h;
                acc[1][j] += w1;
                acc[2][j] += w2;
                acc[3][j] += w3;
                acc[4][j] -= w1 * cn[j];
                acc[5][j] -= w2 * cd[j];
                top[j] = top[j].max(u);
            }
        }
        let mut tot = [0.0f64; 6];
        for (t, a) in tot.iter_mut().zip(&acc) {
            *t = a.iter().sum();
        }
        let mut worst = top.iter().fold(f64::NEG_INFINITY, |m, v| m.max(*v));
        for i in full..n {
            let (h, w1, w2, w3, u) =
                Self::point_by::<K>(x, delta, self.ln_n[i], self.ln_d[i], self.ln_l[i]);
            tot[0] += h;
            tot[1] += w1;
            tot[2] += w2;
            tot[3] += w3;
            tot[4] -= w1 * self.ln_n[i];
            tot[5] -= w2 * self.ln_d[i];
            worst = worst.max(u);
        }
        (tot, worst)
    }

    #[inline(always)]
    fn kernel<const FMA: bool>(&self, x: &[f64; 5], g: &mut [f64; 5]) -> f64 {
        let (tot, worst) = if FMA {
            self.accumulate::<FAST_FMA>(x)
        } else {
            self.accumulate::<FAST>(x)
        };
        if !(worst < FAST_LIMIT) {
            return self.kernel_stable(x, g);
        }
        *g = [tot[1], tot[2], tot[3], tot[4], tot[5]];
        tot[0]
    }

    /// The objective with the LSE shifted by each point's own maximum: exact everywhere.
    #[inline(always)]
    fn kernel_stable(&self, x: &[f64; 5], g: &mut [f64; 5]) -> f64 {
        let (tot, _) = self.accumulate::<STABLE>(x);
        *g = [tot[1], tot[2], tot[3], tot[4], tot[5]];
        tot[0]
    }
}

/// Which inner loop evaluates the objective. All give the same values to rounding (tests
/// compare them); they differ in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kernel {
    /// AVX-512 intrinsics, eight points per register ([`crate::simd512`]).
    Avx512,
    /// The portable loop compiled with AVX2 and FMA, four points per register.
    Avx2Fma,
    /// The portable loop for any CPU.
    Portable,
}

impl Kernel {
    /// True when this CPU can run the kernel.
    pub fn supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => simd512::available(),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            Kernel::Portable => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// This kernel where the CPU supports it, else [`Kernel::Portable`].
    pub fn or_portable(self) -> Kernel {
        if self.supported() {
            self
        } else {
            Kernel::Portable
        }
    }

    /// The fastest kernel this CPU supports.
    pub fn detect() -> Kernel {
        [Kernel::Avx512, Kernel::Avx2Fma]
            .into_iter()
            .find(|k| k.supported())
            .unwrap_or(Kernel::Portable)
    }

    /// The kernel in use: `ISOFLOP_KERNEL` (`avx512`, `avx2`, `portable`; for benchmarks)
    /// where set and supported, else [`Kernel::detect`]. Decided once per process.
    pub fn active() -> Kernel {
        static ACTIVE: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *ACTIVE.get_or_init(|| {
            let asked = match std::env::var("ISOFLOP_KERNEL").as_deref() {
                Ok("avx512") => Some(Kernel::Avx512),
                Ok("avx2") => Some(Kernel::Avx2Fma),
                Ok("portable") => Some(Kernel::Portable),
                _ => None,
            };
            asked
                .filter(|k| k.supported())
                .unwrap_or_else(Kernel::detect)
        })
    }
}

/// A grid of starting points in log space (a, b, e, alpha, beta).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Grid {
    /// Values of alpha.
    pub alpha: Vec<f64>,
    /// Values of beta.
    pub beta: Vec<f64>,
    /// Values of e = ln E.
    pub e: Vec<f64>,
    /// Values of a = ln A.
    pub a: Vec<f64>,
    /// Values of b = ln B.
    pub b: Vec<f64>,
}

impl Grid {
    /// Hoffmann et al. 2022, Appendix D.2: alpha, beta in {0, 0.5, ..., 2}; e in
    /// {-1, -0.5, ..., 1}; a, b in {0, 5, ..., 25}: 4,500 starts.
    pub fn paper() -> Self {
        let r = |lo: f64, step: f64, n: usize| (0..n).map(|i| lo + step * i as f64).collect();
        Grid {
            alpha: r(0.0, 0.5, 5),
            beta: r(0.0, 0.5, 5),
            e: r(-1.0, 0.5, 5),
            a: r(0.0, 5.0, 6),
            b: r(0.0, 5.0, 6),
        }
    }

    /// All starts, looping alpha, beta, e, a, b (Epoch's order).
    pub fn starts(&self) -> Vec<[f64; 5]> {
        let mut v = Vec::with_capacity(self.len());
        for &al in &self.alpha {
            for &be in &self.beta {
                for &e in &self.e {
                    for &a in &self.a {
                        for &b in &self.b {
                            v.push([a, b, e, al, be]);
                        }
                    }
                }
            }
        }
        v
    }

    /// Number of starts.
    pub fn len(&self) -> usize {
        self.alpha.len() * self.beta.len() * self.e.len() * self.a.len() * self.b.len()
    }

    /// True when the grid has no starts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Settings of an Approach 3 fit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ParametricOptions {
    /// The Huber threshold (1e-3 in the paper).
    pub delta: f64,
    /// The starts.
    pub grid: Grid,
    /// The optimizer's tolerances.
    pub lbfgs: Options,
    /// A start "reached" the best objective when within this relative distance of it.
    pub reach_rtol: f64,
    /// Bootstrap resamples (0 for none).
    pub resamples: usize,
    /// Bootstrap seed.
    pub seed: u64,
    /// Interval coverage.
    pub level: f64,
    /// The objective's inner loop; `None`: [`Kernel::active`]. The results agree to
    /// rounding; only the speed differs.
    #[serde(default)]
    pub kernel: Option<Kernel>,
}

impl Default for ParametricOptions {
    fn default() -> Self {
        ParametricOptions {
            delta: HUBER_DELTA,
            grid: Grid::paper(),
            lbfgs: Options::default(),
            reach_rtol: 1e-6,
            resamples: 1000,
            seed: 0,
            level: 0.95,
            kernel: None,
        }
    }
}

/// What the optimizer did across the grid.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Diagnostics {
    /// Starts run.
    pub starts: usize,
    /// Starts whose L-BFGS run converged.
    pub converged_starts: usize,
    /// Starts that ended within `reach_rtol` of the best objective.
    pub reached_best: usize,
    /// Why the best start stopped.
    pub termination: Termination,
    /// Largest gradient component at the optimum.
    pub grad_max: f64,
    /// Iterations over all starts.
    pub iterations: usize,
    /// Objective evaluations over all starts.
    pub evaluations: usize,
    /// True when the best start converged and the law is valid (all parameters positive).
    pub converged: bool,
}

/// Bootstrap intervals for the law's parameters and derived quantities.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LawIntervals {
    /// Resamples requested.
    pub resamples: usize,
    /// Resamples whose refit converged to a valid law (the intervals use only these).
    pub usable: usize,
    /// The seed.
    pub seed: u64,
    /// E.
    #[serde(rename = "E")]
    pub e: Interval,
    /// A.
    #[serde(rename = "A")]
    pub a: Interval,
    /// B.
    #[serde(rename = "B")]
    pub b: Interval,
    /// alpha.
    pub alpha: Interval,
    /// beta.
    pub beta: Interval,
    /// a = beta/(alpha+beta).
    pub params_exponent: Interval,
    /// b = alpha/(alpha+beta).
    pub tokens_exponent: Interval,
    /// G.
    #[serde(rename = "G")]
    pub g: Interval,
}

/// The result of an Approach 3 fit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ParametricFit {
    /// The fitted law.
    pub law: ParametricLaw,
    /// Log-space optimum (a, b, e, alpha, beta).
    pub x: [f64; 5],
    /// The objective at the optimum.
    pub objective: f64,
    /// Points fitted.
    pub points: usize,
    /// a = beta/(alpha+beta).
    pub params_exponent: f64,
    /// b = alpha/(alpha+beta).
    pub tokens_exponent: f64,
    /// G.
    #[serde(rename = "G")]
    pub g: f64,
    /// Optimizer diagnostics.
    pub diagnostics: Diagnostics,
    /// Distinct local optima found from the grid, best first (at most 8).
    pub local_optima: Vec<([f64; 5], f64)>,
    /// Bootstrap intervals, when resamples were asked for.
    pub intervals: Option<LawIntervals>,
    /// Bootstrap laws (the usable ones), kept for prediction intervals.
    pub samples: Vec<ParametricLaw>,
    /// Warnings for the user.
    pub warnings: Vec<String>,
}

/// The best of a set of L-BFGS runs, with counts.
struct GridResult {
    best: lbfgs::Minimum<5>,
    converged: usize,
    reached: usize,
    iterations: usize,
    evaluations: usize,
    optima: Vec<([f64; 5], f64)>,
}

fn run_starts(
    obj: &Objective,
    starts: &[[f64; 5]],
    opts: &Options,
    reach_rtol: f64,
    parallel: bool,
) -> GridResult {
    let one = |x0: &[f64; 5]| lbfgs::minimize(|x, g| obj.value_grad(x, g), *x0, opts);
    let mins: Vec<lbfgs::Minimum<5>> = if parallel {
        starts.par_iter().map(one).collect()
    } else {
        starts.iter().map(one).collect()
    };
    // Best: converged runs first, then lowest objective (as Epoch keeps only successful runs).
    let best = *mins
        .iter()
        .filter(|m| m.f.is_finite())
        .min_by(|p, q| (!p.converged()).cmp(&!q.converged()).then(p.f.total_cmp(&q.f)))
        .unwrap_or(&mins[0]);
    let tol = reach_rtol * best.f.abs();
    let reached = mins.iter().filter(|m| (m.f - best.f).abs() <= tol).count();
    // Distinct local optima: converged runs, clustered by their parameters.
    let mut sorted: Vec<&lbfgs::Minimum<5>> = mins
        .iter()
        .filter(|m| m.converged() && m.f.is_finite())
        .collect();
    sorted.sort_by(|p, q| p.f.total_cmp(&q.f));
    let mut optima: Vec<([f64; 5], f64)> = Vec::new();
    for m in sorted {
        if optima.len() >= 8 {
            break;
        }
        let distinct = optima.iter().all(|(x, _)| {
            x.iter()
                .zip(&m.x)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f64::max)
                > 1e-3
        });
        if distinct {
            optima.push((m.x, m.f));
        }
    }
    GridResult {
        best,
        converged: mins.iter().filter(|m| m.converged()).count(),
        reached,
        iterations: mins.iter().map(|m| m.iterations).sum(),
        evaluations: mins.iter().map(|m| m.evaluations).sum(),
        optima,
    }
}

/// Fits the parametric law to final losses by the paper's procedure.
///
/// Bootstrap resamples refit from the full-data optimum and from any other distinct local
/// optimum of the grid whose objective is within 1.5x the best, not from the whole grid: the
/// resampled objective's minima lie near the full objective's, and this keeps a
/// 4,000-resample bootstrap in seconds (see docs/deviations.md).
///
/// # Errors
/// [`FitError::TooFewPoints`] with fewer than 6 points (five parameters need at least one
/// degree of freedom); [`FitError::InvalidOption`] for an empty grid or a non-positive delta.
pub fn fit_parametric(
    points: &[Observation],
    opts: &ParametricOptions,
) -> Result<ParametricFit, FitError> {
    const NAME: &str = "Approach 3";
    if points.len() < 6 {
        return Err(FitError::TooFewPoints {
            approach: NAME,
            have: points.len(),
            need: 6,
            why: "five parameters and one degree of freedom",
        });
    }
    for (what, v) in [
        ("model sizes N", points.iter().map(|p| p.params).collect::<Vec<_>>()),
        ("token counts D", points.iter().map(|p| p.tokens).collect()),
    ] {
        if crate::report::distinct(v.iter().copied()) < 2 {
            return Err(FitError::Unsupported {
                approach: NAME,
                reason: format!(
                    "every point has the same {what} ({:.4e}): the law's terms in N and D cannot be told apart; runs at two or more {what} are needed",
                    v[0]
                ),
            });
        }
    }
    if opts.grid.is_empty() {
        return Err(FitError::InvalidOption(
            "the grid of starts is empty".into(),
        ));
    }
    if !(opts.delta > 0.0) {
        return Err(FitError::InvalidOption(format!(
            "Huber delta must be positive, got {}",
            opts.delta
        )));
    }
    let obj = Objective::new(points, opts.delta);
    let obj = opts.kernel.map_or(obj.clone(), |k| obj.with_kernel(k));
    let starts = opts.grid.starts();
    let res = run_starts(&obj, &starts, &opts.lbfgs, opts.reach_rtol, true);
    let best = res.best;
    let law = ParametricLaw::from_log(&best.x);
    let mut warnings = Vec::new();
    if !best.converged() {
        warnings.push(format!(
            "Approach 3 did not converge: the best start stopped by {:?} at objective {:.6e}",
            best.termination, best.f
        ));
    }
    if !law.is_valid() {
        warnings.push(format!(
            "Approach 3: the best law has a non-positive exponent (alpha {:.4}, beta {:.4}); it does not describe a falling loss",
            law.alpha, law.beta
        ));
    }
    let diagnostics = Diagnostics {
        starts: starts.len(),
        converged_starts: res.converged,
        reached_best: res.reached,
        termination: best.termination,
        grad_max: best.grad_max,
        iterations: res.iterations,
        evaluations: res.evaluations,
        converged: best.converged() && law.is_valid(),
    };
    let mut fit = ParametricFit {
        law,
        x: best.x,
        objective: best.f,
        points: points.len(),
        params_exponent: law.params_exponent(),
        tokens_exponent: law.tokens_exponent(),
        g: law.g(),
        diagnostics,
        local_optima: res.optima.clone(),
        intervals: None,
        samples: Vec::new(),
        warnings,
    };
    if opts.resamples > 0 && fit.diagnostics.converged {
        // Refit from the optimum and from the other local optima whose full-data objective
        // is within 1.5x the best: competing basins, not the degenerate valleys (such as
        // E -> 0) that sit at twice the objective and more.
        let boot_starts: Vec<[f64; 5]> = res
            .optima
            .iter()
            .filter(|(_, f)| *f <= 1.5 * best.f)
            .map(|(x, _)| *x)
            .collect();
        let laws = bootstrap(obj.len(), opts.resamples, opts.seed, |idx| {
            let sub = obj.subset(idx);
            let r = run_starts(&sub, &boot_starts, &opts.lbfgs, opts.reach_rtol, false);
            let law = ParametricLaw::from_log(&r.best.x);
            (r.best.converged() && law.is_valid()).then_some(law)
        });
        let usable: Vec<ParametricLaw> = laws.into_iter().flatten().collect();
        if usable.len() < opts.resamples {
            fit.warnings.push(format!(
                "Approach 3 bootstrap: {} of {} resamples did not converge to a valid law and are left out of the intervals",
                opts.resamples - usable.len(),
                opts.resamples
            ));
        }
        fit.intervals = law_intervals(&usable, opts.resamples, opts.seed, opts.level);
        fit.samples = usable;
    }
    Ok(fit)
}

/// Percentile intervals of each parameter over bootstrap laws.
pub fn law_intervals(
    laws: &[ParametricLaw],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Option<LawIntervals> {
    let iv = |f: &dyn Fn(&ParametricLaw) -> f64| percentile_interval(laws.iter().map(f), level);
    Some(LawIntervals {
        resamples,
        usable: laws.len(),
        seed,
        e: iv(&|l| l.e)?,
        a: iv(&|l| l.a)?,
        b: iv(&|l| l.b)?,
        alpha: iv(&|l| l.alpha)?,
        beta: iv(&|l| l.beta)?,
        params_exponent: iv(&|l| l.params_exponent())?,
        tokens_exponent: iv(&|l| l.tokens_exponent())?,
        g: iv(&|l| l.g())?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use isoflop_core::Rng;

    fn pt(params: f64, tokens: f64, loss: f64) -> Observation {
        Observation {
            line: 0,
            run: None,
            step: None,
            params,
            tokens,
            flops: 6.0 * params * tokens,
            loss,
            budget: None,
        }
    }

    fn synthetic(law: &ParametricLaw, noise: f64, seed: u64) -> Vec<Observation> {
        let mut rng = Rng::new(seed);
        let mut v = Vec::new();
        for i in 0..8 {
            for j in 0..8 {
                let n = 1e7 * 10f64.powf(i as f64 * 0.4);
                let d = 1e8 * 10f64.powf(j as f64 * 0.4);
                v.push(pt(n, d, law.loss(n, d) * (noise * rng.normal()).exp()));
            }
        }
        v
    }

    #[test]
    fn analytic_gradient_matches_central_differences() {
        let law = ParametricLaw::CHINCHILLA;
        let pts = synthetic(&law, 0.01, 3);
        let obj = Objective::new(&pts, HUBER_DELTA);
        for x in [
            [6.0, 6.0, 0.5, 0.34, 0.28],
            [5.0, 7.5, 0.3, 0.5, 0.2],
            [0.0, 25.0, -1.0, 2.0, 0.0],
        ] {
            let mut g = [0.0; 5];
            obj.value_grad(&x, &mut g);
            for k in 0..5 {
                let h = 1e-6;
                let (mut xp, mut xm) = (x, x);
                xp[k] += h;
                xm[k] -= h;
                let mut tmp = [0.0; 5];
                let fd =
                    (obj.value_grad(&xp, &mut tmp) - obj.value_grad(&xm, &mut tmp)) / (2.0 * h);
                assert!(
                    (fd - g[k]).abs() <= 1e-6 * (1.0 + g[k].abs()),
                    "x {x:?} k {k}: fd {fd} analytic {}",
                    g[k]
                );
            }
        }
    }

    #[test]
    fn a_line_search_trial_far_out_stays_finite() {
        let pts = synthetic(&ParametricLaw::CHINCHILLA, 0.01, 4);
        let obj = Objective::new(&pts, HUBER_DELTA);
        // A line-search trial far out (t - e near 2,000) takes the stable path: finite.
        let mut g = [0.0; 5];
        let f = obj.value_grad(&[0.0, 0.0, -1.0, -100.0, 0.3], &mut g);
        assert!(
            f.is_finite() && g.iter().all(|v| v.is_finite()),
            "{f} {g:?}"
        );
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn avx512_shifted_and_stable_variants_agree() {
        if !simd512::available() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let pts = synthetic(&ParametricLaw::CHINCHILLA, 0.01, 5);
        let obj = Objective::new(&pts[..61], HUBER_DELTA);
        // Both variants directly, on a point where the shifted one is exact.
        let x = [6.0, 6.0, 0.5, 0.34, 0.28];
        let (l_n, l_d, l_l) = (&obj.ln_n, &obj.ln_d, &obj.ln_l);
        // SAFETY: AVX-512F checked above; equal lengths.
        let (fast, worst) = unsafe { simd512::accumulate::<false>(l_n, l_d, l_l, &x, HUBER_DELTA) };
        let (stable, none) = unsafe { simd512::accumulate::<true>(l_n, l_d, l_l, &x, HUBER_DELTA) };
        assert!(worst < FAST_LIMIT && none == f64::NEG_INFINITY);
        for k in 0..6 {
            assert!(
                (fast[k] - stable[k]).abs() <= 1e-12 * (1e-3 + stable[k].abs()),
                "{k}"
            );
        }
    }

    #[test]
    fn every_supported_kernel_agrees_with_the_stable_one() {
        // 61 points: the AVX-512 loop's full chunks and a masked tail of five.
        let pts = synthetic(&ParametricLaw::CHINCHILLA, 0.01, 6);
        let obj = Objective::new(&pts[..61], HUBER_DELTA);
        let mut ran = 0;
        for kernel in [Kernel::Avx512, Kernel::Avx2Fma, Kernel::Portable] {
            if !kernel.supported() {
                eprintln!("{kernel:?}: not supported by this CPU, skipped");
                continue;
            }
            ran += 1;
            for x in [
                [6.0, 6.0, 0.5, 0.34, 0.28],
                [25.0, 0.0, -1.0, 0.0, 2.0],
                [0.0, 25.0, 1.0, 2.0, 0.0],
                // t - e near 2,000: the stable fallback of each kernel.
                [2000.0, 6.0, 0.5, 0.0, 0.28],
            ] {
                let (mut g1, mut g2) = ([0.0; 5], [0.0; 5]);
                let f1 = obj.value_grad_by(kernel, &x, &mut g1);
                let f2 = obj.kernel_stable(&x, &mut g2);
                assert!(
                    (f1 - f2).abs() <= 1e-12 * f2.abs(),
                    "{kernel:?} {x:?}: {f1} vs {f2}"
                );
                for k in 0..5 {
                    assert!(
                        (g1[k] - g2[k]).abs() <= 1e-10 * (1.0 + g2[k].abs()),
                        "{kernel:?} {x:?} k {k}"
                    );
                }
            }
        }
        assert!(ran >= 1);
        assert!(Kernel::detect().supported() && Kernel::active().supported());
    }

    #[test]
    fn closed_form_equals_brute_force_along_the_isoflop_line() {
        for law in [
            ParametricLaw::CHINCHILLA,
            ParametricLaw::EPOCH_2024,
            ParametricLaw {
                e: 1.0,
                a: 50.0,
                b: 900.0,
                alpha: 0.6,
                beta: 0.2,
            },
        ] {
            for c in [1e18, 5.76e23, 1e26] {
                // Brute force: scan N on a fine log grid, D = C/(6N).
                let (mut best_n, mut best_l) = (0.0, f64::INFINITY);
                for k in 0..=200_000 {
                    let n = 10f64.powf(3.0 + 12.0 * k as f64 / 200_000.0);
                    let l = law.loss(n, c / (6.0 * n));
                    if l < best_l {
                        best_l = l;
                        best_n = n;
                    }
                }
                let n = law.optimal_params(c);
                assert!(
                    (n / best_n - 1.0).abs() < 2e-4,
                    "{law:?} C {c}: closed {n} brute {best_n}"
                );
                assert!((law.optimal_tokens(c) * n * 6.0 / c - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn presets_allocate_as_published() {
        // Hoffmann et al. Figure 4: about 40B parameters at Gopher's 5.76e23 FLOPs.
        let n = ParametricLaw::CHINCHILLA_UNROUNDED.optimal_params(5.76e23);
        assert!((n / 40e9 - 1.0).abs() < 0.03, "{n:e}");
        // Besiroglu et al. 2024: about 72B parameters and ~18 tokens per parameter... at that budget.
        let law = ParametricLaw::EPOCH_2024;
        let n = law.optimal_params(5.76e23);
        let d = law.optimal_tokens(5.76e23);
        assert!((n / 72e9 - 1.0).abs() < 0.03, "{n:e}");
        assert!((d / n - 18.0).abs() < 1.0, "{}", d / n);
    }

    #[test]
    fn recovers_a_known_law_from_noiseless_points() {
        let truth = crate::synthetic::TRUTH;
        let pts = synthetic(&truth, 0.0, 1);
        let opts = ParametricOptions {
            resamples: 0,
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
                resamples: 100,
                seed: 5,
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
}
