//! `isoflop plan` (the designs: cosine, wsd, lr; a law of the rate against size) and
//! `isoflop lr-fit` (each size's best rate from an lr sweep, and the law through them).

use crate::sweep_cmd::cores;
use anyhow::{bail, Context, Result};
use clap::Args;
use isoflop_core::record::write_atomic;
use isoflop_sweep::plan::Sweep;
use isoflop_sweep::spec::PlanSpec;
use std::path::PathBuf;

/// Arguments of `isoflop plan`.
#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub(crate) spec: PlanSpec,
    /// Replace an existing sweep file.
    #[arg(long)]
    pub(crate) force: bool,
}

/// The plan `spec` describes, its notes and warnings printed.
pub(crate) fn make_plan(spec: &PlanSpec) -> Result<Sweep> {
    let planned = isoflop_sweep::spec::make_plan(spec)?;
    for n in &planned.notes {
        eprintln!("note: {n}");
    }
    for w in &planned.warnings {
        eprintln!("warning: --command: {w}");
    }
    Ok(planned.sweep)
}

pub fn plan(a: PlanArgs) -> Result<()> {
    let s = make_plan(&a.spec)?;
    let out = &a.spec.out;
    if out.exists() && !a.force {
        bail!(
            "{} exists; pass --force to replace it (its runs' results are kept either way)",
            out.display()
        );
    }
    write_atomic(out, s.to_toml(cores()).as_bytes())?;
    let trunks = s.runs.iter().filter(|r| r.is_trunk()).count();
    eprintln!(
        "{}: {} runs{}, {:.3e} FLOPs spent for {:.3e} FLOPs of points ({:.2}x), about {:.0} s on this machine's {} cores (estimate)",
        out.display(),
        s.runs.len() - trunks,
        if trunks > 0 {
            format!(" and {trunks} trunks")
        } else {
            String::new()
        },
        s.total_flops(),
        s.represented_flops(),
        s.total_flops() / s.represented_flops().max(f64::MIN_POSITIVE),
        s.estimated_secs(cores()),
        cores()
    );
    Ok(())
}

/// Arguments of `isoflop lr-fit`.
#[derive(Args, Debug)]
pub struct LrFitArgs {
    /// The sweep file of an lr design (`plan --design lr`), its runs finished.
    sweep: PathBuf,
    /// Where to write the law (default: lr-law.json in the results folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `isoflop lr-fit`: each size's best peak rate (a parabola in ln(rate) through the best
/// rate tried and its neighbours) and the power law lr(N) = coef N^exponent through them,
/// written as JSON for `plan --lr-law`.
pub fn lr_fit(a: LrFitArgs) -> Result<()> {
    use isoflop_sweep::exec::{self, RunState};
    let s = Sweep::read(&a.sweep)?;
    let results = s.results_dir(&a.sweep);
    let mut points = Vec::new();
    let mut left_out = Vec::new();
    let mut diverged = Vec::new();
    for r in &s.runs {
        // The run's final loss as every reader of runs takes it (its summary's held-out
        // loss at the end where measured). A diverged run counts as worse than every run
        // that finished; runs that did not end, or failed for other reasons, are left out.
        let point = |loss: f64| isoflop_fit::lr::LrPoint {
            params: r.params as f64,
            lr: r.lr.unwrap_or(s.defaults.lr),
            loss,
        };
        match exec::state(&results, r) {
            RunState::Finished {
                loss: Some(loss),
                left_out: None,
            } => points.push(point(loss)),
            RunState::Failed { status, .. } if status == "diverged" => {
                diverged.push(r.id.clone());
                points.push(point(f64::INFINITY));
            }
            other => left_out.push(format!("{} ({})", r.id, other.name())),
        }
    }
    if !left_out.is_empty() {
        eprintln!(
            "{} run(s) left out: {}",
            left_out.len(),
            left_out.join(", ")
        );
    }
    if !diverged.is_empty() {
        eprintln!(
            "{} run(s) diverged, counted as worse than every finished rate of their size: {}",
            diverged.len(),
            diverged.join(", ")
        );
    }
    let sizes = isoflop_fit::lr::size_optima(&points)
        .with_context(|| format!("fitting the rates of {}", a.sweep.display()))?;
    if !a.json {
        // Each size's best rate first: where none gives a law, this says which way to look.
        println!(
            "{:>12}  {:>10}  {:>8}  {:>5}",
            "params", "best lr", "loss", "tried"
        );
        for z in &sizes {
            println!(
                "{:>12.4e}  {:>10.3e}  {:>8.4}  {:>5}{}",
                z.params,
                z.lr,
                z.loss,
                z.tried,
                z.censored
                    .as_deref()
                    .map(|c| format!("  censored: {c}"))
                    .unwrap_or_default()
            );
        }
    }
    let (law, exponent_se) = isoflop_fit::lr::law_through(&sizes)
        .with_context(|| format!("fitting the rates of {}", a.sweep.display()))?;
    let out = a.out.unwrap_or_else(|| results.join("lr-law.json"));
    write_atomic(&out, &serde_json::to_vec_pretty(&law)?)
        .with_context(|| format!("writing {}", out.display()))?;
    if a.json {
        let fit = isoflop_fit::lr::LrFit {
            sizes,
            law,
            exponent_se,
        };
        println!("{}", serde_json::to_string_pretty(&fit)?);
    } else {
        println!(
            "lr(N) = {:.4e} * N^{:.4}{}",
            law.coef,
            law.exponent,
            exponent_se
                .map(|se| format!(" (exponent standard error {se:.3})"))
                .unwrap_or_default()
        );
    }
    eprintln!("{}: the law for plan --lr-law", out.display());
    Ok(())
}
