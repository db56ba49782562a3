//! The viridis colour map (van der Walt and Smith, matplotlib; CC0), by linear interpolation
//! between nine of its colours.

const ANCHORS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 144, 141),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
];

/// The colour at t in [0, 1] (clamped): dark purple at 0, yellow at 1.
pub fn at(t: f64) -> (u8, u8, u8) {
    let t = t.clamp(0.0, 1.0) * (ANCHORS.len() - 1) as f64;
    let i = (t.floor() as usize).min(ANCHORS.len() - 2);
    let f = t - i as f64;
    let (a, b) = (ANCHORS[i], ANCHORS[i + 1]);
    let mix = |x: u8, y: u8| (x as f64 + f * (y as f64 - x as f64)).round() as u8;
    (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_and_lightness_rise() {
        assert_eq!(at(0.0), (68, 1, 84));
        assert_eq!(at(1.0), (253, 231, 37));
        // Perceptual: luminance rises monotonically along the map.
        let lum =
            |(r, g, b): (u8, u8, u8)| 0.2126 * r as f64 + 0.7152 * g as f64 + 0.0722 * b as f64;
        let mut prev = -1.0;
        for k in 0..=100 {
            let l = lum(at(k as f64 / 100.0));
            assert!(l > prev, "{k}");
            prev = l;
        }
    }
}
