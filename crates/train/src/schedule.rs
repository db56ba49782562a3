//! The learning-rate schedule: linear warm-up, then a cosine decay to `min_ratio` of the peak
//! that ends exactly at the run's last step (Hoffmann et al. 2022 found that a cosine cycle
//! longer than the run by more than 25% hurts, and decay the rate 10x).

/// Learning rate for step `step` (0-based) of `steps`.
pub fn learning_rate(step: u64, steps: u64, warmup: u64, peak: f64, min_ratio: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = steps.saturating_sub(warmup).max(1);
    let progress = ((step - warmup) as f64 / (span.max(2) - 1) as f64).min(1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    peak * (min_ratio + (1.0 - min_ratio) * cosine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_a_tenth_at_the_last_step() {
        let (steps, warmup, peak) = (1000, 100, 3e-3);
        assert!((learning_rate(0, steps, warmup, peak, 0.1) - 3e-5).abs() < 1e-15);
        assert!((learning_rate(99, steps, warmup, peak, 0.1) - peak).abs() < 1e-15);
        assert!((learning_rate(100, steps, warmup, peak, 0.1) - peak).abs() < 1e-15);
        assert!((learning_rate(999, steps, warmup, peak, 0.1) - 0.1 * peak).abs() < 1e-15);
        // Halfway through the decay the cosine is at its midpoint: (1 + 0.1) / 2 of the peak.
        let mid = learning_rate(100 + 450, steps, warmup, peak, 0.1);
        assert!((mid / peak - 0.55).abs() < 0.002, "{mid}");
        let mut prev = f64::INFINITY;
        for s in 100..1000 {
            let lr = learning_rate(s, steps, warmup, peak, 0.1);
            assert!(lr <= prev);
            prev = lr;
        }
    }
}
