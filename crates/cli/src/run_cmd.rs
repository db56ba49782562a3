//! `isoflop run`: plan the default study (or take a sweep file), train what is unfinished,
//! then fit, validate, draw and report.

use crate::plan_cmd::{make_plan, Design, PlanArgs};
use crate::sweep_cmd::*;
use anyhow::{Context, Result};
use clap::Args;
use isoflop_core::record::write_atomic;
use isoflop_sweep::plan::Sweep;
use std::path::PathBuf;
use std::time::Instant;

/// Arguments of `isoflop run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// A study of under two minutes (6 budgets) instead of the default of about eight (8).
    #[arg(long)]
    quick: bool,
    /// Output folder: sweep file, runs, fits, figures, report.
    #[arg(long, default_value = "isoflop-out")]
    out: PathBuf,
    /// Runs at once.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// Corpus (default: the King James Bible from Debian's bible-kjv).
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    fit: crate::study::FitOpts,
    /// Run this sweep file instead of planning the default study (trains what is
    /// unfinished, then fits, draws and reports into --out).
    #[arg(long, value_name = "SWEEP.toml", conflicts_with_all = ["quick", "data"])]
    sweep: Option<PathBuf>,
}

/// The default study's IsoFLOP budgets, sized for a 2-core machine (about 10 minutes; quick
/// about 2). Their points are cooldown branches of one trunk per model (the `wsd` design):
/// for the FLOPs of the 4-budget cosine study of earlier versions, twice its budgets and
/// points, and exponents that agree (README: "Our own default study").
pub fn default_budgets(quick: bool) -> Vec<f64> {
    if quick {
        vec![1e11, 2e11, 3e11, 5e11, 8e11, 1.2e12]
    } else {
        vec![3e11, 5e11, 8e11, 1.2e12, 2e12, 3e12, 5e12, 7e12]
    }
}

/// Plans the default study into `OUT/sweep.toml`, keeping an existing file of the same
/// design (so a rerun resumes instead of restarting).
fn default_study(a: &RunArgs) -> Result<(PathBuf, Sweep)> {
    let data = isoflop_core::corpus::resolve(a.data.clone())?;
    let file = a.out.join("sweep.toml");
    let plan_args = PlanArgs {
        design: Design::Wsd,
        budgets: default_budgets(a.quick),
        sizes_per_budget: 5,
        spread: 8.0,
        sizes: None,
        n_sizes: 4,
        horizons: 4,
        lrs: 5,
        lr_span: 16.0,
        tokens_per_param: 20.0,
        lr_law: None,
        out: file.clone(),
        results: "runs".into(),
        data: Some(std::fs::canonicalize(&data)?.display().to_string()),
        command: None,
        settings: isoflop_core::TrainSettings::default(),
        name: if a.quick {
            "default-quick".into()
        } else {
            "default".into()
        },
        force: true,
    };
    let planned = make_plan(&plan_args)?;
    let s = match Sweep::read(&file) {
        Ok(old) if old.runs == planned.runs && old.defaults == planned.defaults => old,
        _ => {
            write_atomic(&file, planned.to_toml(cores()).as_bytes())?;
            planned
        }
    };
    Ok((file, s))
}

pub fn run(a: RunArgs) -> Result<()> {
    let t0 = Instant::now();
    crate::study::settings(&a.fit)?; // options checked before hours of training
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let (file, s) = match &a.sweep {
        Some(f) => (f.clone(), Sweep::read(f)?),
        None => default_study(&a)?,
    };
    eprintln!(
        "study: {} runs over budgets {:?} FLOPs ({:.3e} FLOPs in all)",
        s.runs.len(),
        {
            let mut b: Vec<f64> = s.runs.iter().filter_map(|r| r.budget).collect();
            b.sort_by(f64::total_cmp);
            b.dedup();
            b
        },
        s.total_flops()
    );
    let failures = sweep_local(&s, &file, a.jobs, 1, false)?;
    if !failures.is_empty() {
        eprintln!(
            "warning: {} run(s) failed; the fit uses the runs that finished",
            failures.len()
        );
    }
    let table = collect(StatusArgs {
        sweep: file.clone(),
        json: false,
        out: Some(a.out.join("runs.csv")),
    })?;
    let (t, report) = crate::study::read_and_fit(&table, &a.fit)?;
    let laws = report.laws();
    write_atomic(&a.out.join("law.json"), &serde_json::to_vec_pretty(&laws)?)?;
    write_atomic(
        &a.out.join("fit.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    // The study's largest budget, or its largest run's FLOPs where it plans no budgets.
    let largest = match s.runs.iter().filter_map(|r| r.budget).fold(0.0, f64::max) {
        b if b > 0.0 => b,
        _ => t.rows.iter().map(|o| o.flops).fold(0.0, f64::max),
    };
    // Validation: the same fit on all but the largest budget, scored on it.
    let settings = crate::study::settings(&a.fit)?;
    let validation = match isoflop_fit::validate::validate(
        &t,
        &settings,
        isoflop_fit::validate::Holdout::Default,
        false,
    ) {
        Ok(v) => {
            write_atomic(
                &a.out.join("validation.json"),
                &serde_json::to_vec_pretty(&v)?,
            )?;
            Some(v)
        }
        Err(e) => {
            eprintln!("warning: no validation: {e}");
            None
        }
    };
    let sections: Vec<isoflop_plot::report::Section> = validation
        .iter()
        .map(isoflop_plot::report::validation_section)
        .collect();
    crate::study::draw(&a.out, &report, &t, 100.0 * largest, &sections)?;
    println!("Predicted compute-optimal models (each approach the data supports):");
    for c in [largest, 100.0 * largest] {
        match isoflop_fit::allocate(&laws, isoflop_fit::Target::Flops(c), 0.95) {
            Ok(allocs) => {
                println!("{}", crate::text::allocation_table(&allocs));
                let notes = crate::text::allocation_notes(&allocs);
                if !notes.is_empty() {
                    println!("{notes}");
                }
            }
            Err(e) => eprintln!("warning: no allocation at {c:.3e} FLOPs: {e}"),
        }
    }
    if let Some(v) = &validation {
        println!("Validation (fitted without the largest budget, then predicting it):");
        let mut out = std::io::stdout().lock();
        crate::text::print_validation_summary(&mut out, v)?;
    }
    println!("report: {}", a.out.join("report.html").display());
    eprintln!(
        "study done in {:.0} s: {:.3e} FLOPs of training",
        t0.elapsed().as_secs_f64(),
        s.total_flops()
    );
    crate::study::usable(&report)
}
