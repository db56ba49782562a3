//! Figures 5 and 6: the law forms beyond Chinchilla's.

use super::{builder, colour, colour_bar, flops_label, legend, mesh, with_bar, Ctx, R};
use crate::spec::{Decay, FormsFit, Repetition};
use plotters::coord::Shift;
use plotters::prelude::*;

fn loss_label(v: &f64) -> String {
    format!("{v:.1}")
}

/// A decay constant: one decimal below 1,000, else in powers of ten.
fn short(v: f64) -> String {
    if v < 1e3 {
        format!("{v:.1}")
    } else {
        format!("{v:.1e}")
    }
}

fn ratio_label(v: &f64) -> String {
    if *v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Figure 5: a panel per form, observed against predicted loss, coloured by FLOPs.
pub(super) fn forms<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &FormsFit) -> R {
    let (main, side) = with_bar(root);
    let panels = main.split_evenly((1, s.panels.len().max(1)));
    let (lo, hi) = (s.loss.lo, s.loss.hi);
    for (area, p) in panels.iter().zip(&s.panels) {
        let held = p
            .held_out_error
            .map(|e| format!(", held out {:.1}%", 100.0 * e))
            .unwrap_or_default();
        let title = format!("{}: rms ln L {:.3}{held}", p.form, p.rmse_log);
        let mut chart = builder(area, Some(title))
            .build_cartesian_2d(lo..hi, lo..hi)
            .ctx()?;
        mesh(
            &mut chart,
            "Predicted loss",
            "Observed loss",
            &loss_label,
            Some(&loss_label),
        )?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(lo, lo), (hi, hi)],
                6,
                6,
                RGBColor(120, 120, 120).stroke_width(1),
            ))
            .ctx()?;
        chart
            .draw_series(
                p.points
                    .iter()
                    .filter(|q| s.loss.contains(q.0) && s.loss.contains(q.1))
                    .map(|&(pred, obs, c)| {
                        Circle::new((pred, obs), 3, colour(c, s.colour, true).filled())
                    }),
            )
            .ctx()?;
    }
    colour_bar(&side, s.colour, true, "FLOPs", &|v| flops_label(&v))
}

fn decay_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &Decay,
    symbol: &str,
    x_desc: &str,
    y_desc: &str,
    fresh: &str,
) -> R {
    let mut chart = builder(area, None)
        .build_cartesian_2d((d.x.lo..d.x.hi).log_scale(), (d.y.lo..d.y.hi).log_scale())
        .ctx()?;
    mesh(&mut chart, x_desc, y_desc, &ratio_label, Some(&ratio_label))?;
    let blue = RGBColor(30, 90, 180);
    let orange = RGBColor(220, 120, 20);
    let grey = RGBColor(120, 120, 120);
    if let Some((lo, hi)) = &d.band {
        let poly: Vec<(f64, f64)> = lo
            .iter()
            .copied()
            .chain(hi.iter().rev().copied())
            .map(|(x, y)| (x, y.clamp(d.y.lo, d.y.hi)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(poly, blue.mix(0.18).filled())))
            .ctx()?;
    }
    chart
        .draw_series(DashedLineSeries::new(
            vec![(d.x.lo, d.x.lo), (d.x.hi.min(d.y.hi), d.x.hi.min(d.y.hi))],
            6,
            6,
            grey.stroke_width(1),
        ))
        .ctx()?
        .label(fresh)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], grey.stroke_width(1)));
    let interval = d
        .star_interval
        .map(|(lo, hi)| format!(" ({} to {})", short(lo), short(hi)))
        .unwrap_or_default();
    chart
        .draw_series(LineSeries::new(
            d.fitted.iter().copied(),
            blue.stroke_width(3),
        ))
        .ctx()?
        .label(format!("fitted: {symbol} = {:.1}{interval}", d.star))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], blue.stroke_width(3)));
    chart
        .draw_series(DashedLineSeries::new(
            d.released.iter().copied(),
            8,
            5,
            orange.stroke_width(2),
        ))
        .ctx()?
        .label(format!(
            "Muennighoff et al. 2023: {symbol} = {:.1}",
            d.released_star
        ))
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], orange.stroke_width(2)));
    // The runs, as ticks along the bottom: their effective ratios are not observed.
    let tick_top = d.y.lo * (d.y.hi / d.y.lo).powf(0.04);
    chart
        .draw_series(
            d.runs.iter().filter(|&&x| d.x.contains(x)).map(|&x| {
                PathElement::new(vec![(x, d.y.lo), (x, tick_top)], BLACK.stroke_width(1))
            }),
        )
        .ctx()?;
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// Figure 6: repeated tokens (left) and excess parameters (right).
pub(super) fn repetition<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Repetition) -> R {
    let panels = root.split_evenly((1, 2));
    decay_panel(
        &panels[0],
        &s.tokens,
        "R_D*",
        "Epochs D/U",
        "Effective data D'/U",
        "every token unique",
    )?;
    decay_panel(
        &panels[1],
        &s.params,
        "R_N*",
        "Parameters over what U can use, N/U_N",
        "Effective parameters N'/U_N",
        "every parameter useful",
    )?;
    Ok(())
}
