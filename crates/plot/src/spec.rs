//! The data behind each figure, built from a fit. Renderers draw these; tests check them.
//!
//! Each builder returns the figure's spec or says why the data cannot support it (a
//! table with no training curves has no Figure 1, a fit without Approach 3 has no IsoLoss
//! contours). Every series is already restricted to its axes' ranges, so nothing is drawn
//! outside them.

use isoflop_fit::report::FitReport;
use isoflop_fit::{Frontier, ParametricLaw};

mod curves;
mod projections;
pub use curves::{training_curves, unshared};
pub use projections::projections;
mod forms;
pub use forms::{
    effective_ratio, forms_fit, repetition, Decay, FormPanel, FormsFit, Repetition, NOT_FITTED,
};

/// An (x, y) polyline.
pub type Polyline = Vec<(f64, f64)>;

/// A closed range of an axis.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Range {
    /// Low end.
    pub lo: f64,
    /// High end.
    pub hi: f64,
}

impl Range {
    fn of(values: impl IntoIterator<Item = f64>) -> Option<Range> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        (lo <= hi).then_some(Range { lo, hi })
    }

    /// Widened by a factor on a log axis (`factor` > 1).
    fn log_pad(self, factor: f64) -> Range {
        Range {
            lo: self.lo / factor,
            hi: self.hi * factor,
        }
    }

    /// Widened by a fraction of its width on a linear axis.
    fn lin_pad(self, frac: f64) -> Range {
        let w = (self.hi - self.lo).max(1e-9 * self.hi.abs().max(1.0));
        Range {
            lo: self.lo - frac * w,
            hi: self.hi + frac * w,
        }
    }

    /// True when `v` lies inside.
    pub fn contains(&self, v: f64) -> bool {
        v >= self.lo && v <= self.hi
    }
}

/// One run's training curve.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunCurve {
    /// The run.
    pub run: String,
    /// Its parameters.
    pub params: f64,
    /// (FLOPs, loss) points.
    pub points: Polyline,
}

/// A dashed power law of the envelope, fitted to one third of it (Figure 1, after Hoffmann
/// et al. 2022, Figure A5).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ThirdLine {
    /// "first third", "middle third", "last third".
    pub label: String,
    /// The exponent s of L = k C^s.
    pub exponent: f64,
    /// Its 95% interval.
    pub interval: (f64, f64),
    /// The law across the whole FLOP range.
    pub line: Polyline,
}

/// Figure 1 (Hoffmann et al. 2022, Figure A5): the smoothed training curves coloured by size
/// (the raw losses faint behind them), the minimum-loss envelope, and power laws fitted to
/// each third of it; Figure 2's left panel draws the same curves with each approach's
/// predicted loss.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainingCurves {
    /// The smoothed curves (Approach 1's smoother), coloured by parameters.
    pub runs: Vec<RunCurve>,
    /// The raw logged losses, drawn faint.
    pub raw: Vec<RunCurve>,
    /// Power laws of the envelope's thirds.
    pub thirds: Vec<ThirdLine>,
    /// The colour bar's title ("Million Parameters", or "Thousand Parameters" for small
    /// studies) and the divisor of N for its scale.
    pub colour_unit: (String, f64),
    /// The minimum-loss envelope (FLOPs, loss), drawn as black dots on a dashed line.
    pub envelope: Polyline,
    /// (approach, loss predicted along its compute-optimal frontier) as dashed lines.
    pub predicted: Vec<(String, Polyline)>,
    /// FLOPs axis (log).
    pub x: Range,
    /// Loss axis (linear).
    pub y: Range,
    /// The losses' unit ("nats per token"), named on the axis.
    pub loss_unit: String,
    /// Colour scale: parameters in millions.
    pub colour: Range,
}

/// One panel of Figure 2: an optimal quantity against FLOPs, with its projection.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Projection {
    /// "Parameters" or "Tokens".
    pub quantity: String,
    /// Which approach the points and line come from.
    pub approach: String,
    /// (FLOPs, optimal value) points from the data that the power law was fitted to.
    pub points: Polyline,
    /// Envelope points left out of the fit (won by the smallest or largest model), drawn hollow.
    pub censored: Polyline,
    /// The fitted power law from the data's smallest FLOPs to the target.
    pub line: Polyline,
    /// The target budget.
    pub target_flops: f64,
    /// The projected value there.
    pub projected: f64,
    /// The projected value as written on the figure, with its 95% interval where the
    /// bootstrap gives one ("67B (52B-85B)").
    pub label: String,
    /// The 95% band of the projection over the bootstrap (lower line, upper line).
    pub band: Option<(Polyline, Polyline)>,
    /// The projection's 95% interval at the target.
    pub interval: Option<(f64, f64)>,
    /// FLOPs axis (log).
    pub x: Range,
    /// Value axis (log).
    pub y: Range,
}

/// Figure 2: the training curves and the two projections side by side.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Projections {
    /// Left panel (absent when the table has no training curves).
    pub curves: Option<TrainingCurves>,
    /// Middle panel.
    pub params: Projection,
    /// Right panel.
    pub tokens: Projection,
}

/// A labelled contour of the parametric law.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Contour {
    /// The loss it traces.
    pub loss: f64,
    /// Its pieces, (FLOPs, parameters) polylines.
    pub lines: Vec<Polyline>,
}

/// Figure 3: IsoLoss contours over FLOPs and parameters.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IsoLoss {
    /// The law drawn.
    pub law: ParametricLaw,
    /// Contours.
    pub contours: Vec<Contour>,
    /// The efficient frontier N_opt(C) (the closed form), solid.
    pub frontier: Polyline,
    /// The runs: (FLOPs, parameters, loss).
    pub runs: Vec<(f64, f64, f64)>,
    /// FLOPs of the IsoFLOP slices drawn as dashed vertical lines.
    pub budgets: Vec<f64>,
    /// FLOPs axis (log).
    pub x: Range,
    /// Parameters axis (log).
    pub y: Range,
    /// Colour scale of the runs' loss.
    pub colour: Range,
    /// The losses' unit ("nats per token"), named on the colour bar.
    pub loss_unit: String,
}

/// One budget of Figure 4.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Slice {
    /// The budget.
    pub budget: f64,
    /// (parameters, loss) of its runs.
    pub points: Polyline,
    /// The Approach 2 parabola over the sampled sizes.
    pub parabola: Option<Polyline>,
    /// The Approach 3 law along this budget.
    pub law: Option<Polyline>,
    /// The Approach 2 vertex (parameters, loss).
    pub optimum: Option<(f64, f64)>,
}

/// Figure 4: loss against parameters at each budget.
#[derive(Clone, Debug, serde::Serialize)]
pub struct IsoFlopSlices {
    /// The budgets.
    pub slices: Vec<Slice>,
    /// The target model (parameters, predicted loss) and its budget.
    pub target: Option<(f64, f64, f64)>,
    /// The target's N_opt 95% interval, where the bootstrap gives one.
    #[serde(default)]
    pub target_interval: Option<(f64, f64)>,
    /// Parameters axis (log).
    pub x: Range,
    /// Loss axis (linear).
    pub y: Range,
    /// The losses' unit ("nats per token"), named on the axis.
    pub loss_unit: String,
}

/// All the figures, each present or absent with the reason.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Figures {
    /// Figure 1.
    pub training_curves: Result<TrainingCurves, String>,
    /// Figure 2.
    pub projections: Result<Projections, String>,
    /// Figure 3.
    pub isoloss: Result<IsoLoss, String>,
    /// Figure 4.
    pub isoflop_slices: Result<IsoFlopSlices, String>,
    /// Figure 5 (law forms other than Chinchilla's only).
    pub forms: Result<FormsFit, String>,
    /// Figure 6 (the data-constrained law only).
    pub repetition: Result<Repetition, String>,
}

/// `n` values log-spaced over [lo, hi].
pub fn logspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let (a, b) = (lo.ln(), hi.ln());
    (0..n)
        .map(|i| (a + (b - a) * i as f64 / (n - 1).max(1) as f64).exp())
        .collect()
}

pub use isoflop_core::units::count_short as short_count;

fn law3(r: &FitReport) -> Option<ParametricLaw> {
    r.approach3
        .fitted()
        .filter(|f| f.diagnostics.converged)
        .map(|f| f.law)
}

/// Figure 3: IsoLoss contours of the Approach 3 law.
pub fn isoloss(r: &FitReport, table: &isoflop_core::RunTable) -> Result<IsoLoss, String> {
    let law = law3(r).ok_or("Figure 3 needs a converged Approach 3 law")?;
    let finals = table.final_rows();
    let runs: Vec<(f64, f64, f64)> = finals.iter().map(|o| (o.flops, o.params, o.loss)).collect();
    let x = Range::of(runs.iter().map(|p| p.0))
        .ok_or("no runs")?
        .log_pad(3.0);
    let y = Range::of(runs.iter().map(|p| p.1))
        .ok_or("no runs")?
        .log_pad(3.0);
    // Loss on a grid of (ln C, ln N): D = C / (6N).
    let (nx, ny) = (240usize, 180usize);
    let (lx0, lx1, ly0, ly1) = (x.lo.ln(), x.hi.ln(), y.lo.ln(), y.hi.ln());
    let (sx, sy) = ((lx1 - lx0) / (nx - 1) as f64, (ly1 - ly0) / (ny - 1) as f64);
    let mut values = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            let (c, n) = ((lx0 + sx * i as f64).exp(), (ly0 + sy * j as f64).exp());
            values.push(law.loss(n, c / (6.0 * n)));
        }
    }
    let lo_run = runs.iter().map(|p| p.2).fold(f64::INFINITY, f64::min);
    let hi_run = runs.iter().map(|p| p.2).fold(0.0, f64::max);
    let levels = nice_levels(lo_run.max(law.e * 1.001), hi_run, 8);
    let builder = contour::ContourBuilder::new(nx, ny, true)
        .x_origin(lx0)
        .y_origin(ly0)
        .x_step(sx)
        .y_step(sy);
    let lines = builder
        .lines(&values, &levels)
        .map_err(|e| format!("contouring failed: {e:?}"))?;
    let contours = lines
        .into_iter()
        .map(|l| {
            let (geom, loss) = l.into_inner();
            // The builder returns closed rings that run along the grid's border where a
            // level region meets it; those border segments are not contour: cut them out.
            let eps = 1e-9 * (1.0 + lx1.abs().max(ly1.abs()));
            let on_edge = |c: &contour::Pt| {
                (c.x - lx0).abs() < eps
                    || (c.x - lx1).abs() < eps
                    || (c.y - ly0).abs() < eps
                    || (c.y - ly1).abs() < eps
            };
            let mut lines: Vec<Polyline> = Vec::new();
            for ring in geom.0 {
                let mut cur: Polyline = Vec::new();
                for w in ring.0.windows(2) {
                    if on_edge(&w[0]) && on_edge(&w[1]) {
                        if cur.len() >= 2 {
                            lines.push(std::mem::take(&mut cur));
                        }
                        cur.clear();
                        continue;
                    }
                    if cur.is_empty() {
                        cur.push((w[0].x.exp(), w[0].y.exp()));
                    }
                    cur.push((w[1].x.exp(), w[1].y.exp()));
                }
                if cur.len() >= 2 {
                    lines.push(cur);
                }
            }
            let lines: Vec<Polyline> = lines
                .into_iter()
                .map(|l| {
                    l.into_iter()
                        .filter(|&(a, b)| x.contains(a) && y.contains(b))
                        .collect::<Polyline>()
                })
                .filter(|p| p.len() >= 2)
                .collect();
            Contour { loss, lines }
        })
        .filter(|c| !c.lines.is_empty())
        .collect();
    let frontier: Polyline = logspace(x.lo, x.hi, 200)
        .into_iter()
        .map(|c| (c, law.optimal_params(c)))
        .filter(|&(_, n)| y.contains(n))
        .collect();
    let budgets = r
        .approach2
        .fitted()
        .map(|a2| {
            a2.budgets
                .iter()
                .map(|b| b.flops)
                .filter(|c| x.contains(*c))
                .collect()
        })
        .unwrap_or_default();
    Ok(IsoLoss {
        law,
        contours,
        frontier,
        runs,
        budgets,
        x,
        y,
        loss_unit: r.counted.loss_unit.clone(),
        colour: Range {
            lo: lo_run,
            hi: hi_run,
        },
    })
}

/// About `n` round contour levels between lo and hi.
pub fn nice_levels(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(hi > lo) {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut v = Vec::new();
    let mut x = start;
    while x <= hi + 1e-12 {
        v.push((x * 1e6).round() / 1e6);
        x += step;
    }
    v
}

/// Figure 4: loss against parameters per budget (Approach 2), with the law's slices.
pub fn isoflop_slices(r: &FitReport, target_flops: f64) -> Result<IsoFlopSlices, String> {
    let a2 = r
        .approach2
        .fitted()
        .ok_or("Figure 4 needs IsoFLOP budgets (Approach 2)")?;
    let law = law3(r);
    let mut slices = Vec::new();
    for b in &a2.budgets {
        let (nlo, nhi) = b.params_range;
        let pts: Polyline = b.points.clone();
        let grid = logspace(nlo, nhi, 80);
        let parabola = b.parabola.map(|q| {
            grid.iter()
                .map(|&n| (n, q[0] + q[1] * n.ln() + q[2] * n.ln() * n.ln()))
                .collect()
        });
        let law_line = law.map(|l| {
            grid.iter()
                .map(|&n| (n, l.loss(n, b.flops / (6.0 * n))))
                .collect()
        });
        let optimum = b.optimal_params.zip(b.min_loss);
        slices.push(Slice {
            budget: b.budget,
            points: pts,
            parabola,
            law: law_line,
            optimum,
        });
    }
    let target = match law {
        Some(l) => Some((
            l.optimal_params(target_flops),
            l.loss(
                l.optimal_params(target_flops),
                l.optimal_tokens(target_flops),
            ),
            target_flops,
        )),
        None => Some((
            a2.frontier.optimal_params(target_flops),
            f64::NAN,
            target_flops,
        ))
        .filter(|t| t.1.is_finite()),
    };
    let target_interval = match law {
        Some(_) => r
            .approach3
            .fitted()
            .filter(|f| f.samples.len() >= 20)
            .and_then(|f| {
                isoflop_fit::stats::percentile_interval(
                    f.samples.iter().map(|l| l.optimal_params(target_flops)),
                    0.95,
                )
            }),
        None => (a2.samples.len() >= 20)
            .then(|| {
                isoflop_fit::stats::percentile_interval(
                    a2.samples.iter().map(|f| f.optimal_params(target_flops)),
                    0.95,
                )
            })
            .flatten(),
    }
    .map(|i| (i.lo, i.hi));
    let x = Range::of(
        slices
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .chain(target.iter().map(|t| t.0))
            .chain(target_interval.iter().flat_map(|i| [i.0, i.1])),
    )
    .ok_or("no points")?
    .log_pad(1.5);
    let y = Range::of(
        slices
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .chain(target.iter().map(|t| t.1)),
    )
    .ok_or("no points")?
    .lin_pad(0.05);
    for s in &mut slices {
        let keep = |p: &Polyline| -> Polyline {
            p.iter()
                .copied()
                .filter(|&(a, b)| x.contains(a) && y.contains(b))
                .collect()
        };
        s.parabola = s.parabola.as_ref().map(keep);
        s.law = s.law.as_ref().map(keep);
    }
    Ok(IsoFlopSlices {
        slices,
        target,
        target_interval,
        x,
        y,
        loss_unit: r.counted.loss_unit.clone(),
    })
}

/// Every figure, or why it could not be drawn.
pub fn figures(r: &FitReport, table: &isoflop_core::RunTable, target_flops: f64) -> Figures {
    Figures {
        training_curves: training_curves(r, table),
        projections: projections(r, table, target_flops),
        isoloss: isoloss(r, table),
        isoflop_slices: isoflop_slices(r, target_flops),
        forms: forms_fit(r, table),
        repetition: repetition(r, table),
    }
}
