//! The learning-rate schedules. Every one warms up linearly, then:
//! - `cosine`: a cosine decay to `min_ratio` of the peak that ends exactly at the run's last
//!   step (Hoffmann et al. 2022 found that a cosine cycle longer than the run by more than
//!   25% hurts, and decay the rate 10x);
//! - `wsd`: the peak until the last `cooldown_frac` of the steps, then a cooldown to
//!   `min_ratio` of the peak at the last step, linear or 1 - sqrt in its progress (Hägele et
//!   al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations");
//! - `constant`: the peak to the end.

use isoflop_core::{CooldownShape, Schedule};

/// A run's schedule: everything the rate at a step depends on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    /// The shape after the warm-up.
    pub kind: Schedule,
    /// Optimizer steps in the run.
    pub steps: u64,
    /// Linear warm-up steps.
    pub warmup: u64,
    /// The peak rate.
    pub peak: f64,
    /// The final rate as a fraction of the peak (cosine and wsd).
    pub min_ratio: f64,
    /// The fraction of the steps a wsd schedule cools down over.
    pub cooldown_frac: f64,
    /// The wsd cooldown's shape.
    pub cooldown_shape: CooldownShape,
    /// A branch's first cooldown step: the trunk step it forked from (then `cooldown_frac`
    /// is not used).
    pub cooldown_from: Option<u64>,
}

impl LrSchedule {
    /// The schedule of a run's config.
    pub fn of(c: &isoflop_core::record::RunConfig) -> LrSchedule {
        LrSchedule {
            kind: c.schedule,
            steps: c.steps,
            warmup: c.warmup_steps,
            peak: c.lr,
            min_ratio: c.min_lr_ratio,
            cooldown_frac: c.cooldown_frac,
            cooldown_shape: c.cooldown_shape,
            cooldown_from: c.branch.as_ref().map(|b| b.step),
        }
    }

    /// The first step of a wsd cooldown: the last `cooldown_frac` of the steps (at least
    /// one step), never inside the warm-up.
    pub fn cooldown_start(&self) -> u64 {
        if let Some(s) = self.cooldown_from {
            return s;
        }
        let len = isoflop_core::settings::cooldown_steps(self.cooldown_frac, self.steps);
        self.steps.saturating_sub(len).max(self.warmup)
    }

    /// The learning rate at step `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        let (peak, floor) = (self.peak, self.min_ratio);
        if step < self.warmup {
            return peak * (step + 1) as f64 / self.warmup as f64;
        }
        // Progress through the decay: 0 at its first step, 1 at the run's last step.
        let progress = |from: u64| {
            let span = self.steps.saturating_sub(from).max(2) - 1;
            ((step - from) as f64 / span as f64).min(1.0)
        };
        match self.kind {
            Schedule::Constant => peak,
            Schedule::Cosine => {
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress(self.warmup)).cos());
                peak * (floor + (1.0 - floor) * cosine)
            }
            Schedule::Wsd => {
                let start = self.cooldown_start();
                if step < start {
                    return peak;
                }
                let p = progress(start);
                let left = match self.cooldown_shape {
                    CooldownShape::Linear => 1.0 - p,
                    CooldownShape::OneMinusSqrt => 1.0 - p.sqrt(),
                };
                peak * (floor + (1.0 - floor) * left)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(steps: u64, warmup: u64, peak: f64, min_ratio: f64) -> LrSchedule {
        LrSchedule {
            kind: Schedule::Cosine,
            steps,
            warmup,
            peak,
            min_ratio,
            cooldown_frac: 0.2,
            cooldown_shape: CooldownShape::OneMinusSqrt,
            cooldown_from: None,
        }
    }

    fn learning_rate(step: u64, steps: u64, warmup: u64, peak: f64, min_ratio: f64) -> f64 {
        cosine(steps, warmup, peak, min_ratio).at(step)
    }

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

#[cfg(test)]
mod wsd_tests {
    use super::*;

    fn wsd(shape: CooldownShape) -> LrSchedule {
        LrSchedule {
            kind: Schedule::Wsd,
            steps: 1000,
            warmup: 100,
            peak: 3e-3,
            min_ratio: 0.0,
            cooldown_frac: 0.2,
            cooldown_shape: shape,
            cooldown_from: None,
        }
    }

    #[test]
    fn wsd_holds_the_peak_then_cools_down_over_the_last_fifth_to_the_floor() {
        for shape in [CooldownShape::Linear, CooldownShape::OneMinusSqrt] {
            let s = wsd(shape);
            assert_eq!(s.cooldown_start(), 800);
            assert!((s.at(0) - 3e-5).abs() < 1e-15);
            for step in [100, 500, 799] {
                assert_eq!(s.at(step), 3e-3, "{shape:?} {step}");
            }
            assert_eq!(s.at(800), 3e-3);
            assert_eq!(s.at(999), 0.0);
            let mut prev = f64::INFINITY;
            for step in 800..1000 {
                assert!(s.at(step) <= prev);
                prev = s.at(step);
            }
        }
        // A quarter of the way through the cooldown (step 800 + 199/4): linear has 3/4 of
        // the peak left, 1 - sqrt has 1 - 1/2 = 1/2.
        let quarter: f64 = 800.0 + 199.0 / 4.0;
        let (lo, hi) = (quarter.floor() as u64, quarter.ceil() as u64);
        let lin = wsd(CooldownShape::Linear);
        let between = |s: &LrSchedule, want: f64| {
            let (a, b) = (s.at(lo) / 3e-3, s.at(hi) / 3e-3);
            assert!(a >= want - 1e-12 && b <= want + 1e-12, "{a} {want} {b}");
        };
        between(&lin, 0.75);
        between(&wsd(CooldownShape::OneMinusSqrt), 0.5);
        // A floor of 10%: the last step ends there.
        let floor = LrSchedule {
            min_ratio: 0.1,
            ..lin
        };
        assert!((floor.at(999) - 3e-4).abs() < 1e-15);
    }

    #[test]
    fn constant_holds_the_peak_after_the_warm_up_and_short_runs_stay_finite() {
        let c = LrSchedule {
            kind: Schedule::Constant,
            ..wsd(CooldownShape::Linear)
        };
        assert!((c.at(49) - 1.5e-3).abs() < 1e-15);
        assert_eq!(c.at(100), 3e-3);
        assert_eq!(c.at(999), 3e-3);
        // A cooldown longer than the steps after the warm-up starts at the warm-up's end.
        let short = LrSchedule {
            steps: 5,
            warmup: 1,
            cooldown_frac: 1.0,
            ..wsd(CooldownShape::Linear)
        };
        assert_eq!(short.cooldown_start(), 1);
        for step in 0..5 {
            assert!(short.at(step).is_finite() && short.at(step) >= 0.0);
        }
        assert_eq!(short.at(4), 0.0);
    }
}

#[cfg(test)]
mod branch_tests {
    use super::*;

    #[test]
    fn a_branch_holds_its_trunks_rate_to_the_branch_point_then_cools_down_like_wsd() {
        let trunk = LrSchedule {
            kind: Schedule::Constant,
            steps: 800,
            warmup: 50,
            peak: 1e-3,
            min_ratio: 0.1,
            cooldown_frac: 0.2,
            cooldown_shape: CooldownShape::OneMinusSqrt,
            cooldown_from: None,
        };
        let branch = LrSchedule {
            kind: Schedule::Wsd,
            steps: 1000,
            cooldown_from: Some(600),
            ..trunk
        };
        // The same run uninterrupted: wsd over 1000 steps, cooling down over the last 40%.
        let direct = LrSchedule {
            cooldown_from: None,
            cooldown_frac: 0.4,
            ..branch
        };
        assert_eq!(branch.cooldown_start(), 600);
        for step in 0..600 {
            assert_eq!(branch.at(step), trunk.at(step), "{step}");
        }
        for step in 0..1000 {
            assert_eq!(branch.at(step), direct.at(step), "{step}");
        }
        assert!((branch.at(999) - 1e-4).abs() < 1e-15);
    }
}
