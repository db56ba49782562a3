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

mod backtest;
mod curves;
mod forms;
pub use backtest::{backtest_png, backtest_svg};
use curves::{projections, training_curves};

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
