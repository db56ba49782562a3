//! Figure 2's data: the optimal parameters and tokens against FLOPs, projected to a target.

use super::*;

/// Figure 2: projections of N_opt and D_opt to `target_flops` from the best available
/// approach (1, else 2, else 3), with the training curves where there are some.
pub fn projections(
    r: &FitReport,
    table: &isoflop_core::RunTable,
    target_flops: f64,
) -> Result<Projections, String> {
    let src = points(r, table)?;
    let (points_n, censored_n) = (&src.points_n, &src.censored_n);
    let data_lo = points_n
        .iter()
        .chain(censored_n)
        .map(|p| p.0)
        .fold(f64::INFINITY, f64::min);
    let data_lo = if data_lo.is_finite() {
        data_lo
    } else {
        table
            .rows
            .iter()
            .map(|o| o.flops)
            .fold(f64::INFINITY, f64::min)
    };
    let x = Range {
        lo: data_lo.min(target_flops),
        hi: data_lo.max(target_flops),
    }
    .log_pad(2.0);
    let params = panel(
        &src,
        "Parameters",
        src.points_n.clone(),
        src.censored_n.clone(),
        &|fr, c| fr.optimal_params(c),
        x,
        target_flops,
    );
    let tokens = panel(
        &src,
        "Tokens",
        src.points_d.clone(),
        src.censored_d.clone(),
        &|fr, c| fr.optimal_tokens(c),
        x,
        target_flops,
    );
    Ok(Projections {
        curves: training_curves(r, table).ok(),
        params,
        tokens,
    })
}

/// What Figure 2 projects: the first fitted approach's frontier and bootstrap frontiers,
/// and its points (Approach 1's envelope, used or censored; Approach 2's vertices).
struct Source {
    approach: &'static str,
    points_n: Polyline,
    points_d: Polyline,
    censored_n: Polyline,
    censored_d: Polyline,
    frontier: Frontier,
    samples: Vec<Frontier>,
}

fn points(r: &FitReport, table: &isoflop_core::RunTable) -> Result<Source, String> {
    let samples: Vec<Frontier>;
    let (approach, points_n, points_d, censored_n, censored_d, frontier): (
        &str,
        Polyline,
        Polyline,
        Polyline,
        Polyline,
        Frontier,
    ) = if let Some(a1) = r.approach1.fitted() {
        samples = a1.samples.clone();
        // Sixty of the 1,500 envelope points, evenly spaced in ln C, marked used or censored
        // by the study's size range, as the fit does.
        let lo = table
            .rows
            .iter()
            .map(|o| o.params)
            .fold(f64::INFINITY, f64::min);
        let hi = table.rows.iter().map(|o| o.params).fold(0.0, f64::max);
        let (mut pn, mut pd, mut cn, mut cd) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let step = a1.envelope.len().div_ceil(60).max(1);
        for p in a1.envelope.iter().step_by(step) {
            let censored = p.params <= lo || p.params >= hi;
            let (n, d) = if censored {
                (&mut cn, &mut cd)
            } else {
                (&mut pn, &mut pd)
            };
            n.push((p.flops, p.params));
            d.push((p.flops, p.tokens));
        }
        ("Approach 1", pn, pd, cn, cd, a1.frontier)
    } else if let Some(a2) = r.approach2.fitted() {
        samples = a2.samples.clone();
        let ok: Vec<_> = a2.budgets.iter().filter(|b| b.refused.is_none()).collect();
        (
            "Approach 2",
            ok.iter()
                .map(|b| (b.flops, b.optimal_params.unwrap_or(f64::NAN)))
                .collect(),
            ok.iter()
                .map(|b| (b.flops, b.optimal_tokens.unwrap_or(f64::NAN)))
                .collect(),
            Vec::new(),
            Vec::new(),
            a2.frontier,
        )
    } else if let Some(law) = law3(r) {
        samples = r
            .approach3
            .fitted()
            .map(|f| f.samples.iter().map(|l| l.frontier()).collect())
            .unwrap_or_default();
        // The closed form is a power law too.
        let fr = law.frontier();
        (
            "Approach 3",
            Vec::new(),
            Vec::new(),
            Vec::new(),
            Vec::new(),
            fr,
        )
    } else {
        return Err("Figure 2 needs at least one fitted approach".into());
    };
    Ok(Source {
        approach,
        points_n,
        points_d,
        censored_n,
        censored_d,
        frontier,
        samples,
    })
}

/// One panel of Figure 2: the frontier, its band and its projection to `target_flops`.
fn panel(
    src: &Source,
    quantity: &str,
    pts: Polyline,
    censored: Polyline,
    f: &dyn Fn(&Frontier, f64) -> f64,
    x: Range,
    target_flops: f64,
) -> Projection {
    let (frontier, samples, approach) = (&src.frontier, &src.samples, src.approach);
    let grid = logspace(x.lo * 2.0, x.hi / 2.0, 100);
    let line: Polyline = grid.iter().map(|&c| (c, f(frontier, c))).collect();
    let projected = f(frontier, target_flops);
    let band_at =
        |c: f64| isoflop_fit::stats::percentile_interval(samples.iter().map(|s| f(s, c)), 0.95);
    let band = (samples.len() >= 20)
        .then(|| {
            let ivs: Vec<(f64, isoflop_fit::stats::Interval)> = grid
                .iter()
                .filter_map(|&c| band_at(c).map(|i| (c, i)))
                .collect();
            (
                ivs.iter().map(|(c, i)| (*c, i.lo)).collect::<Polyline>(),
                ivs.iter().map(|(c, i)| (*c, i.hi)).collect::<Polyline>(),
            )
        })
        .filter(|(lo, _)| lo.len() >= 2);
    let interval = (samples.len() >= 20)
        .then(|| band_at(target_flops))
        .flatten()
        .map(|i| (i.lo, i.hi));
    let y = Range::of(
        line.iter()
            .map(|p| p.1)
            .chain(pts.iter().map(|p| p.1))
            .chain(censored.iter().map(|p| p.1))
            .chain(interval.iter().flat_map(|i| [i.0, i.1])),
    )
    .expect("finite line")
    .log_pad(3.0);
    Projection {
        quantity: quantity.into(),
        approach: approach.into(),
        points: pts,
        censored,
        line,
        target_flops,
        projected,
        label: match interval {
            Some((lo, hi)) => format!(
                "{} ({}-{})",
                short_count(projected),
                short_count(lo),
                short_count(hi)
            ),
            None => short_count(projected),
        },
        band,
        interval,
        x,
        y,
    }
}
