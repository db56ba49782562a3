//! The backtest figure of `isoflop validate --backtest --figure`: errors against the
//! distance of extrapolation.

use super::*;

/// The backtest's errors against the distance of extrapolation: Approach 3's loss error and
/// each approach's N_opt error (in %, log scale), one point per (origin, target).
fn backtest<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[isoflop_fit::validate::BacktestRow],
) -> R {
    root.fill(&WHITE).ctx()?;
    let pct: Vec<f64> = rows
        .iter()
        .flat_map(|r| {
            r.loss_error
                .into_iter()
                .chain(r.n_opt_errors.iter().map(|e| e.1))
        })
        .map(|e| 100.0 * e)
        .filter(|e| *e > 0.0 && e.is_finite())
        .collect();
    let (lo, hi) = pct
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &e| (a.min(e), b.max(e)));
    if !(lo.is_finite() && hi > 0.0) {
        return Err("the backtest has no finite errors to draw".into());
    }
    let xmax = rows.iter().map(|r| r.decades).fold(0.0, f64::max) * 1.08;
    let mut chart = builder(root, Some("Backtest: error against extrapolation".into()))
        .build_cartesian_2d(0.0..xmax.max(0.1), ((lo / 2.0)..(hi * 2.0)).log_scale())
        .ctx()?;
    mesh(
        &mut chart,
        "Decades of FLOPs beyond the largest fitted budget",
        "|relative error| (%)",
        &|v| format!("{v:.1}"),
        Some(&|v| {
            if *v >= 1.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        }),
    )?;
    let loss: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.loss_error.map(|e| (r.decades, 100.0 * e)))
        .filter(|p| p.1 > 0.0)
        .collect();
    chart
        .draw_series(loss.iter().map(|&p| Circle::new(p, 5, BLACK.filled())))
        .ctx()?
        .label("loss, Approach 3")
        .legend(|(x, y)| Circle::new((x + 12, y), 4, BLACK.filled()));
    for (name, col) in [
        ("approach1", RGBColor(200, 40, 40)),
        ("approach2", RGBColor(30, 120, 200)),
        ("approach3", RGBColor(230, 140, 20)),
    ] {
        let pts: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|r| {
                r.n_opt_errors
                    .iter()
                    .find(|e| e.0 == name)
                    .map(|e| (r.decades, 100.0 * e.1))
            })
            .filter(|p| p.1 > 0.0)
            .collect();
        if pts.is_empty() {
            continue;
        }
        chart
            .draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 6, col.filled())))
            .ctx()?
            .label(format!("N_opt, {}", name.replace("approach", "Approach ")))
            .legend(move |(x, y)| TriangleMarker::new((x + 12, y), 5, col.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

/// The backtest figure as SVG text.
///
/// # Errors
/// A message when there is nothing to draw or plotters fails.
pub fn backtest_svg(rows: &[isoflop_fit::validate::BacktestRow]) -> R<String> {
    register_font();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (900, 560)).into_drawing_area();
        backtest(&root, rows)?;
        root.present().ctx()?;
    }
    Ok(buf)
}

/// The backtest figure as a PNG file.
///
/// # Errors
/// As [`backtest_svg`].
pub fn backtest_png(rows: &[isoflop_fit::validate::BacktestRow], path: &Path) -> R {
    register_font();
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    backtest(&root, rows)?;
    root.present().ctx()
}
