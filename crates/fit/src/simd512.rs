//! The Approach 3 objective's inner loop in AVX-512 intrinsics: eight points per register.
//!
//! The same arithmetic as the portable kernel in [`crate::parametric`] (LSE shifted by e,
//! two exponentials and one logarithm per point, branch-free Huber), written by hand because
//! the compiler, asked to vectorise the portable loop eight lanes wide, kept it in 256-bit
//! halves with its accumulators on the stack (four times slower than four lanes in AVX2).
//! AVX-512 instructions replace the portable bit tricks (`scalef` multiplies by 2^k,
//! `getexp`/`getmant` split a number into exponent and mantissa), and small tables held in
//! registers (`vpermpd`) shorten the polynomials (see `exp8` and `ln8`).
//!
//! Accuracy: exp and ln within 4 ulp of `std` (tested below); the whole kernel agrees with
//! the portable ones to 1e-12 relative (tested in [`crate::parametric`]).

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

const LN2_HI: f64 = 6.931_471_803_691_238e-1;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;

/// True when this CPU can run [`accumulate`].
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// 2^(j/16), j = 0..15, correctly rounded.
const EXP2_SIXTEENTHS: [f64; 16] = [
    1.0,
    1.044_273_782_427_413_8,
    1.090_507_732_665_257_7,
    1.138_788_634_756_691_6,
    1.189_207_115_002_721,
    1.241_857_812_073_484,
    1.296_839_554_651_009_6,
    1.354_255_546_936_892_7,
    std::f64::consts::SQRT_2,
    1.476_826_145_939_499_3,
    1.542_210_825_407_940_7,
    1.610_490_331_949_254_3,
    1.681_792_830_507_429,
    1.756_252_160_373_299_5,
    1.834_008_086_409_342_4,
    1.915_206_561_397_147_4,
];

/// e^x by x = (16m + j) ln2/16 + r, |r| <= ln2/32: e^x = 2^m 2^(j/16) e^r, with 2^(j/16)
/// from a sixteen-entry table held in two registers and e^r by Taylor to degree 7, summed by
/// Estrin's scheme (first omitted term below 2e-18 relative). ln2_hi has 32 significant bits,
/// so k ln2_hi/16 is exact.
#[inline(always)]
unsafe fn exp8(x: __m512d) -> __m512d {
    let x = _mm512_min_pd(
        _mm512_max_pd(x, _mm512_set1_pd(-708.0)),
        _mm512_set1_pd(709.0),
    );
    let k = _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_pd(x, _mm512_set1_pd(16.0 * std::f64::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_pd(k, _mm512_set1_pd(LN2_HI / 16.0), x);
    let r = _mm512_fnmadd_pd(k, _mm512_set1_pd(LN2_LO / 16.0), r);
    // Estrin's scheme: (1 + r) + r^2 (1/2 + r/6) + r^4 ((1/24 + r/120) + r^2 (1/720 + r/5040)),
    // three dependent multiply-adds deep instead of Horner's seven.
    let set = |v: f64| _mm512_set1_pd(v);
    let r2 = _mm512_mul_pd(r, r);
    let a0 = _mm512_add_pd(set(1.0), r);
    let a1 = _mm512_fmadd_pd(r, set(1.0 / 6.0), set(0.5));
    let a2 = _mm512_fmadd_pd(r, set(1.0 / 120.0), set(1.0 / 24.0));
    let a3 = _mm512_fmadd_pd(r, set(1.0 / 5_040.0), set(1.0 / 720.0));
    let r4 = _mm512_mul_pd(r2, r2);
    let b0 = _mm512_fmadd_pd(r2, a1, a0);
    let b1 = _mm512_fmadd_pd(r2, a3, a2);
    let p = _mm512_fmadd_pd(r4, b1, b0);
    // j = k mod 16 sits in the low bits of k + 1.5 2^52; vpermt2pd reads only the low four.
    let idx = _mm512_castpd_si512(_mm512_add_pd(k, _mm512_set1_pd(6_755_399_441_055_744.0)));
    let lo = _mm512_loadu_pd(EXP2_SIXTEENTHS.as_ptr());
    let hi = _mm512_loadu_pd(EXP2_SIXTEENTHS.as_ptr().add(8));
    let t = _mm512_permutex2var_pd(lo, idx, hi);
    // 2^m with m = floor(k / 16): scalef takes the floor of its second operand.
    _mm512_scalef_pd(
        _mm512_mul_pd(p, t),
        _mm512_mul_pd(k, _mm512_set1_pd(0.0625)),
    )
}

/// The midpoints c_j = 1 + (j + 1/2)/8 of the eighths of [1, 2), and ln c_j correctly
/// rounded.
const LN_MIDPOINTS: [f64; 8] = [
    1.0625, 1.1875, 1.3125, 1.4375, 1.5625, 1.6875, 1.8125, 1.9375,
];
const LN_OF_MIDPOINTS: [f64; 8] = [
    0.060_624_621_816_434_84,
    0.171_850_256_926_659_23,
    0.271_933_715_483_641_76,
    0.362_905_493_689_368_5,
    0.446_287_102_628_419_53,
    0.523_248_143_764_547_9,
    0.594_707_107_746_692_8,
    0.661_398_482_245_365,
];

/// ln x for positive normal x: x = 2^k m, m in [1, 2); c the midpoint of m's eighth (the
/// mantissa's top three bits index an eight-entry table in one register); then
/// ln x = k ln 2 + ln c + 2 atanh(z), z = (m - c)/(m + c), |z| <= 1/33, by the series to
/// z^11 (first omitted term below 1e-19 relative).
#[inline(always)]
unsafe fn ln8(x: __m512d) -> __m512d {
    let m = _mm512_getmant_pd::<_MM_MANT_NORM_1_2, _MM_MANT_SIGN_SRC>(x);
    let k = _mm512_getexp_pd(x);
    let idx = _mm512_srli_epi64::<49>(_mm512_castpd_si512(m));
    let c = _mm512_permutexvar_pd(idx, _mm512_loadu_pd(LN_MIDPOINTS.as_ptr()));
    let ln_c = _mm512_permutexvar_pd(idx, _mm512_loadu_pd(LN_OF_MIDPOINTS.as_ptr()));
    let z = _mm512_div_pd(_mm512_sub_pd(m, c), _mm512_add_pd(m, c));
    let z2 = _mm512_mul_pd(z, z);
    const C: [f64; 6] = [1.0 / 11.0, 1.0 / 9.0, 1.0 / 7.0, 1.0 / 5.0, 1.0 / 3.0, 1.0];
    let mut p = _mm512_set1_pd(C[0]);
    for c in &C[1..] {
        p = _mm512_fmadd_pd(p, z2, _mm512_set1_pd(*c));
    }
    // k ln2_hi + (ln c + 2 z p + k ln2_lo)
    let two_z = _mm512_add_pd(z, z);
    let tail = _mm512_fmadd_pd(k, _mm512_set1_pd(LN2_LO), ln_c);
    let tail = _mm512_fmadd_pd(two_z, p, tail);
    _mm512_fmadd_pd(k, _mm512_set1_pd(LN2_HI), tail)
}

/// Chunks of eight points per pass of the loop: independent work for the out-of-order core
/// while one chunk waits on its polynomial chains (2: 0.36 us per evaluation of 234 points
/// on a Zen 5 core, against 0.42 us for 1; 3 is no faster, 4 spills registers).
const IN_FLIGHT: usize = 2;

/// The loop's constants, broadcast.
#[derive(Clone, Copy)]
struct Params {
    va: __m512d,
    vb: __m512d,
    valpha: __m512d,
    vbeta: __m512d,
    ve: __m512d,
    hi: __m512d,
    lo: __m512d,
    one: __m512d,
    half: __m512d,
}

/// Eight points (the lanes in `mask`) into the accumulators.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn chunk<const STABLE: bool>(
    p: &Params,
    cn: __m512d,
    cd: __m512d,
    cl: __m512d,
    mask: __mmask8,
    acc: &mut [__m512d; 6],
    top: &mut __m512d,
) {
    let (e1, e2, e3, s, r, guard) = if STABLE {
        // Shifted by each point's largest term: exact everywhere.
        let t1 = _mm512_fnmadd_pd(p.valpha, cn, p.va);
        let t2 = _mm512_fnmadd_pd(p.vbeta, cd, p.vb);
        let m = _mm512_max_pd(_mm512_max_pd(t1, t2), p.ve);
        let e1 = exp8(_mm512_sub_pd(t1, m));
        let e2 = exp8(_mm512_sub_pd(t2, m));
        let e3 = exp8(_mm512_sub_pd(p.ve, m));
        let s = _mm512_add_pd(_mm512_add_pd(e1, e2), e3);
        let r = _mm512_sub_pd(_mm512_add_pd(m, ln8(s)), cl);
        (e1, e2, e3, s, r, _mm512_set1_pd(f64::NEG_INFINITY))
    } else {
        // Shifted by e: u1 = a - alpha ln N - e, u2 = b - beta ln D - e.
        let u1 = _mm512_sub_pd(_mm512_fnmadd_pd(p.valpha, cn, p.va), p.ve);
        let u2 = _mm512_sub_pd(_mm512_fnmadd_pd(p.vbeta, cd, p.vb), p.ve);
        let e1 = exp8(u1);
        let e2 = exp8(u2);
        let s = _mm512_add_pd(_mm512_add_pd(p.one, e1), e2);
        let r = _mm512_sub_pd(_mm512_add_pd(p.ve, ln8(s)), cl);
        (e1, e2, p.one, s, r, _mm512_max_pd(u1, u2))
    };
    let dh = _mm512_min_pd(_mm512_max_pd(r, p.lo), p.hi);
    let h = _mm512_mul_pd(dh, _mm512_fnmadd_pd(p.half, dh, r));
    let k = _mm512_div_pd(dh, s);
    let w1 = _mm512_mul_pd(k, e1);
    let w2 = _mm512_mul_pd(k, e2);
    acc[0] = _mm512_mask_add_pd(acc[0], mask, acc[0], h);
    acc[1] = _mm512_mask_add_pd(acc[1], mask, acc[1], w1);
    acc[2] = _mm512_mask_add_pd(acc[2], mask, acc[2], w2);
    let w3 = if STABLE { _mm512_mul_pd(k, e3) } else { k };
    acc[3] = _mm512_mask_add_pd(acc[3], mask, acc[3], w3);
    acc[4] = _mm512_mask3_fnmadd_pd(w1, cn, acc[4], mask);
    acc[5] = _mm512_mask3_fnmadd_pd(w2, cd, acc[5], mask);
    *top = _mm512_mask_max_pd(*top, mask, *top, guard);
}

/// Sums over all points: [value, dF/da, dF/db, dF/de, dF/dalpha, dF/dbeta] and the largest
/// of t1 - e, t2 - e. With `STABLE` false the LSE is shifted by e (two exponentials per
/// point; the caller redoes the sum with `STABLE` true when the returned maximum reaches the
/// overflow limit); with `STABLE` true by each point's largest term (three exponentials,
/// exact everywhere, and the maximum returned is minus infinity).
///
/// # Safety
/// The CPU must support AVX-512F ([`available`]); the three slices must have equal lengths.
#[target_feature(enable = "avx512f")]
pub unsafe fn accumulate<const STABLE: bool>(
    ln_n: &[f64],
    ln_d: &[f64],
    ln_l: &[f64],
    x: &[f64; 5],
    delta: f64,
) -> ([f64; 6], f64) {
    debug_assert!(ln_n.len() == ln_d.len() && ln_d.len() == ln_l.len());
    let n = ln_n.len();
    let set = |v: f64| _mm512_set1_pd(v);
    let p = Params {
        va: set(x[0]),
        vb: set(x[1]),
        ve: set(x[2]),
        valpha: set(x[3]),
        vbeta: set(x[4]),
        hi: set(delta),
        lo: set(-delta),
        one: set(1.0),
        half: set(0.5),
    };
    let mut acc = [_mm512_setzero_pd(); 6];
    let mut top = _mm512_set1_pd(f64::NEG_INFINITY);
    let load = |i: usize, mask: __mmask8| {
        (
            _mm512_maskz_loadu_pd(mask, ln_n.as_ptr().add(i)),
            _mm512_maskz_loadu_pd(mask, ln_d.as_ptr().add(i)),
            _mm512_maskz_loadu_pd(mask, ln_l.as_ptr().add(i)),
        )
    };
    let mut i = 0;
    // Two independent chunks per pass, so that one's polynomial chains fill the other's gaps.
    while i + 8 * IN_FLIGHT <= n {
        for u in 0..IN_FLIGHT {
            let (cn, cd, cl) = load(i + 8 * u, 0xff);
            chunk::<STABLE>(&p, cn, cd, cl, 0xff, &mut acc, &mut top);
        }
        i += 8 * IN_FLIGHT;
    }
    while i < n {
        let mask: __mmask8 = if n - i >= 8 {
            0xff
        } else {
            (1u8 << (n - i)) - 1
        };
        let (cn, cd, cl) = load(i, mask);
        chunk::<STABLE>(&p, cn, cd, cl, mask, &mut acc, &mut top);
        i += 8;
    }
    let mut tot = [0.0; 6];
    for (t, v) in tot.iter_mut().zip(acc) {
        *t = _mm512_reduce_add_pd(v);
    }
    (tot, _mm512_reduce_max_pd(top))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[target_feature(enable = "avx512f")]
    unsafe fn map8(f: unsafe fn(__m512d) -> __m512d, xs: &[f64]) -> Vec<f64> {
        xs.chunks(8)
            .flat_map(|c| {
                let mut lane = [1.0; 8];
                lane[..c.len()].copy_from_slice(c);
                let mut out = [0.0; 8];
                _mm512_storeu_pd(out.as_mut_ptr(), f(_mm512_loadu_pd(lane.as_ptr())));
                out.into_iter().take(c.len())
            })
            .collect()
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn exp_lanes(x: __m512d) -> __m512d {
        exp8(x)
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn ln_lanes(x: __m512d) -> __m512d {
        ln8(x)
    }

    #[test]
    fn exp_and_ln_are_within_a_few_ulp_of_std() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        let xs: Vec<f64> = (0..=200_000)
            .map(|i| -700.0 + 1400.0 * i as f64 / 200_000.0)
            .chain((0..=100_000).map(|i| -2.0 + 4.0 * i as f64 / 100_000.0))
            .collect();
        // SAFETY: AVX-512F checked above.
        let ys = unsafe { map8(exp_lanes, &xs) };
        let worst = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| ((y - x.exp()) / (x.exp() * f64::EPSILON)).abs())
            .fold(0.0, f64::max);
        assert!(worst < 4.0, "exp: worst {worst} ulp");
        // ln on the objective's range [1, 3] (absolute error, ln is near 0 at 1) and beyond.
        let xs: Vec<f64> = (1..=300_000)
            .map(|i| 1.0 + 2.0 * i as f64 / 300_000.0)
            .chain([
                1e-300, 1e-5, 0.3, 0.75, 0.7499999, 1.4999999, 1.5, 7.0, 1e10, 1e300,
            ])
            .collect();
        // SAFETY: as above.
        let ys = unsafe { map8(ln_lanes, &xs) };
        for (x, y) in xs.iter().zip(&ys) {
            let err = (y - x.ln()).abs();
            assert!(
                err <= 4.0 * f64::EPSILON * x.ln().abs().max(1.0),
                "ln {x}: {y} vs {}",
                x.ln()
            );
        }
    }
}
