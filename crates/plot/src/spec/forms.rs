//! The figures of the law forms beyond Chinchilla's: each fitted form's predicted final loss
//! against the observed one (Figure 5), and what the data-constrained law says repeated
//! tokens and excess parameters are worth (Figure 6). Drawn only where such a form was
//! fitted (`isoflop fit --law ...`).

use super::{logspace, Polyline, Range};
use isoflop_fit::data_constrained::DataConstrainedLaw;
use isoflop_fit::report::{FitReport, Outcome};

/// Why Figures 5 and 6 are not drawn for a fit of Chinchilla's law alone.
pub const NOT_FITTED: &str = "no law form other than Chinchilla's was fitted";

/// One form's panel of Figure 5.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FormPanel {
    /// The form's name.
    pub form: String,
    /// (predicted, observed, FLOPs) per run.
    pub points: Vec<(f64, f64, f64)>,
    /// Root mean square of ln predicted - ln observed over the runs.
    pub rmse_log: f64,
    /// Mean |error| / L on the runs held out of the form's refit, where that comparison
    /// was made.
    pub held_out_error: Option<f64>,
}

/// Figure 5: observed against predicted final loss, a panel per fitted form.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FormsFit {
    /// The panels, in the order the forms were fitted (Chinchilla's first).
    pub panels: Vec<FormPanel>,
    /// Both axes (loss, linear).
    pub loss: Range,
    /// Colour scale of the runs' FLOPs (log).
    pub colour: Range,
}

/// Figure 5 from a fit with at least one form other than Chinchilla's.
pub fn forms_fit(r: &FitReport, table: &isoflop_core::RunTable) -> Result<FormsFit, String> {
    let other = r
        .data_constrained
        .as_ref()
        .and_then(|o| o.fitted())
        .is_some()
        || r.kaplan.as_ref().and_then(|o| o.fitted()).is_some();
    if !other {
        return Err(NOT_FITTED.into());
    }
    let finals = table.final_rows();
    let held = match &r.held_out {
        Some(Outcome::Fitted(h)) => Some(h),
        _ => None,
    };
    let panels: Vec<FormPanel> = r
        .forms()
        .into_iter()
        .map(|law| {
            let points: Vec<(f64, f64, f64)> = finals
                .iter()
                .map(|o| (law.predict(o), o.loss, o.flops))
                .filter(|p| p.0 > 0.0 && p.0.is_finite() && p.1 > 0.0)
                .collect();
            let rmse_log = isoflop_fit::forms::score(law, &finals).rmse_log;
            FormPanel {
                form: law.form().to_string(),
                held_out_error: held.and_then(|h| {
                    h.scores
                        .iter()
                        .find(|s| s.form == law.form())
                        .map(|s| s.mean_abs_rel_error)
                }),
                points,
                rmse_log,
            }
        })
        .collect();
    let all = panels.iter().flat_map(|p| p.points.iter());
    let loss = Range::of(all.clone().flat_map(|p| [p.0, p.1]))
        .ok_or("no run has a finite predicted and observed loss")?
        .lin_pad(0.03);
    let colour = Range::of(all.map(|p| p.2)).ok_or("no run has finite FLOPs")?;
    Ok(FormsFit {
        panels,
        loss,
        colour,
    })
}

/// One panel of Figure 6: what repeated tokens (or excess parameters) are worth, in units of
/// the unique ones, against how many times they are repeated (or in excess).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Decay {
    /// The fitted decay constant (R_D* or R_N*).
    pub star: f64,
    /// Its 95% interval, where the bootstrap gives one.
    pub star_interval: Option<(f64, f64)>,
    /// (ratio, effective ratio) under the fitted constant: 1 + R* (1 - exp(-(x - 1) / R*)).
    pub fitted: Polyline,
    /// The same at the interval's ends (the curve grows with R*, so these bound it).
    pub band: Option<(Polyline, Polyline)>,
    /// The same under Muennighoff et al. 2023's released constant.
    pub released: Polyline,
    /// The released constant.
    pub released_star: f64,
    /// The runs' ratios (x only: their effective ratios are not observed).
    pub runs: Vec<f64>,
    /// Ratio axis (log).
    pub x: Range,
    /// Effective-ratio axis (log).
    pub y: Range,
}

/// Figure 6: the data-constrained law's repeated tokens (D/U against D'/U) and excess
/// parameters (N/U_N against N'/U_N, U_N the size the unique tokens make compute-optimal).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Repetition {
    /// Left panel.
    pub tokens: Decay,
    /// Right panel.
    pub params: Decay,
}

/// The effective ratio of a ratio `x` >= 1 under decay constant `star`.
pub fn effective_ratio(x: f64, star: f64) -> f64 {
    1.0 + star * (1.0 - (-(x - 1.0) / star).exp())
}

fn decay(star: f64, interval: Option<(f64, f64)>, released_star: f64, runs: Vec<f64>) -> Decay {
    let top = runs.iter().copied().fold(10.0f64, f64::max) * 1.5;
    let x = Range { lo: 1.0, hi: top };
    let xs = logspace(x.lo, x.hi, 200);
    let curve = |s: f64| -> Polyline { xs.iter().map(|&v| (v, effective_ratio(v, s))).collect() };
    // The y axis holds the curves and the line of fresh data (y = x), which bounds them.
    let y = Range { lo: 1.0, hi: top };
    Decay {
        star,
        star_interval: interval,
        fitted: curve(star),
        band: interval.map(|(lo, hi)| (curve(lo), curve(hi))),
        released: curve(released_star),
        released_star,
        runs,
        x,
        y,
    }
}

/// Figure 6 from a fit of the data-constrained law.
pub fn repetition(r: &FitReport, table: &isoflop_core::RunTable) -> Result<Repetition, String> {
    let Some(f) = r.data_constrained.as_ref().and_then(|o| o.fitted()) else {
        return Err(NOT_FITTED.into());
    };
    let finals = table.final_rows();
    let law = f.law;
    let released = DataConstrainedLaw::muennighoff2023();
    let (epochs, excess): (Vec<f64>, Vec<f64>) = finals
        .iter()
        .filter_map(|o| o.unique_tokens.map(|u| (o, u)))
        .map(|(o, u)| {
            (
                o.tokens / u,
                o.params / law.params_for_tokens(u).min(o.params),
            )
        })
        .unzip();
    let iv = |i: &Option<isoflop_fit::stats::Interval>| i.as_ref().map(|i| (i.lo, i.hi));
    Ok(Repetition {
        tokens: decay(
            law.rd_star,
            iv(&f.rd_star_interval),
            released.rd_star,
            epochs,
        ),
        params: decay(
            law.rn_star,
            iv(&f.rn_star_interval),
            released.rn_star,
            excess,
        ),
    })
}
