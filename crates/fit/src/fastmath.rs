//! Branch-free `exp` and `ln` that the compiler can vectorise, for the Approach 3 objective's
//! inner loop (three exponentials and one logarithm per point per evaluation).
//!
//! Accuracy: within a few ulp of `f64::exp` and `f64::ln` on the ranges used (checked in the
//! tests below); `exp` clamps its argument to [-708, 709], so it returns about 3e-308 instead
//! of 0 for arguments below -708, which is harmless in a sum with a term equal to 1.

#[allow(clippy::excessive_precision)]
const LN2_HI: f64 = 6.931_471_803_691_238_164_90e-01;
#[allow(clippy::excessive_precision)]
const LN2_LO: f64 = 1.908_214_929_270_587_700_02e-10;
const INV_LN2: f64 = std::f64::consts::LOG2_E;

/// p * r + c, fused (one rounding) where the caller is compiled with FMA, else plain.
#[inline(always)]
fn madd<const FMA: bool>(p: f64, r: f64, c: f64) -> f64 {
    if FMA {
        p.mul_add(r, c)
    } else {
        p * r + c
    }
}

/// e^x: see [`exp_with`].
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    exp_with::<false>(x)
}

/// ln x: see [`ln_with`].
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    ln_with::<false>(x)
}

/// e^x by Cody-Waite reduction x = k ln 2 + r, |r| <= ln2/2, and a degree-13 Taylor
/// polynomial for e^r (truncation error below 1e-17 relative). `FMA` fuses the polynomial's
/// multiply-adds: only for code compiled with the `fma` target feature (elsewhere `mul_add`
/// is a slow library call).
#[inline(always)]
pub fn exp_with<const FMA: bool>(x: f64) -> f64 {
    let x = x.clamp(-708.0, 709.0);
    let k = (x * INV_LN2).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    // Horner on 1/13!, ..., 1/1!, 1.
    let mut p: f64 = 1.0 / 6_227_020_800.0;
    p = madd::<FMA>(p, r, 1.0 / 479_001_600.0);
    p = madd::<FMA>(p, r, 1.0 / 39_916_800.0);
    p = madd::<FMA>(p, r, 1.0 / 3_628_800.0);
    p = madd::<FMA>(p, r, 1.0 / 362_880.0);
    p = madd::<FMA>(p, r, 1.0 / 40_320.0);
    p = madd::<FMA>(p, r, 1.0 / 5_040.0);
    p = madd::<FMA>(p, r, 1.0 / 720.0);
    p = madd::<FMA>(p, r, 1.0 / 120.0);
    p = madd::<FMA>(p, r, 1.0 / 24.0);
    p = madd::<FMA>(p, r, 1.0 / 6.0);
    p = madd::<FMA>(p, r, 0.5);
    p = madd::<FMA>(p, r, 1.0);
    p = madd::<FMA>(p, r, 1.0);
    // 2^k without a float-to-integer conversion (which AVX2 lacks for f64 lanes): adding
    // 1.5 * 2^52 puts k, as a two's-complement integer, in the low mantissa bits.
    let shifted = (k + 6_755_399_441_055_744.0).to_bits();
    let scale = f64::from_bits(shifted.wrapping_add(1023) << 52);
    p * scale
}

/// ln x for positive normal x: x = 2^k m with m in [sqrt(1/2), sqrt(2)), then
/// ln m = 2 atanh(z), z = (m - 1)/(m + 1), |z| <= 0.1716, by its series to z^23.
#[inline(always)]
pub fn ln_with<const FMA: bool>(x: f64) -> f64 {
    let bits = x.to_bits();
    // The biased exponent as a float without an integer-to-float conversion: OR it into the
    // mantissa of 2^52 and subtract 2^52.
    let biased =
        f64::from_bits(0x4330_0000_0000_0000 | ((bits >> 52) & 0x7ff)) - 4_503_599_627_370_496.0;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    // Bring m from [1, 2) into [sqrt(1/2), sqrt(2)).
    let big = m > std::f64::consts::SQRT_2;
    m = if big { 0.5 * m } else { m };
    let k = biased - 1023.0 + if big { 1.0 } else { 0.0 };
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let mut p: f64 = 1.0 / 23.0;
    p = madd::<FMA>(p, z2, 1.0 / 21.0);
    p = madd::<FMA>(p, z2, 1.0 / 19.0);
    p = madd::<FMA>(p, z2, 1.0 / 17.0);
    p = madd::<FMA>(p, z2, 1.0 / 15.0);
    p = madd::<FMA>(p, z2, 1.0 / 13.0);
    p = madd::<FMA>(p, z2, 1.0 / 11.0);
    p = madd::<FMA>(p, z2, 1.0 / 9.0);
    p = madd::<FMA>(p, z2, 1.0 / 7.0);
    p = madd::<FMA>(p, z2, 1.0 / 5.0);
    p = madd::<FMA>(p, z2, 1.0 / 3.0);
    p = madd::<FMA>(p, z2, 1.0);
    k * LN2_HI + (2.0 * z * p + k * LN2_LO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f64, b: f64) -> f64 {
        ((a - b) / (b.abs() * f64::EPSILON)).abs()
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_std() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -700.0 + 1400.0 * i as f64 / 200_000.0;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        for i in 0..=100_000 {
            let x = -2.0 + 4.0 * i as f64 / 100_000.0;
            worst = worst.max(ulps(exp(x), x.exp()));
        }
        assert!(worst < 4.0, "worst {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn fused_versions_agree() {
        for i in 0..=1000 {
            let x = -30.0 + 60.0 * i as f64 / 1000.0;
            assert!(ulps(exp_with::<true>(x), x.exp()) < 4.0, "{x}");
            let y = 1.0 + 2.0 * i as f64 / 1000.0;
            assert!(
                (ln_with::<true>(y) - y.ln()).abs() < 4.0 * f64::EPSILON,
                "{y}"
            );
        }
    }

    #[test]
    fn ln_is_within_a_few_ulp_of_std() {
        let mut worst: f64 = 0.0;
        for i in 1..=300_000 {
            let x = 1.0 + 2.0 * i as f64 / 300_000.0; // the objective's range, [1, 3]
            let err = (ln(x) - x.ln()).abs() / f64::EPSILON;
            worst = worst.max(err);
        }
        for x in [1e-300, 1e-5, 0.3, 0.7, 0.9999999, 1.0, 7.0, 1e10, 1e300] {
            assert!(
                ulps(ln(x), x.ln()) < 4.0 || (ln(x) - x.ln()).abs() < 4.0 * f64::EPSILON,
                "{x}"
            );
        }
        // Absolute error in units of epsilon (ln is near 0 around 1).
        assert!(worst < 4.0, "worst {worst} eps");
    }
}
