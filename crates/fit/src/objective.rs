//! The Approach 3 objective in log space, x = (ln_a, ln_b, ln_e, alpha, beta):
//!
//! ```text
//! F(x) = sum_i Huber_delta( LSE(ln_a - alpha ln N_i, ln_b - beta ln D_i, ln_e) - ln L_i ),  delta = 1e-3
//! ```
//!
//! (Hoffmann et al. 2022, eq. 2 and Appendix D.2; Besiroglu et al. 2024), with the analytic
//! gradient. With w_k the softmax weights of the three LSE terms and
//! h = Huber'(r_i) = clamp(r_i, -delta, delta):
//!
//! ```text
//! dF/dln_a = sum h w1,  dF/dln_b = sum h w2,  dF/dln_e = sum h w3,
//! dF/dalpha = -sum h w1 ln N,  dF/dbeta = -sum h w2 ln D.
//! ```
//!
//! (the gradient is checked against central differences in this module's tests).
//!
//! The inner loop exists three ways ([`Kernel`]), chosen at run time.

use crate::fastmath;
#[cfg(target_arch = "x86_64")]
use crate::simd512;
use isoflop_core::Observation;

/// The Huber threshold used by Hoffmann et al. and Epoch.
pub const HUBER_DELTA: f64 = 1e-3;

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

    /// F(x) and its gradient, x = (ln_a, ln_b, ln_e, alpha, beta), by the objective's kernel
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::law::ParametricLaw;

    use crate::synthetic::grid_points as synthetic;

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
}
