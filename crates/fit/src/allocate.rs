//! Allocation: from a fitted law, the compute-optimal model for a FLOP budget, the budget
//! and tokens for a model size, or the compute that reaches a target loss, with bootstrap
//! intervals.

use crate::error::FitError;
use crate::frontier::Frontier;
use crate::parametric::ParametricLaw;
use crate::stats::{percentile_interval, Interval};

/// What to allocate for.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A training budget in FLOPs.
    Flops(f64),
    /// A model size in parameters: the budget at which it is optimal.
    Params(f64),
    /// A loss to reach: the smallest compute-optimal budget that reaches it.
    Loss(f64),
}

pub use crate::law_file::{LawFormat, LawSet, Sampled, LAW_FORMAT};

/// An allocation more than this many decades of FLOPs beyond the fitted runs warns.
pub const EXTRAPOLATION_WARN_DECADES: f64 = 3.0;

/// The training FLOPs of Chinchilla's runs as digitised by Epoch AI (245 points in
/// ../shared/data: 1.40e18 to 1.30e22), for the presets fitted to them.
const CHINCHILLA_FLOPS: [f64; 2] = [1.4e18, 1.3e22];

impl LawSet {
    /// A built-in law: `chinchilla`, `chinchilla-unrounded`, `epoch`, `muennighoff2023` (the
    /// data-constrained law; its Chinchilla part serves plain allocations) or `kaplan2020`.
    ///
    /// # Errors
    /// [`FitError::InvalidOption`] for another name, listing [`LawSet::PRESETS`].
    ///
    /// # Example
    /// ```
    /// let laws = isoflop_fit::LawSet::preset("chinchilla").unwrap();
    /// assert_eq!(laws.approach3.unwrap().estimate.alpha, 0.34);
    /// assert!(isoflop_fit::LawSet::preset("gpt5").is_err());
    /// ```
    pub fn preset(name: &str) -> Result<LawSet, FitError> {
        let (law, source) = match name {
            "chinchilla" => (
                ParametricLaw::CHINCHILLA,
                "Hoffmann et al. 2022, eq. 10 as printed",
            ),
            "chinchilla-unrounded" => (
                ParametricLaw::CHINCHILLA_UNROUNDED,
                "Hoffmann et al. 2022, unrounded exponents and E from the paper's source",
            ),
            "epoch" => (
                ParametricLaw::EPOCH_2024,
                "Besiroglu et al. 2024 (Epoch AI), Chinchilla scaling: a replication attempt",
            ),
            "muennighoff2023" => {
                let dc = crate::data_constrained::DataConstrainedLaw::muennighoff2023();
                return Ok(LawSet {
                    format: crate::allocate::LawFormat::default(),
                    source: format!("preset '{name}': Muennighoff et al. 2023, Scaling Data-Constrained Language Models (released fit)"),
                    approach1: None,
                    approach2: None,
                    approach3: Some(Sampled { estimate: dc.base, samples: Vec::new() }),
                    fitted_flops: None,
                    data_constrained: Some(Sampled { estimate: dc, samples: Vec::new() }),
                    kaplan: None,
                    residuals: Vec::new(),
                    published: None,
                });
            }
            "kaplan2020" => {
                return Ok(LawSet {
                    format: crate::allocate::LawFormat::default(),
                    source: format!(
                        "preset '{name}': Kaplan et al. 2020, eq. 1.5 (N without embeddings)"
                    ),
                    kaplan: Some(crate::kaplan::KaplanLaw::KAPLAN_2020),
                    ..LawSet::default()
                });
            }
            _ => {
                return Err(FitError::InvalidOption(format!(
                    "unknown preset '{name}'; choose one of {}",
                    LawSet::PRESETS.join(", ")
                )))
            }
        };
        Ok(LawSet {
            format: crate::allocate::LawFormat::default(),
            source: format!("preset '{name}': {source}"),
            approach1: None,
            approach2: None,
            approach3: Some(Sampled {
                estimate: law,
                samples: Vec::new(),
            }),
            fitted_flops: Some(CHINCHILLA_FLOPS),
            data_constrained: None,
            kaplan: None,
            residuals: Vec::new(),
            published: (name == "epoch").then(|| {
                let iv = |lo: f64, hi: f64| Interval {
                    lo,
                    hi,
                    level: 0.95,
                };
                (
                    vec![
                        ("E".to_string(), iv(1.769, 1.871)),
                        ("A".to_string(), iv(285.0, 744.0)),
                        ("B".to_string(), iv(1042.0, 5810.0)),
                        ("alpha".to_string(), iv(0.317, 0.373)),
                        ("beta".to_string(), iv(0.331, 0.415)),
                    ],
                    "Besiroglu et al. 2024, their 95% bootstrap intervals".to_string(),
                )
            }),
        })
    }

    /// A warning when `flops` lies more than [`EXTRAPOLATION_WARN_DECADES`] decades outside
    /// the FLOPs of the fitted runs, naming how many.
    pub fn extrapolation_warning(&self, flops: f64) -> Option<String> {
        let [lo, hi] = self.fitted_flops?;
        let (decades, side) = if flops > hi {
            ((flops / hi).log10(), "above the largest")
        } else if flops < lo {
            ((lo / flops).log10(), "below the smallest")
        } else {
            return None;
        };
        (decades > EXTRAPOLATION_WARN_DECADES).then(|| {
            format!(
                "{flops:.3e} FLOPs is {decades:.1} decades {side} fitted run ({:.3e}); this allocation is an extrapolation that far",
                if flops > hi { hi } else { lo }
            )
        })
    }

    /// The names [`LawSet::preset`] accepts.
    pub const PRESETS: [&'static str; 5] = [
        "chinchilla",
        "chinchilla-unrounded",
        "epoch",
        "muennighoff2023",
        "kaplan2020",
    ];
}

/// The optimal model for one target by one approach.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Allocation {
    /// "approach1", "approach2" or "approach3".
    pub approach: String,
    /// Training FLOPs.
    pub flops: f64,
    /// N, parameters.
    pub params: f64,
    /// D, tokens. For Approaches 1 and 2 this comes from the fitted D_opt power law, as in the
    /// paper, so 6ND need not equal the FLOPs; see `tokens_6nd`.
    pub tokens: f64,
    /// C / (6N): the tokens that spend exactly `flops` on `params`.
    pub tokens_6nd: f64,
    /// D / N.
    pub tokens_per_param: f64,
    /// Predicted loss (Approaches 1 and 2: the Approach 3 law at their N and D, where one
    /// was fitted).
    pub loss: Option<f64>,
    /// Bootstrap intervals (of the parameters' uncertainty: the loss interval is where the
    /// law's mean loss lies).
    pub intervals: Option<AllocationIntervals>,
    /// Approach 3: a 95% (or `level`) prediction interval of the loss a run trained so
    /// would reach: the bootstrap laws plus the fitted runs' scatter.
    #[serde(default)]
    pub loss_prediction: Option<Interval>,
    /// Approach 3 at a FLOP budget: what training at either end of the N_opt interval
    /// instead of at N_opt costs.
    #[serde(default)]
    pub misallocation: Vec<Misallocation>,
}

/// The cost of training at `params` instead of at N_opt, on the same budget.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Misallocation {
    /// The model size trained.
    pub params: f64,
    /// The loss it reaches on the budget (D = C/(6N)).
    pub loss: f64,
    /// Its loss minus the optimum's.
    pub extra_loss: f64,
    /// The budget with which the compute-optimal model reaches the same loss.
    pub optimal_flops: f64,
    /// The compute lost: the budget minus `optimal_flops`.
    pub flops_lost: f64,
    /// `flops_lost` as a share of the budget.
    pub share_lost: f64,
}

/// What training `law`'s model at `params` instead of at N_opt costs on the budget `flops`.
pub fn misallocation(law: &ParametricLaw, flops: f64, params: f64) -> Option<Misallocation> {
    let loss = law.loss(params, flops / (6.0 * params));
    let n_opt = law.optimal_params(flops);
    let best = law.loss(n_opt, flops / (6.0 * n_opt));
    let optimal_flops = if loss <= best {
        flops
    } else {
        solve_decreasing(
            |c| law.loss(law.optimal_params(c), law.optimal_tokens(c)),
            loss,
        )?
    };
    Some(Misallocation {
        params,
        loss,
        extra_loss: loss - best,
        optimal_flops,
        flops_lost: flops - optimal_flops,
        share_lost: (flops - optimal_flops) / flops,
    })
}

/// Intervals of an allocation.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AllocationIntervals {
    /// Samples used.
    pub samples: usize,
    /// FLOPs (for Params and Loss targets).
    pub flops: Interval,
    /// Parameters.
    pub params: Interval,
    /// Tokens.
    pub tokens: Interval,
    /// Loss, where predicted.
    pub loss: Option<Interval>,
}

/// (flops, params, tokens, loss) for one law.
type Point = (f64, f64, f64, Option<f64>);

/// Finds C with f(C) = target by bisection in ln C over [1, 1e60], for f decreasing in C.
fn solve_decreasing(f: impl Fn(f64) -> f64, target: f64) -> Option<f64> {
    let (mut lo, mut hi) = (0.0f64, 60.0 * std::f64::consts::LN_10);
    let g = |x: f64| f(x.exp()) - target;
    if !(g(lo) > 0.0 && g(hi) < 0.0) {
        return None;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if g(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some((0.5 * (lo + hi)).exp())
}

fn parametric_point(law: &ParametricLaw, target: Target) -> Option<Point> {
    let flops = match target {
        Target::Flops(c) => c,
        Target::Params(n) => 6.0 * (n / law.g()).powf(1.0 / law.params_exponent()),
        Target::Loss(l) => {
            if l <= law.e {
                return None;
            }
            solve_decreasing(
                |c| law.loss(law.optimal_params(c), law.optimal_tokens(c)),
                l,
            )?
        }
    };
    let (n, d) = match target {
        Target::Params(n) => (n, flops / (6.0 * n)),
        _ => (law.optimal_params(flops), law.optimal_tokens(flops)),
    };
    Some((flops, n, d, Some(law.loss(n, d))))
}

fn frontier_point(
    fr: &Frontier,
    loss_law: Option<&ParametricLaw>,
    target: Target,
) -> Option<Point> {
    let flops = match target {
        Target::Flops(c) => c,
        Target::Params(n) => fr.flops_for_params(n),
        Target::Loss(l) => {
            let law = loss_law?;
            solve_decreasing(|c| law.loss(fr.optimal_params(c), fr.optimal_tokens(c)), l)?
        }
    };
    let n = match target {
        Target::Params(n) => n,
        _ => fr.optimal_params(flops),
    };
    let d = fr.optimal_tokens(flops);
    Some((flops, n, d, loss_law.map(|l| l.loss(n, d))))
}

/// The prediction interval of the loss at `point`'s N and D: each bootstrap law's loss
/// there times exp of a residual of the fitted runs (seeded, one per law); with no laws,
/// the point law times each residual. `None` without residuals.
fn loss_prediction(
    laws: &LawSet,
    samples: &[ParametricLaw],
    point: Point,
    level: f64,
) -> Option<Interval> {
    if laws.residuals.is_empty() {
        return None;
    }
    let (_, n, d, loss) = point;
    let r = &laws.residuals;
    let draws: Vec<f64> = if samples.is_empty() {
        let l = loss?;
        r.iter().map(|x| l * x.exp()).collect()
    } else {
        let mut rng = isoflop_core::Rng::stream(0x9e37_79b9, 1);
        samples
            .iter()
            .map(|l| l.loss(n, d) * r[rng.below(r.len())].exp())
            .collect()
    };
    percentile_interval(draws, level)
}

fn build(approach: &str, point: Point, samples: &[Point], level: f64) -> Allocation {
    let (flops, params, tokens, loss) = point;
    let intervals = if samples.len() >= 2 {
        let iv = |f: &dyn Fn(&Point) -> f64| percentile_interval(samples.iter().map(f), level);
        match (iv(&|p| p.0), iv(&|p| p.1), iv(&|p| p.2)) {
            (Some(f), Some(n), Some(d)) => Some(AllocationIntervals {
                samples: samples.len(),
                flops: f,
                params: n,
                tokens: d,
                loss: if samples.iter().all(|p| p.3.is_some()) {
                    iv(&|p| p.3.expect("checked"))
                } else {
                    None
                },
            }),
            _ => None,
        }
    } else {
        None
    };
    Allocation {
        approach: approach.to_string(),
        flops,
        params,
        tokens,
        tokens_6nd: flops / (6.0 * params),
        tokens_per_param: tokens / params,
        loss,
        intervals,
        loss_prediction: None,
        misallocation: Vec::new(),
    }
}

/// Allocates for `target` by every approach in `laws`, with `level` intervals from the
/// bootstrap samples.
///
/// # Errors
/// [`FitError::InvalidOption`] for a non-positive or non-finite target, or when no law
/// can reach the target (a loss at or below the law's E, for instance).
///
/// # Example
/// ```
/// use isoflop_fit::{allocate, LawSet, Target};
/// // Epoch AI's refit of Chinchilla at Gopher's budget: about 72B parameters.
/// let laws = LawSet::preset("epoch").unwrap();
/// let a = &allocate(&laws, Target::Flops(5.76e23), 0.95).unwrap()[0];
/// assert!((a.params / 72e9 - 1.0).abs() < 0.03);
/// assert!((a.tokens_per_param - 18.0).abs() < 1.0);
/// ```
pub fn allocate(laws: &LawSet, target: Target, level: f64) -> Result<Vec<Allocation>, FitError> {
    let v = match target {
        Target::Flops(v) | Target::Params(v) | Target::Loss(v) => v,
    };
    if !(v.is_finite() && v > 0.0) {
        return Err(FitError::InvalidOption(format!(
            "the target must be a positive finite number, got {v}"
        )));
    }
    let law3 = laws.approach3.as_ref().map(|s| &s.estimate);
    let mut out = Vec::new();
    let mut unreachable = Vec::new();
    for (name, fr) in [
        ("approach1", &laws.approach1),
        ("approach2", &laws.approach2),
    ] {
        if let Some(fr) = fr {
            match frontier_point(&fr.estimate, law3, target) {
                Some(p) => {
                    let samples: Vec<Point> = fr
                        .samples
                        .iter()
                        .filter_map(|s| frontier_point(s, law3, target))
                        .collect();
                    let mut a = build(name, p, &samples, level);
                    // The loss here is the Approach 3 point estimate at this frontier's
                    // samples: it carries none of that law's own uncertainty, so no interval.
                    if let Some(i) = a.intervals.as_mut() {
                        i.loss = None;
                    }
                    out.push(a);
                }
                None => unreachable.push(name),
            }
        }
    }
    if let Some(s3) = &laws.approach3 {
        match parametric_point(&s3.estimate, target) {
            Some(p) => {
                let samples: Vec<Point> = s3
                    .samples
                    .iter()
                    .filter_map(|l| parametric_point(l, target))
                    .collect();
                let mut a = build("approach3", p, &samples, level);
                a.loss_prediction = loss_prediction(laws, &s3.samples, p, level);
                if let (Target::Flops(c), Some(i)) = (target, a.intervals.as_ref()) {
                    a.misallocation = [i.params.lo, i.params.hi]
                        .iter()
                        .filter_map(|&n| misallocation(&s3.estimate, c, n))
                        .collect();
                }
                out.push(a);
            }
            None => unreachable.push("approach3"),
        }
    }
    if out.is_empty() {
        let why = match (target, law3) {
            (Target::Loss(l), Some(law)) if l <= law.e => format!(
                "loss {l} is at or below the irreducible loss E = {:.4}",
                law.e
            ),
            (Target::Loss(_), None) => {
                "a loss target needs an Approach 3 law to predict loss".to_string()
            }
            _ => format!("no law reaches the target ({})", unreachable.join(", ")),
        };
        return Err(FitError::InvalidOption(why));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
