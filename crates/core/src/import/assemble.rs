//! From a run's scalars to its curve: the keys chosen ([`Keys`], with defaults), the
//! parameters found, each step's last values, tokens interpolated, finished or not.

use super::{defaults, Format, ImportError, ImportOptions, ImportedRow, ImportedRun, RawLog};
use std::collections::BTreeMap;

/// The first of `names` among `keys` (exactly), or the one the user named (an error if
/// absent, naming the keys there are).
fn find_key(
    log: &RawLog,
    chosen: Option<&str>,
    names: &[&str],
    option: &str,
) -> Result<Option<u32>, ImportError> {
    if let Some(k) = chosen {
        return match log.keys.iter().position(|x| x == k) {
            Some(i) => Ok(Some(i as u32)),
            None => Err(ImportError::new(
                &log.source,
                "",
                format!(
                    "run '{}': {option} {}: no such metric; its metrics: {}",
                    crate::error::clip(&log.name),
                    crate::error::clip(k),
                    crate::error::list(&log.keys, ", ")
                ),
            )),
        };
    }
    Ok(names
        .iter()
        .find_map(|n| log.keys.iter().position(|x| x == n))
        .map(|i| i as u32))
}

fn config_number(config: &BTreeMap<String, serde_json::Value>, names: &[&str]) -> Option<f64> {
    names.iter().find_map(|n| {
        config.get(*n).and_then(|v| match v {
            serde_json::Value::Number(x) => x.as_f64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    })
}

/// The metrics chosen for a run (indices into [`RawLog::keys`]) and its parameters.
struct Chosen {
    loss: u32,
    eval: Option<u32>,
    tokens: Option<u32>,
    lr: Option<u32>,
    params: f64,
}

/// The error of run `log`: `run 'NAME': problem`, naming its source.
fn run_error(log: &RawLog, problem: String) -> ImportError {
    ImportError::new(
        &log.source,
        "",
        format!("run '{}': {problem}", crate::error::clip(&log.name)),
    )
}

fn choose(log: &RawLog, opts: &ImportOptions) -> Result<Chosen, ImportError> {
    let k = &opts.keys;
    let loss =
        find_key(log, k.loss.as_deref(), defaults::LOSS, "--loss-key")?.ok_or_else(|| {
            run_error(
                log,
                format!(
                    "no training loss among its metrics ({}); name it with --loss-key",
                    crate::error::list(&log.keys, ", ")
                ),
            )
        })?;
    let eval = find_key(
        log,
        k.eval_loss.as_deref(),
        defaults::EVAL_LOSS,
        "--eval-loss-key",
    )?
    .filter(|&e| e != loss);
    let tokens = find_key(log, k.tokens.as_deref(), defaults::TOKENS, "--tokens-key")?;
    let lr = find_key(log, k.lr.as_deref(), defaults::LR, "--lr-key")?;
    let params_names: Vec<&str> = match k.params.as_deref() {
        Some(p) => vec![p],
        None => defaults::PARAMS.to_vec(),
    };
    let logged_params = find_key(log, None, &params_names, "")
        .ok()
        .flatten()
        .and_then(|id| log.points.iter().find(|p| p.key == id).map(|p| p.value));
    let params = opts
        .params
        .or(opts.model.map(|m| m.params.total as f64))
        .or_else(|| config_number(&log.config, &params_names))
        .or(logged_params)
        .ok_or_else(|| {
            run_error(log, "no parameter count: give --params N or --model-config config.json, or log it as `params` (in the run's config or as a scalar; --params-key names another)".into())
        })?;
    if !(params.is_finite() && params >= 1.0) {
        return Err(run_error(
            log,
            format!("its parameter count {params} is not a positive number"),
        ));
    }
    if tokens.is_none() && opts.tokens_per_step.is_none() {
        return Err(run_error(log, format!(
            "no token count among its metrics (tried {}); name it with --tokens-key, or give --tokens-per-step",
            defaults::TOKENS.join(", ")
        )));
    }
    Ok(Chosen {
        loss,
        eval,
        tokens,
        lr,
        params,
    })
}

/// The last value logged at each step: slots loss, held-out loss, learning rate and the
/// loss's wall time; the token counts; the first loss's wall time; non-finite losses left
/// out.
struct ByStep {
    values: Steps<4>,
    tokens: Steps<1>,
    first_wall: f64,
    non_finite: usize,
}

fn by_step(log: &RawLog, c: &Chosen) -> ByStep {
    let mut out = ByStep {
        values: Steps::default(),
        tokens: Steps::default(),
        first_wall: f64::NAN,
        non_finite: 0,
    };
    for p in &log.points {
        // Seconds count from the first training loss logged (a config scalar may carry a
        // wall time of its own).
        if p.key == c.loss && p.wall.is_finite() && !(out.first_wall <= p.wall) {
            out.first_wall = p.wall;
        }
        let step = p.step.round() as i64;
        let slot = if p.key == c.loss {
            0
        } else if Some(p.key) == c.eval {
            1
        } else if Some(p.key) == c.lr {
            2
        } else {
            if Some(p.key) == c.tokens {
                out.tokens.at(step)[0] = Some(p.value);
            }
            continue;
        };
        if slot == 0 && !p.value.is_finite() {
            out.non_finite += 1;
            continue;
        }
        let row = out.values.at(step);
        row[slot] = Some(p.value);
        if slot == 0 {
            row[3] = Some(p.wall).filter(|w| w.is_finite());
        }
    }
    out
}

/// The curve's rows (steps with a training loss and a positive token count), the last
/// held-out loss at or after the last of them, and how many rows had no tokens.
fn rows(
    s: &ByStep,
    c: &Chosen,
    tokens_per_step: Option<f64>,
) -> (Vec<ImportedRow>, Option<f64>, usize) {
    let known: Vec<(f64, f64)> = s
        .tokens
        .rows
        .iter()
        .filter_map(|(step, t)| t[0].map(|t| (*step as f64, t)))
        .collect();
    let tokens_at = |step: i64| -> Option<f64> {
        if let Some(tps) = tokens_per_step.filter(|_| c.tokens.is_none()) {
            return Some(tps * step as f64);
        }
        if let Some(t) = s.tokens.get(step).and_then(|t| t[0]) {
            return Some(t);
        }
        interpolate(&known, step as f64)
    };
    let last_loss_step = s
        .values
        .rows
        .iter()
        .rev()
        .find(|(_, v)| v[0].is_some())
        .map(|(step, _)| *step);
    let (mut rows, mut final_eval_loss, mut dropped) = (Vec::new(), None, 0usize);
    for &(step, v) in &s.values.rows {
        if let (Some(e), Some(last)) = (v[1], last_loss_step) {
            if step >= last {
                final_eval_loss = Some(e);
            }
        }
        let Some(l) = v[0] else { continue };
        let Some(t) = tokens_at(step).filter(|t| *t >= 1.0) else {
            dropped += 1;
            continue;
        };
        rows.push(ImportedRow {
            step: step.max(0) as u64,
            tokens: t,
            loss: l,
            lr: v[2],
            secs: v[3].map(|w| w - s.first_wall),
            eval_loss: v[1],
        });
    }
    (rows, final_eval_loss, dropped)
}

/// Chooses the keys and the parameters of one run's scalars: its curve, one row per step
/// at which the training loss was logged (the last value where a step was logged twice, as
/// after a resume), tokens from the tokens key (interpolated in steps between the logged
/// ones) or `tokens_per_step` x step, rows of zero tokens left out.
///
/// # Errors
/// [`ImportError`] naming the source and run where no loss key is found, no token count or
/// no parameter count can be had, a named key is absent, or no row is left.
pub fn assemble(
    log: RawLog,
    format: Format,
    opts: &ImportOptions,
) -> Result<ImportedRun, ImportError> {
    let c = choose(&log, opts)?;
    let steps = by_step(&log, &c);
    let (rows, final_eval_loss, dropped_zero) = rows(&steps, &c, opts.tokens_per_step);
    let mut warnings = log.warnings.clone();
    if steps.non_finite > 0 {
        warnings.push(format!(
            "{} non-finite training losses left out",
            steps.non_finite
        ));
    }
    if rows.is_empty() {
        return Err(run_error(
            &log,
            if dropped_zero > 0 {
                "no logged step has a positive token count".into()
            } else {
                format!(
                    "no step logs its training loss '{}'",
                    log.keys[c.loss as usize]
                )
            },
        ));
    }
    let total_steps = opts
        .total_steps
        .or(log.total_steps)
        .or_else(|| config_number(&log.config, defaults::TOTAL_STEPS).map(|s| s as u64));
    let last = rows.last().map(|r| r.step).unwrap_or(0);
    let finished = total_steps.is_none_or(|t| last >= t);
    if !finished {
        warnings.push(format!(
            "unfinished: its last logged step {last} is below its configured {} steps",
            total_steps.unwrap_or(0)
        ));
    }
    let mut used = BTreeMap::new();
    for (what, id) in [
        ("loss", Some(c.loss)),
        ("eval_loss", c.eval),
        ("tokens", c.tokens),
        ("lr", c.lr),
    ] {
        if let Some(i) = id {
            used.insert(what.to_string(), log.keys[i as usize].clone());
        }
    }
    if c.tokens.is_none() {
        used.insert(
            "tokens".into(),
            format!("{} x step", opts.tokens_per_step.unwrap_or(0.0)),
        );
    }
    Ok(ImportedRun {
        name: log.name,
        source: log.source,
        format,
        rows,
        params: c.params,
        model: opts.model,
        total_steps,
        finished,
        final_eval_loss,
        used,
        warnings,
        config: log.config,
    })
}

/// Values by step, kept sorted: logs come in step order, so a step is almost always the
/// last one or a new last one (a resumed run's steps come again, and go in their place).
struct Steps<const K: usize> {
    rows: Vec<(i64, [Option<f64>; K])>,
}

impl<const K: usize> Default for Steps<K> {
    fn default() -> Self {
        Steps { rows: Vec::new() }
    }
}

impl<const K: usize> Steps<K> {
    fn at(&mut self, step: i64) -> &mut [Option<f64>; K] {
        let i = match self.rows.last() {
            Some((s, _)) if *s == step => self.rows.len() - 1,
            Some((s, _)) if *s > step => match self.rows.binary_search_by_key(&step, |r| r.0) {
                Ok(i) => i,
                Err(i) => {
                    self.rows.insert(i, (step, [None; K]));
                    i
                }
            },
            _ => {
                self.rows.push((step, [None; K]));
                self.rows.len() - 1
            }
        };
        &mut self.rows[i].1
    }

    fn get(&self, step: i64) -> Option<&[Option<f64>; K]> {
        self.rows
            .binary_search_by_key(&step, |r| r.0)
            .ok()
            .map(|i| &self.rows[i].1)
    }
}

/// Linear interpolation of `(x, y)` points sorted by x at `x`; outside them, proportional
/// to the nearest point (tokens grow with steps from zero).
fn interpolate(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let i = points.partition_point(|p| p.0 < x);
    match (i.checked_sub(1).and_then(|j| points.get(j)), points.get(i)) {
        (Some(a), Some(b)) if b.0 > a.0 => Some(a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0)),
        (_, Some(b)) if b.0 > 0.0 => Some(b.1 * x / b.0),
        (Some(a), _) if a.0 > 0.0 => Some(a.1 * x / a.0),
        _ => None,
    }
}
