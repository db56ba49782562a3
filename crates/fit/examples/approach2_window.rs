//! How the width of the IsoFLOP grid biases Approach 2, with and without a window around
//! each budget's minimum: four synthetic budgets (1e18 to 1e21) from a known law (no noise),
//! nine sizes each, centred on 20 tokens per parameter; the fitted exponent a against the
//! truth beta/(alpha+beta). Chose `isoflop::WINDOW_DECADES`; numbers in
//! docs/deviations.md. Run: cargo run --release -p isoflop-fit --example approach2_window
use isoflop_core::Observation;
use isoflop_fit::isoflop::{fit_isoflop, IsoFlopOptions};
use isoflop_fit::ParametricLaw;

fn grid(law: &ParametricLaw, width: f64) -> Vec<Observation> {
    noisy_grid(law, width, 0.0, 0)
}

/// Four budgets, nine sizes each, centred on 20 tokens per parameter as `isoflop plan` does.
fn noisy_grid(law: &ParametricLaw, width: f64, noise: f64, seed: u64) -> Vec<Observation> {
    isoflop_fit::synthetic::planned_grid(law, &[1e18, 1e19, 1e20, 1e21], width, noise, seed)
}

fn main() {
    for law in [
        ParametricLaw::CHINCHILLA,
        ParametricLaw::EPOCH_2024,
        ParametricLaw {
            alpha: 0.25,
            beta: 0.45,
            ..ParametricLaw::EPOCH_2024
        },
    ] {
        let truth = law.params_exponent();
        println!(
            "law alpha {} beta {}: true a = {truth:.4}",
            law.alpha, law.beta
        );
        for width in [4.0, 16.0, 64.0, 256.0] {
            let mut line = format!("  grid {width:>5}x:");
            for w in [None, Some(1.0), Some(0.75), Some(0.6), Some(0.5), Some(0.3)] {
                let opts = IsoFlopOptions {
                    boot: isoflop_fit::stats::Bootstrap {
                        resamples: 0,
                        ..Default::default()
                    },
                    window_decades: w,
                    ..Default::default()
                };
                let a = fit_isoflop(&grid(&law, width), &opts)
                    .map(|f| format!("{:+.4}", f.frontier.params_exponent - truth))
                    .unwrap_or_else(|_| "   -   ".into());
                line += &format!(
                    "  {}: {a}",
                    w.map(|w| format!("{w}")).unwrap_or_else(|| "all".into())
                );
            }
            println!("{line}");
        }
        // With 0.5% noise, 40 seeds: the root mean square error of a.
        for width in [4.0, 16.0, 64.0, 256.0] {
            let mut line = format!("  rmse, 0.5% noise, {width:>5}x:");
            for w in [None, Some(0.75), Some(0.6), Some(0.5)] {
                let opts = IsoFlopOptions {
                    boot: isoflop_fit::stats::Bootstrap {
                        resamples: 0,
                        ..Default::default()
                    },
                    window_decades: w,
                    ..Default::default()
                };
                let errs: Vec<f64> = (0..40)
                    .filter_map(|s| fit_isoflop(&noisy_grid(&law, width, 0.005, s), &opts).ok())
                    .map(|f| f.frontier.params_exponent - truth)
                    .collect();
                let rmse =
                    (errs.iter().map(|e| e * e).sum::<f64>() / errs.len().max(1) as f64).sqrt();
                line += &format!(
                    "  {}: {rmse:.4} ({} fits)",
                    w.map(|w| format!("{w}")).unwrap_or_else(|| "all".into()),
                    errs.len()
                );
            }
            println!("{line}");
        }
    }
}
