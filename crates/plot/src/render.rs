//! Draws figure specs with plotters, to SVG text or PNG files. The only module that draws.

use crate::spec::{
    short_count, FormsFit, IsoFlopSlices, IsoLoss, Projection, Projections, Range, Repetition,
    TrainingCurves,
};
use crate::viridis;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

mod forms;

const FONT: &str = "sans-serif";
static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

/// A drawing error, as text.
type R<T = ()> = Result<T, String>;

trait Ctx<T> {
    fn ctx(self) -> R<T>;
}

impl<T, E: std::fmt::Debug> Ctx<T> for Result<T, E> {
    fn ctx(self) -> R<T> {
        self.map_err(|e| format!("drawing failed: {e:?}"))
    }
}

/// A figure to draw.
#[derive(Clone, Copy, Debug)]
pub enum Figure<'a> {
    /// Figure 1.
    TrainingCurves(&'a TrainingCurves),
    /// Figure 2.
    Projections(&'a Projections),
    /// Figure 3.
    IsoLoss(&'a IsoLoss),
    /// Figure 4.
    IsoFlopSlices(&'a IsoFlopSlices),
    /// Figure 5.
    Forms(&'a FormsFit),
    /// Figure 6.
    Repetition(&'a Repetition),
}

impl Figure<'_> {
    /// Pixel size.
    pub fn size(&self) -> (u32, u32) {
        match self {
            Figure::Projections(p) if p.curves.is_some() => (1800, 560),
            Figure::Projections(_) => (1200, 560),
            Figure::Forms(f) => (170 + 520 * f.panels.len().max(1) as u32, 560),
            Figure::Repetition(_) => (1400, 560),
            _ => (900, 620),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> R {
        root.fill(&WHITE).ctx()?;
        match self {
            Figure::TrainingCurves(s) => training_curves(root, s, true, true),
            Figure::Projections(s) => projections(root, s),
            Figure::IsoLoss(s) => isoloss(root, s),
            Figure::IsoFlopSlices(s) => slices(root, s),
            Figure::Forms(s) => forms::forms(root, s),
            Figure::Repetition(s) => forms::repetition(root, s),
        }
    }
}

/// The figure as SVG text.
///
/// # Errors
/// A message when plotters cannot draw it.
///
/// # Example
/// ```
/// use isoflop_core::RunTable;
/// use isoflop_fit::{fit_table, FitSettings};
/// use isoflop_plot::render::{svg, Figure};
/// // Fit runs drawn from Epoch's law, then draw Figure 3 (IsoLoss contours).
/// let law = isoflop_fit::ParametricLaw::EPOCH_2024;
/// let rows = isoflop_fit::synthetic::isoflop_points(&law, &[1e18, 1e19, 1e20, 1e21], 0.0, 0);
/// let table = RunTable { rows, ..RunTable::default() };
/// let mut settings = FitSettings::default().with_bootstrap(0, 0);
/// settings.approaches = vec![3];
/// let report = fit_table(&table, &settings).unwrap();
/// let spec = isoflop_plot::spec::isoloss(&report, &table).unwrap();
/// let text = svg(Figure::IsoLoss(&spec)).unwrap();
/// assert!(text.starts_with("<svg") && text.contains("Loss (nats per token)"));
/// ```
pub fn svg(fig: Figure) -> R<String> {
    register_font();
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, fig.size()).into_drawing_area();
        fig.draw(&root)?;
        root.present().ctx()?;
    }
    Ok(buf)
}

/// The figure as a PNG file.
///
/// # Errors
/// A message when plotters cannot draw or write it.
pub fn png(fig: Figure, path: &Path) -> R {
    register_font();
    let root = BitMapBackend::new(path, fig.size()).into_drawing_area();
    fig.draw(&root)?;
    root.present().ctx()
}

fn flops_label(v: &f64) -> String {
    let e = v.log10().round() as i32;
    if (v.log10() - e as f64).abs() < 1e-6 {
        format!("1e{e}")
    } else {
        format!("{v:.0e}")
    }
}

fn count_label(v: &f64) -> String {
    short_count(*v)
}

fn colour(v: f64, r: Range, log: bool) -> RGBColor {
    let t = if log {
        (v.ln() - r.lo.ln()) / (r.hi.ln() - r.lo.ln())
    } else {
        (v - r.lo) / (r.hi - r.lo)
    };
    let (a, b, c) = viridis::at(if t.is_finite() { t } else { 0.5 });
    RGBColor(a, b, c)
}

fn style(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

/// The house axes: margins, label areas and an optional caption, on `area`.
fn builder<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: Option<String>,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(area);
    b.margin(20).x_label_area_size(55).y_label_area_size(70);
    if let Some(c) = caption {
        b.caption(c, style(19));
    }
    b
}

/// The house mesh: axis titles, tick formatters (y's default where `None`), no minor lines.
fn mesh<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    x_desc: &str,
    y_desc: &str,
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: Option<&dyn Fn(&f64) -> String>,
) -> R
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let mut m = chart.configure_mesh();
    m.x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_fmt)
        .label_style(style(17))
        .axis_desc_style(style(19))
        .light_line_style(WHITE);
    if let Some(f) = y_fmt {
        m.y_label_formatter(f);
    }
    m.draw().ctx()
}

/// The house legend box at `pos`.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> R {
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(style(15))
        .draw()
        .ctx()
}

/// The plot area and, on its right, 170 pixels for a colour bar (room for its title, "Thousand
/// Parameters", at 16 px).
fn with_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    root.split_horizontally(root.dim_in_pixel().0 as i32 - 170)
}

fn colour_bar<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    r: Range,
    log: bool,
    title: &str,
    label: &dyn Fn(f64) -> String,
) -> R {
    let (lo, hi) = if log {
        (r.lo.ln(), r.hi.ln())
    } else {
        (r.lo, r.hi)
    };
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let mut chart = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(70)
        .margin_right(10)
        .y_label_area_size(70)
        .caption(title, style(16))
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .ctx()?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .disable_y_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_style(style(15))
        .y_label_formatter(&|v| label(if log { v.exp() } else { *v }))
        .draw()
        .ctx()?;
    let n = 100;
    chart
        .draw_series((0..n).map(|i| {
            let (a, b) = (
                lo + (hi - lo) * i as f64 / n as f64,
                lo + (hi - lo) * (i + 1) as f64 / n as f64,
            );
            let v = if log {
                (0.5 * (a + b)).exp()
            } else {
                0.5 * (a + b)
            };
            Rectangle::new([(0.0, a), (1.0, b)], colour(v, r, log).filled())
        }))
        .ctx()?;
    Ok(())
}

/// The training curves; `a5`: as Hoffmann et al.'s Figure A5 (raw losses faint, the
/// envelope's thirds' power laws), else with each approach's predicted loss (Figure 2).
fn training_curves<DB: DrawingBackend>(
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

fn projection<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Projection) -> R {
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

fn projections<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &Projections) -> R {
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

fn isoloss<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &IsoLoss) -> R {
    let (main, side) = with_bar(root);
    let mut chart = builder(&main, None)
        .build_cartesian_2d((s.x.lo..s.x.hi).log_scale(), (s.y.lo..s.y.hi).log_scale())
        .ctx()?;
    mesh(
        &mut chart,
        "FLOPs",
        "Parameters",
        &flops_label,
        Some(&count_label),
    )?;
    let grey = RGBColor(110, 110, 110);
    for c in &s.contours {
        for line in &c.lines {
            chart
                .draw_series(LineSeries::new(line.iter().copied(), grey.stroke_width(1)))
                .ctx()?;
        }
        // Label each contour at the middle of its longest piece.
        if let Some(longest) = c.lines.iter().max_by_key(|l| l.len()) {
            let mid = longest[longest.len() / 2];
            chart
                .draw_series(std::iter::once(Text::new(
                    format!("{:.2}", c.loss),
                    mid,
                    style(13).color(&grey),
                )))
                .ctx()?;
        }
    }
    for &b in &s.budgets {
        chart
            .draw_series(DashedLineSeries::new(
                vec![(b, s.y.lo), (b, s.y.hi)],
                6,
                6,
                RGBColor(150, 150, 150).stroke_width(1),
            ))
            .ctx()?;
    }
    chart
        .draw_series(LineSeries::new(
            s.frontier.iter().copied(),
            RGBColor(30, 90, 180).stroke_width(3),
        ))
        .ctx()?
        .label("Efficient frontier (Approach 3)")
        .legend(|(x, y)| {
            PathElement::new(
                vec![(x, y), (x + 24, y)],
                RGBColor(30, 90, 180).stroke_width(3),
            )
        });
    chart
        .draw_series(
            s.runs
                .iter()
                .filter(|r| s.x.contains(r.0) && s.y.contains(r.1))
                .map(|&(c, n, l)| Circle::new((c, n), 4, colour(l, s.colour, false).filled())),
        )
        .ctx()?;
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    let title = format!("Loss ({})", s.loss_unit);
    colour_bar(&side, s.colour, false, &title, &|v| format!("{v:.2}"))
}

fn slices<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, s: &IsoFlopSlices) -> R {
    let (main, side) = with_bar(root);
    let mut chart = builder(&main, None)
        .build_cartesian_2d((s.x.lo..s.x.hi).log_scale(), s.y.lo..s.y.hi)
        .ctx()?;
    let label = format!("Loss ({})", s.loss_unit);
    mesh(&mut chart, "Parameters", &label, &count_label, None)?;
    let budgets = Range {
        lo: s
            .slices
            .iter()
            .map(|b| b.budget)
            .fold(f64::INFINITY, f64::min),
        hi: s.slices.iter().map(|b| b.budget).fold(0.0, f64::max),
    };
    for b in &s.slices {
        let col = colour(b.budget, budgets, true);
        chart
            .draw_series(
                b.points
                    .iter()
                    .filter(|p| s.x.contains(p.0) && s.y.contains(p.1))
                    .map(|&p| Circle::new(p, 4, col.filled())),
            )
            .ctx()?;
        if let Some(p) = &b.parabola {
            chart
                .draw_series(LineSeries::new(p.iter().copied(), col.stroke_width(2)))
                .ctx()?;
        }
        if let Some(l) = &b.law {
            chart
                .draw_series(DashedLineSeries::new(
                    l.iter().copied(),
                    6,
                    4,
                    col.stroke_width(1),
                ))
                .ctx()?;
        }
        if let Some(o) = b.optimum.filter(|o| s.x.contains(o.0) && s.y.contains(o.1)) {
            chart
                .draw_series(std::iter::once(Cross::new(o, 7, BLACK.stroke_width(2))))
                .ctx()?;
        }
    }
    if let Some((n, l, c)) = s.target.filter(|t| s.x.contains(t.0) && s.y.contains(t.1)) {
        if let Some((lo, hi)) = s.target_interval {
            // The target's 95% interval in N, as a bar through it.
            let red = RGBColor(200, 40, 40);
            let (lo, hi) = (lo.max(s.x.lo), hi.min(s.x.hi));
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(lo, l), (hi, l)],
                    red.stroke_width(2),
                )))
                .ctx()?;
            chart
                .draw_series([lo, hi].into_iter().map(|x| {
                    PathElement::new(
                        vec![
                            (x, l - 0.01 * (s.y.hi - s.y.lo)),
                            (x, l + 0.01 * (s.y.hi - s.y.lo)),
                        ],
                        red.stroke_width(2),
                    )
                }))
                .ctx()?;
        }
        chart
            .draw_series(std::iter::once(TriangleMarker::new(
                (n, l),
                10,
                RGBColor(200, 40, 40).filled(),
            )))
            .ctx()?
            .label(match s.target_interval {
                Some((lo, hi)) => format!(
                    "Target: {} ({}-{}) at {:.2e} FLOPs",
                    short_count(n),
                    short_count(lo),
                    short_count(hi),
                    c
                ),
                None => format!("Target: {} at {:.2e} FLOPs", short_count(n), c),
            })
            .legend(|(x, y)| TriangleMarker::new((x + 12, y), 7, RGBColor(200, 40, 40).filled()));
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    }
    colour_bar(&side, budgets, true, "FLOP budget", &|v| format!("{v:.1e}"))
}

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
