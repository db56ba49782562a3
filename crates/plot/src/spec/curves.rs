//! Figure 1's data: the training curves, the envelope and its thirds' power laws.

use super::*;

/// Figure 1 from a fit (needs training curves: Approach 1).
pub fn training_curves(
    r: &FitReport,
    table: &isoflop_core::RunTable,
) -> Result<TrainingCurves, String> {
    let a1 = r.approach1.fitted().ok_or("Figure 1 needs training curves (a run column with several rows per run); this table has none, or Approach 1 could not be fitted")?;
    let curves: Vec<(String, Vec<isoflop_core::Observation>)> = table
        .curves()
        .into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .collect();
    let runs: Vec<RunCurve> = curves
        .iter()
        .map(|(run, v)| RunCurve {
            run: run.clone(),
            params: v[v.len() - 1].params,
            points: v.iter().map(|o| (o.flops, o.loss)).collect(),
        })
        .collect();
    let smooth: Vec<RunCurve> = curves
        .iter()
        .filter_map(|(run, v)| {
            Some(RunCurve {
                run: run.clone(),
                params: v[v.len() - 1].params,
                points: isoflop_fit::envelope::smoothed(v, r.settings.envelope.smooth_steps)?,
            })
        })
        .collect();
    let x = Range::of(runs.iter().flat_map(|c| c.points.iter().map(|p| p.0)))
        .ok_or("no finite points")?;
    // The loss axis: from the lowest loss to the median first loss, so early warm-up spikes
    // do not flatten the figure.
    let lo = runs
        .iter()
        .flat_map(|c| c.points.iter().map(|p| p.1))
        .fold(f64::INFINITY, f64::min);
    let mut firsts: Vec<f64> = runs.iter().map(|c| c.points[0].1).collect();
    firsts.sort_by(f64::total_cmp);
    let hi = firsts[firsts.len() / 2].max(lo * 1.05);
    let y = Range { lo, hi }.lin_pad(0.04);
    let clip = |pts: &Polyline| -> Polyline {
        pts.iter()
            .copied()
            .filter(|&(a, b)| x.contains(a) && y.contains(b))
            .collect()
    };
    let clip_all = |v: Vec<RunCurve>| -> Vec<RunCurve> {
        v.into_iter()
            .map(|c| RunCurve {
                points: clip(&c.points),
                ..c
            })
            .collect()
    };
    let raw = clip_all(runs);
    let runs = clip_all(smooth);
    let envelope = clip(&a1.envelope.iter().map(|p| (p.flops, p.loss)).collect());
    let grid = logspace(x.lo, x.hi, 100);
    let thirds: Vec<ThirdLine> = a1
        .thirds
        .iter()
        .map(|t| ThirdLine {
            label: ["first third", "middle third", "last third"][t.part.min(2)].to_string(),
            exponent: t.exponent,
            interval: (t.interval.lo, t.interval.hi),
            line: clip(
                &grid
                    .iter()
                    .map(|&c| (c, t.coef * c.powf(t.exponent)))
                    .collect(),
            ),
        })
        .collect();
    let predicted = predicted_lines(r, a1, x, &clip);
    let largest = runs.iter().map(|c| c.params).fold(0.0, f64::max);
    let colour_unit = if largest < 1e6 {
        ("Thousand Parameters".to_string(), 1e3)
    } else {
        ("Million Parameters".to_string(), 1e6)
    };
    let colour = Range::of(runs.iter().map(|c| c.params / colour_unit.1)).ok_or("no runs")?;
    Ok(TrainingCurves {
        runs,
        raw,
        thirds,
        colour_unit,
        envelope,
        predicted,
        x,
        y,
        loss_unit: r.counted.loss_unit.clone(),
        colour,
    })
}

/// The loss each approach's frontier predicts along Figure 1's FLOPs axis, by Approach 3's
/// law (none without it), clipped to the axes.
fn predicted_lines(
    r: &FitReport,
    a1: &isoflop_fit::EnvelopeFit,
    x: Range,
    clip: &dyn Fn(&Polyline) -> Polyline,
) -> Vec<(String, Polyline)> {
    let mut predicted = Vec::new();
    if let Some(law) = law3(r) {
        let grid = logspace(x.lo, x.hi, 200);
        let mut add = |name: &str, f: &dyn Fn(f64) -> (f64, f64)| {
            let pts = clip(
                &grid
                    .iter()
                    .map(|&c| {
                        (c, {
                            let (n, d) = f(c);
                            law.loss(n, d)
                        })
                    })
                    .collect(),
            );
            if pts.len() >= 2 {
                predicted.push((name.to_string(), pts));
            }
        };
        let fr1 = a1.frontier;
        add("Approach 1", &|c| {
            (fr1.optimal_params(c), fr1.optimal_tokens(c))
        });
        if let Some(a2) = r.approach2.fitted() {
            let fr2 = a2.frontier;
            add("Approach 2", &|c| {
                (fr2.optimal_params(c), fr2.optimal_tokens(c))
            });
        }
        add("Approach 3", &|c| {
            (law.optimal_params(c), law.optimal_tokens(c))
        });
    }
    predicted
}

/// The part of each curve to draw so that no stretch is drawn twice: a cooldown branch's
/// curve holds its trunk's rows up to the branch point, as do its sibling branches, so after
/// the first curve of a size the others start at the last point they share with one drawn
/// before them (the curves themselves stay whole in `figures.json`).
pub fn unshared(curves: &[&RunCurve]) -> Vec<Polyline> {
    let mut drawn: Vec<&RunCurve> = Vec::new();
    curves
        .iter()
        .map(|c| {
            let shared = drawn
                .iter()
                .filter(|d| d.params == c.params)
                .map(|d| {
                    d.points
                        .iter()
                        .zip(&c.points)
                        .take_while(|(a, b)| a == b)
                        .count()
                })
                .max()
                .unwrap_or(0);
            drawn.push(c);
            c.points[shared.saturating_sub(1)..].to_vec()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_of_one_trunk_draw_their_shared_prefix_once() {
        let curve = |run: &str, params: f64, pts: &[(f64, f64)]| RunCurve {
            run: run.into(),
            params,
            points: pts.to_vec(),
        };
        let trunk = [(1.0, 5.0), (2.0, 4.0), (3.0, 3.5)];
        let a = curve("a", 10.0, &[trunk[0], trunk[1], (3.0, 3.4)]);
        let b = curve("b", 10.0, &[trunk[0], trunk[1], trunk[2], (4.0, 3.0)]);
        // Another size with the same first points is a different model: drawn whole.
        let c = curve("c", 20.0, &[trunk[0], trunk[1], (3.0, 3.3)]);
        // A shorter branch of the same trunk, wholly inside b: only its last point remains.
        let d = curve("d", 10.0, &[trunk[0], trunk[1], trunk[2]]);
        let got = unshared(&[&a, &b, &c, &d]);
        assert_eq!(got[0], a.points);
        assert_eq!(got[1], vec![trunk[1], trunk[2], (4.0, 3.0)]);
        assert_eq!(got[2], c.points);
        assert_eq!(got[3], vec![trunk[2]]);
        assert!(unshared(&[]).is_empty());
    }
}
