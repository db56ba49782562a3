//! Figures 1 and 2: training curves, and the optimal parameters and tokens projected.

use super::*;

/// The training curves; `a5`: as Hoffmann et al.'s Figure A5 (raw losses faint, the
/// envelope's thirds' power laws), else with each approach's predicted loss (Figure 2).
pub(super) fn training_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &TrainingCurves,
    bar: bool,
    a5: bool,
) -> R {
    let (main, side) = if bar {
        with_bar(root)
    } else {
        (root.clone(), root.clone())
    };
    let mut chart = builder(&main, None)
        .build_cartesian_2d((s.x.lo..s.x.hi).log_scale(), s.y.lo..s.y.hi)
        .ctx()?;
    let label = format!("Training loss ({})", s.loss_unit);
    mesh(&mut chart, "FLOPs", &label, &flops_label, None)?;
    let scale = s.colour_unit.1;
    if a5 {
        let raw: Vec<_> = s.raw.iter().collect();
        for (c, pts) in raw.iter().zip(crate::spec::unshared(&raw)) {
            let col = colour(c.params / scale, s.colour, true).mix(0.18);
            chart
                .draw_series(LineSeries::new(pts, col.stroke_width(1)))
                .ctx()?;
        }
    }
    let mut runs: Vec<_> = s.runs.iter().collect();
    runs.sort_by(|a, b| a.params.total_cmp(&b.params));
    for (c, pts) in runs.iter().zip(crate::spec::unshared(&runs)) {
        let col = colour(c.params / scale, s.colour, true);
        chart
            .draw_series(LineSeries::new(pts, col.stroke_width(2)))
            .ctx()?;
    }
    if a5 {
        for t in &s.thirds {
            let col = match t.label.as_str() {
                "first third" => RGBColor(210, 40, 40),
                "middle third" => RGBColor(30, 150, 60),
                _ => RGBColor(30, 90, 200),
            };
            chart
                .draw_series(DashedLineSeries::new(
                    t.line.iter().copied(),
                    8,
                    5,
                    col.stroke_width(2),
                ))
                .ctx()?
                .label(format!("{}: L ~ C^{:.3}", t.label, t.exponent))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(2))
                });
        }
    }
    for (i, (name, pts)) in s.predicted.iter().enumerate().filter(|_| !a5) {
        let col = [
            RGBColor(200, 40, 40),
            RGBColor(30, 120, 200),
            RGBColor(230, 140, 20),
        ][i % 3];
        chart
            .draw_series(DashedLineSeries::new(
                pts.iter().copied(),
                8,
                5,
                col.stroke_width(2),
            ))
            .ctx()?
            .label(format!("{name} prediction"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(2)));
    }
    chart
        .draw_series(DashedLineSeries::new(
            s.envelope.iter().copied(),
            4,
            4,
            BLACK.stroke_width(1),
        ))
        .ctx()?;
    let step = (s.envelope.len() / 40).max(1);
    chart
        .draw_series(
            s.envelope
                .iter()
                .step_by(step)
                .map(|&p| Circle::new(p, 3, BLACK.filled())),
        )
        .ctx()?
        .label("Minimum-loss envelope")
        .legend(|(x, y)| Circle::new((x + 12, y), 3, BLACK.filled()));
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    if bar {
        colour_bar(&side, s.colour, true, &s.colour_unit.0, &|v| {
            if v >= 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        })?;
    }
    Ok(())
}

pub(super) fn projection<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Projection) -> R {
    let caption = format!("Optimal {} ({})", p.quantity.to_lowercase(), p.approach);
    let mut chart = builder(area, Some(caption))
        .build_cartesian_2d((p.x.lo..p.x.hi).log_scale(), (p.y.lo..p.y.hi).log_scale())
        .ctx()?;
    mesh(
        &mut chart,
        "FLOPs",
        &p.quantity,
        &flops_label,
        Some(&count_label),
    )?;
    let blue = RGBColor(30, 90, 180);
    if let Some((lo, hi)) = &p.band {
        // The 95% band of the projection: a filled polygon, lower line out, upper line back.
        let ring: Vec<(f64, f64)> = lo
            .iter()
            .copied()
            .chain(hi.iter().rev().copied())
            .filter(|q| q.1 > 0.0 && q.1.is_finite())
            .map(|(c, v)| (c, v.clamp(p.y.lo, p.y.hi)))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(ring, blue.mix(0.15).filled())))
            .ctx()?;
    }
    chart
        .draw_series(LineSeries::new(
            p.line.iter().copied(),
            blue.stroke_width(2),
        ))
        .ctx()?;
    chart
        .draw_series(
            p.censored
                .iter()
                .filter(|q| p.x.contains(q.0) && p.y.contains(q.1))
                .map(|&q| Circle::new(q, 4, RGBColor(150, 150, 150).stroke_width(1))),
        )
        .ctx()?;
    chart
        .draw_series(
            p.points
                .iter()
                .filter(|q| p.x.contains(q.0) && p.y.contains(q.1))
                .map(|&q| Circle::new(q, 4, BLACK.filled())),
        )
        .ctx()?;
    let target = (p.target_flops, p.projected);
    if p.x.contains(target.0) && p.y.contains(target.1) {
        chart
            .draw_series(std::iter::once(TriangleMarker::new(
                target,
                9,
                RGBColor(200, 40, 40).filled(),
            )))
            .ctx()?;
        // The projected value, written beside the target, inside the axes (a longer label,
        // with its interval, starts further left).
        let pos = (
            target.0 / 10f64.powf(0.11 * p.label.chars().count() as f64 + 0.2),
            target.1 * 1.6,
        );
        chart
            .draw_series(std::iter::once(Text::new(p.label.clone(), pos, style(22))))
            .ctx()?;
    }
    Ok(())
}

pub(super) fn projections<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Projections) -> R {
    // Without training curves (IsoFLOP or digitised data) the left panel is left out.
    let panels = root.split_evenly((1, if s.curves.is_some() { 3 } else { 2 }));
    let mut k = 0;
    if let Some(c) = &s.curves {
        training_curves(&panels[0], c, false, false)?;
        k = 1;
    }
    projection(&panels[k], &s.params)?;
    projection(&panels[k + 1], &s.tokens)
}
