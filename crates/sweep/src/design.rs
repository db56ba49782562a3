//! The designs that fill a sweep (Hoffmann et al. 2022, Hägele et al. 2024, Porian et al.
//! 2024):
//! - IsoFLOP ([`isoflop_design`], Approach 2): for each budget C, sizes log-spaced around the
//!   expected optimum, each trained on D = C / (6N) tokens.
//! - Horizons ([`horizon_design`], Approach 1): each size trained with several cosine
//!   horizons spanning 16x, so the envelope of the curves can be taken.
//! - WSD ([`wsd_branches`]): the points of either design as cooldown branches of one
//!   constant-rate trunk per model.
//! - Learning rates ([`lr_design`]): each size at several peak rates, for the rate that suits
//!   each size (`isoflop lr-fit`).
//! - Replicates ([`replicate`]): any design's runs again at other training seeds.
//!
//! The expected optimum is the Chinchilla rule of thumb, 20 tokens per parameter
//! (N = sqrt(C / 120)). Every shape comes from [`ModelShape::for_params`].

use crate::plan::{PlannedRun, RunDefaults};
use isoflop_core::shape::ModelShape;
use isoflop_core::units::count_sig;

/// The id of a run of `params` and `tokens` (planned for `budget`), its counts written to
/// `sig` significant figures: `c1e12-n2.05M`, `n1.00M-d20.0M`.
fn run_id(params: u64, tokens: u64, budget: Option<f64>, sig: usize) -> String {
    match budget {
        Some(c) => format!("c{c:e}-n{}", count_sig(params as f64, sig)),
        None => format!(
            "n{}-d{}",
            count_sig(params as f64, sig),
            count_sig(tokens as f64, sig)
        ),
    }
    .replace('+', "")
}

/// Makes the ids of `runs` distinct by construction: ids that collide at three significant
/// figures are written again by `id_of` with more (up to 17, which writes any count
/// exactly); runs that still collide (two shapes of the same size) get their shape, then a
/// counter. Returns the renames (old id, new id) in run order.
pub fn distinct_ids(
    runs: &mut [PlannedRun],
    id_of: impl Fn(&PlannedRun, usize) -> String,
) -> Vec<(String, String)> {
    use std::collections::HashMap;
    let before: Vec<String> = runs.iter().map(|r| r.id.clone()).collect();
    let counts = |runs: &[PlannedRun]| {
        let mut c: HashMap<String, usize> = HashMap::new();
        for r in runs {
            *c.entry(r.id.clone()).or_default() += 1;
        }
        c
    };
    for sig in 4..=17 {
        let c = counts(runs);
        if c.values().all(|&n| n == 1) {
            break;
        }
        for r in runs.iter_mut().filter(|r| c[&r.id] > 1) {
            r.id = id_of(r, sig);
        }
    }
    let c = counts(runs);
    for r in runs.iter_mut().filter(|r| c[&r.id] > 1) {
        r.id = format!("{}-{}x{}", r.id, r.layers, r.d_model);
    }
    let c = counts(runs);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in runs.iter_mut().filter(|r| c[&r.id] > 1) {
        let k = seen.entry(r.id.clone()).or_default();
        *k += 1;
        r.id = format!("{}-{k}", r.id);
    }
    before
        .into_iter()
        .zip(runs.iter())
        .filter(|(old, r)| *old != r.id)
        .map(|(old, r)| (old, r.id.clone()))
        .collect()
}

fn planned(shape: ModelShape, tokens: u64, budget: Option<f64>) -> PlannedRun {
    let params = shape.params().total as u64;
    PlannedRun {
        id: run_id(params, tokens, budget, 3),
        layers: shape.layers,
        d_model: shape.d_model,
        heads: shape.heads,
        params,
        tokens,
        budget,
        keep_at_tokens: Vec::new(),
        trunk: None,
        at_tokens: None,
        lr: None,
        seed: None,
    }
}

/// The k-th of n points spread evenly over [-1/2, 1/2] (0 for one point): the exponent
/// that log-spaces n values over a factor around a centre.
fn centred(k: usize, n: usize) -> f64 {
    if n == 1 {
        0.0
    } else {
        k as f64 / (n - 1) as f64 - 0.5
    }
}

/// Sizes log-spaced over [lo, hi] (`n` of them, the shapes distinct), or the notes of
/// those below the smallest model.
fn sizes_between(
    lo: f64,
    hi: f64,
    n: usize,
    vocab: usize,
    d: &RunDefaults,
) -> (Vec<ModelShape>, Vec<String>) {
    let mut shapes = Vec::new();
    let mut notes = Vec::new();
    for k in 0..n {
        let target = if n == 1 {
            lo
        } else {
            lo * (hi / lo).powf(k as f64 / (n - 1) as f64)
        };
        match ModelShape::for_params(target, vocab, d.context, false) {
            Ok(s) if !shapes.contains(&s) => shapes.push(s),
            Ok(_) => {}
            Err(_) => notes.push(format!(
                "size {target:.3e} is below the smallest model; left out"
            )),
        }
    }
    (shapes, notes)
}

/// The id of an lr design's run: its size to `sig` figures and its rate.
fn lr_id(params: u64, lr: f64, sig: usize) -> String {
    format!("n{}-lr{lr:e}", count_sig(params as f64, sig)).replace('+', "")
}

/// The id of the trunk of a model of `params`, its size to `sig` figures.
fn trunk_id(params: u64, sig: usize) -> String {
    format!("n{}-trunk", count_sig(params as f64, sig)).replace('+', "")
}

/// The learning-rate design: `n_sizes` sizes log-spaced over [lo, hi], each trained for
/// `tokens_per_param` tokens per parameter at `rates` peak rates log-spaced over a factor
/// `span` centred on the defaults' rate; `isoflop lr-fit` finds each size's best rate and
/// the power law through them.
#[allow(clippy::too_many_arguments)]
pub fn lr_design(
    lo: f64,
    hi: f64,
    n_sizes: usize,
    rates: usize,
    span: f64,
    tokens_per_param: f64,
    vocab: usize,
    d: &RunDefaults,
) -> (Vec<PlannedRun>, Vec<String>) {
    let (shapes, notes) = sizes_between(lo, hi, n_sizes, vocab, d);
    let mut runs = Vec::new();
    for shape in shapes {
        let n = shape.params().total as f64;
        for k in 0..rates {
            let f = centred(k, rates);
            // Three significant digits: the id and the file say the same rate.
            let lr: f64 = format!("{:.3e}", d.lr * span.powf(f))
                .parse()
                .expect("a number");
            let mut r = planned(shape, (tokens_per_param * n).round() as u64, None);
            r.id = lr_id(r.params, lr, 3);
            r.lr = Some(lr);
            runs.push(r);
        }
    }
    distinct_ids(&mut runs, |r, sig| {
        lr_id(r.params, r.lr.unwrap_or(d.lr), sig)
    });
    (runs, notes)
}

/// Turns the runs of a design into cooldown branches of one constant-rate trunk per model
/// (Hägele et al. 2024; the `wsd` design): each run of horizon H (in whole steps) becomes a
/// branch that forks from its trunk at H minus `cooldown_frac` of H (at least one step) and
/// cools down to H; the trunk trains to the latest branch point and keeps a checkpoint at
/// each. Runs whose branch point would fall inside the trunk's warm-up train on their own
/// (a `wsd` run from step 0); the notes say which.
pub fn wsd_branches(runs: Vec<PlannedRun>, d: &RunDefaults) -> (Vec<PlannedRun>, Vec<String>) {
    let per_step = (d.batch * d.context) as u64;
    let mut out: Vec<PlannedRun> = Vec::new();
    let mut notes = Vec::new();
    let mut shapes: Vec<(usize, usize, usize)> = Vec::new();
    for r in &runs {
        let key = (r.layers, r.d_model, r.heads);
        if !shapes.contains(&key) {
            shapes.push(key);
        }
    }
    // One trunk per model, their ids distinct (two models of nearly one size would
    // share a three-figure id).
    let mut trunk_ids: Vec<PlannedRun> = shapes
        .iter()
        .map(|key| {
            let first = runs
                .iter()
                .find(|r| (r.layers, r.d_model, r.heads) == *key)
                .expect("a run of each shape");
            PlannedRun {
                id: trunk_id(first.params, 3),
                ..first.clone()
            }
        })
        .collect();
    distinct_ids(&mut trunk_ids, |r, sig| trunk_id(r.params, sig));
    for (key, tid) in shapes.into_iter().zip(trunk_ids.into_iter().map(|t| t.id)) {
        let mine: Vec<&PlannedRun> = runs
            .iter()
            .filter(|r| (r.layers, r.d_model, r.heads) == key)
            .collect();
        let point = |r: &PlannedRun| {
            let steps = d.steps(r.tokens);
            let cool = d.cooldown_steps(steps);
            (steps, steps - cool)
        };
        let last = mine.iter().map(|r| point(r).1).max().unwrap_or(0);
        let warmup = d.warmup_steps(last);
        let mut trunk = PlannedRun {
            id: tid,
            tokens: last * per_step,
            budget: None,
            keep_at_tokens: Vec::new(),
            trunk: None,
            at_tokens: None,
            ..mine[0].clone()
        };
        let mut branches = Vec::new();
        for r in mine {
            let (steps, at) = point(r);
            let mut b = PlannedRun {
                tokens: steps * per_step,
                ..r.clone()
            };
            if at < warmup.max(1) {
                notes.push(format!(
                    "{}: its branch point (step {at}) falls inside the trunk's warm-up of {warmup} steps; it trains on its own",
                    r.id
                ));
                out.push(b);
                continue;
            }
            b.trunk = Some(trunk.id.clone());
            b.at_tokens = Some(at * per_step);
            if !trunk.keep_at_tokens.contains(&(at * per_step)) {
                trunk.keep_at_tokens.push(at * per_step);
            }
            branches.push(b);
        }
        if !branches.is_empty() {
            trunk.keep_at_tokens.sort_unstable();
            trunk.tokens = *trunk.keep_at_tokens.last().expect("a branch");
            out.push(trunk);
            out.extend(branches);
        }
    }
    (out, notes)
}

/// `seeds` replicates of every run, the k-th trained with seed `base + k`: replicate 0 is
/// `runs` unchanged; replicate k > 0 appends `-s{k}` to each id and to each branch's trunk,
/// so a replicate's branches fork from its own trunk. Replicates are what narrows a study
/// whose exponents move with the training seed (docs/results.md, "Our own default study").
pub fn replicate(runs: Vec<PlannedRun>, seeds: usize, base: u64) -> Vec<PlannedRun> {
    let mut out = runs.clone();
    for k in 1..seeds {
        let tag = |id: &str| format!("{id}-s{k}");
        out.extend(runs.iter().map(|r| PlannedRun {
            id: tag(&r.id),
            trunk: r.trunk.as_deref().map(tag),
            seed: Some(base + k as u64),
            ..r.clone()
        }));
    }
    out
}

/// The IsoFLOP design: for each budget, `sizes` targets log-spaced over a factor `spread`
/// centred on N = sqrt(C / 120), each with D = C / (6N) for the shape's exact N. Targets
/// below the smallest model, runs shorter than 20 steps, and shapes repeated within a budget
/// are left out; the returned notes say which.
pub fn isoflop_design(
    budgets: &[f64],
    sizes: usize,
    spread: f64,
    vocab: usize,
    d: &RunDefaults,
) -> (Vec<PlannedRun>, Vec<String>) {
    isoflop_design_on(budgets, sizes, spread, vocab, d, false)
}

/// [`isoflop_design`], with `ladder`: each target size snapped to the nearest of one
/// ladder of sizes shared by every budget (powers of the step between a budget's sizes,
/// `spread^(1/(sizes-1))`), so that budgets train the same models: what lets the `wsd`
/// design branch many budgets' points from one trunk per model.
pub fn isoflop_design_on(
    budgets: &[f64],
    sizes: usize,
    spread: f64,
    vocab: usize,
    d: &RunDefaults,
    ladder: bool,
) -> (Vec<PlannedRun>, Vec<String>) {
    let step = if sizes > 1 {
        spread.powf(1.0 / (sizes - 1) as f64)
    } else {
        1.0
    };
    let snap = |t: f64| {
        if ladder && step > 1.0 {
            step.powf((t.ln() / step.ln()).round())
        } else {
            t
        }
    };
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    let min_tokens = 20 * (d.batch * d.context) as u64;
    for &c in budgets {
        let centre = (c / 120.0).sqrt();
        let mut seen = Vec::new();
        for k in 0..sizes {
            let f = centred(k, sizes);
            let target = snap(centre * spread.powf(f));
            let Ok(shape) = ModelShape::for_params(target, vocab, d.context, false) else {
                notes.push(format!(
                    "budget {c:.1e}: size {target:.3e} is below the smallest model; left out"
                ));
                continue;
            };
            if seen.contains(&shape) {
                continue;
            }
            seen.push(shape);
            let tokens = (c / (6.0 * shape.params().total as f64)).round() as u64;
            if tokens < min_tokens {
                notes.push(format!(
                    "budget {c:.1e}: {} parameters would train for fewer than 20 steps; left out",
                    shape.params().total
                ));
                continue;
            }
            runs.push(planned(shape, tokens, Some(c)));
        }
    }
    distinct_ids(&mut runs, |r, sig| {
        run_id(r.params, r.tokens, r.budget, sig)
    });
    (runs, notes)
}

/// The horizons design: `n_sizes` sizes log-spaced over [lo, hi], each trained for
/// `horizons` token horizons spanning 16x around 20 tokens per parameter.
pub fn horizon_design(
    lo: f64,
    hi: f64,
    n_sizes: usize,
    horizons: usize,
    vocab: usize,
    d: &RunDefaults,
) -> (Vec<PlannedRun>, Vec<String>) {
    let (shapes, notes) = sizes_between(lo, hi, n_sizes, vocab, d);
    let mut runs = Vec::new();
    for shape in shapes {
        let n = shape.params().total as f64;
        for h in 0..horizons {
            let f = centred(h, horizons);
            let tokens = (20.0 * n * 16f64.powf(f)).round() as u64;
            runs.push(planned(shape, tokens, None));
        }
    }
    distinct_ids(&mut runs, |r, sig| {
        run_id(r.params, r.tokens, r.budget, sig)
    });
    (runs, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Sweep;
    use std::path::Path;

    #[test]
    fn isoflop_design_spends_each_budget_on_every_size() {
        let d = RunDefaults::default();
        let (runs, notes) = isoflop_design(&[1e12, 3e12, 1e13], 5, 8.0, 256, &d);
        assert!(runs.len() >= 13, "{runs:?} {notes:?}");
        for r in &runs {
            let c = r.budget.unwrap();
            // 6ND within rounding of the budget.
            assert!(
                (6.0 * r.params as f64 * r.tokens as f64 / c - 1.0).abs() < 1e-3,
                "{r:?}"
            );
            let shape =
                ModelShape::new(r.layers, r.d_model, r.heads, 256, d.context, false).unwrap();
            assert_eq!(shape.params().total as u64, r.params);
        }
        // Sizes at a budget bracket the 20-tokens-per-parameter optimum.
        let at: Vec<&PlannedRun> = runs.iter().filter(|r| r.budget == Some(1e13)).collect();
        let centre = (1e13f64 / 120.0).sqrt();
        assert!(
            at.iter().any(|r| (r.params as f64) < centre)
                && at.iter().any(|r| (r.params as f64) > centre)
        );
        let ids: std::collections::HashSet<_> = runs.iter().map(|r| &r.id).collect();
        assert_eq!(ids.len(), runs.len());
    }

    #[test]
    fn lr_design_tries_each_size_at_rates_spanning_the_factor() {
        let d = RunDefaults::default();
        let (runs, _) = lr_design(1e5, 1e6, 3, 5, 16.0, 20.0, 256, &d);
        assert_eq!(runs.len(), 15);
        let first: Vec<&PlannedRun> = runs.iter().filter(|r| r.params == runs[0].params).collect();
        let (lo, hi) = (first[0].lr.unwrap(), first[4].lr.unwrap());
        assert!((hi / lo / 16.0 - 1.0).abs() < 2e-3 && (first[2].lr.unwrap() - d.lr).abs() < 1e-12);
        assert!(runs.iter().all(|r| r.tokens == (20 * r.params)));
        let ids: std::collections::HashSet<_> = runs.iter().map(|r| &r.id).collect();
        assert_eq!(ids.len(), 15);
    }

    #[test]
    fn replicates_fork_from_their_own_trunks_at_their_own_seeds() {
        let d = RunDefaults::default();
        let (runs, _) = isoflop_design(&[1e13, 3e13], 5, 8.0, 256, &d);
        let (one, _) = wsd_branches(runs, &d);
        let three = replicate(one.clone(), 3, 7);
        assert_eq!(three.len(), 3 * one.len());
        // Replicate 0 is the plan itself.
        assert_eq!(three[..one.len()], one[..]);
        let s = Sweep {
            name: "r".into(),
            results: "runs".into(),
            data: None,
            vocab: 256,
            defaults: d.clone(),
            command: None,
            slurm: Default::default(),
            runs: three.clone(),
        };
        s.check(Path::new("r.toml")).unwrap();
        assert!(
            (s.total_flops() / 3.0
                - Sweep {
                    runs: one.clone(),
                    ..s.clone()
                }
                .total_flops())
            .abs()
                < 1.0
        );
        for (k, seed) in [(1usize, 8u64), (2, 9)] {
            for (r, o) in three[k * one.len()..(k + 1) * one.len()].iter().zip(&one) {
                assert_eq!(r.id, format!("{}-s{k}", o.id));
                assert_eq!(r.seed, Some(seed));
                assert_eq!(r.trunk, o.trunk.as_ref().map(|t| format!("{t}-s{k}")));
                assert_eq!(
                    (r.params, r.tokens, r.at_tokens, r.budget),
                    (o.params, o.tokens, o.at_tokens, o.budget)
                );
            }
        }
        // A branch whose trunk trains at another seed is refused.
        let mut bad = s.clone();
        let i = bad.runs.iter().position(|r| r.trunk.is_some()).unwrap();
        bad.runs[i].seed = Some(99);
        let e = bad.check(Path::new("r.toml")).unwrap_err().to_string();
        assert!(
            e.contains("another seed") && e.contains(&bad.runs[i].id),
            "{e}"
        );
    }

    #[test]
    fn horizon_design_spans_sixteen_x() {
        let (runs, _) = horizon_design(2e5, 5e6, 4, 4, 256, &RunDefaults::default());
        assert_eq!(runs.len(), 16);
        let first: Vec<&PlannedRun> = runs.iter().filter(|r| r.params == runs[0].params).collect();
        let ratio = first.last().unwrap().tokens as f64 / first[0].tokens as f64;
        assert!((ratio - 16.0).abs() < 0.01, "{ratio}");
    }

    #[test]
    fn a_wsd_plan_spends_trunks_plus_cooldowns_and_forks_on_kept_checkpoints() {
        let d = RunDefaults::default();
        let per_step = (d.batch * d.context) as u64;
        for (runs, _) in [
            horizon_design(1e5, 2e6, 4, 5, 256, &d),
            isoflop_design(&[1e13, 3e13, 1e14], 5, 8.0, 256, &d),
        ] {
            let points = runs.len();
            let (planned, notes) = wsd_branches(runs.clone(), &d);
            assert!(notes.is_empty(), "{notes:?}");
            let s = Sweep {
                name: "w".into(),
                results: "runs".into(),
                data: None,
                vocab: 256,
                defaults: d.clone(),
                command: None,
                slurm: Default::default(),
                runs: planned.clone(),
            };
            s.check(Path::new("w.toml")).unwrap();
            let trunks: Vec<&PlannedRun> = planned.iter().filter(|r| r.is_trunk()).collect();
            let branches: Vec<&PlannedRun> = planned.iter().filter(|r| r.trunk.is_some()).collect();
            assert_eq!(branches.len(), points);
            assert_eq!(trunks.len() + branches.len(), planned.len());
            // Spent: each trunk once, plus each branch's cooldown, counted by hand.
            let by_hand: f64 = trunks
                .iter()
                .map(|t| 6.0 * t.params as f64 * t.tokens as f64)
                .chain(
                    branches
                        .iter()
                        .map(|b| 6.0 * b.params as f64 * (b.tokens - b.at_tokens.unwrap()) as f64),
                )
                .sum();
            assert!((s.total_flops() / by_hand - 1.0).abs() < 1e-12);
            // Represented: the points as planned (whole steps), every one of them.
            let points_flops: f64 = runs
                .iter()
                .map(|r| 6.0 * r.params as f64 * (d.steps(r.tokens) * per_step) as f64)
                .sum();
            assert!((s.represented_flops() / points_flops - 1.0).abs() < 1e-12);
            assert!(s.total_flops() < s.represented_flops());
            for b in &branches {
                let t = trunks
                    .iter()
                    .find(|t| Some(&t.id) == b.trunk.as_ref())
                    .unwrap();
                let at = b.at_tokens.unwrap();
                // On a kept checkpoint, at a whole step, the cooldown the last fifth.
                assert!(t.keep_at_tokens.contains(&at) && at % per_step == 0 && at <= t.tokens);
                let (steps, at_step) = (b.tokens / per_step, at / per_step);
                assert_eq!(b.tokens % per_step, 0);
                assert_eq!(steps - at_step, (0.2 * steps as f64).round() as u64);
                assert_eq!(
                    (t.layers, t.d_model, t.heads),
                    (b.layers, b.d_model, b.heads)
                );
            }
            // Each trunk ends at its last branch point and keeps nothing else.
            for t in &trunks {
                assert_eq!(Some(&t.tokens), t.keep_at_tokens.last());
                let used: std::collections::BTreeSet<u64> = branches
                    .iter()
                    .filter(|b| b.trunk.as_ref() == Some(&t.id))
                    .map(|b| b.at_tokens.unwrap())
                    .collect();
                assert_eq!(used.into_iter().collect::<Vec<_>>(), t.keep_at_tokens);
            }
        }
    }
}
