//! `isoflop run`: plan the default study (or take a sweep file), train what is unfinished,
//! then fit, validate, draw and report.

use crate::plan_cmd::make_plan;
use crate::sweep_cmd::*;
use anyhow::{Context, Result};
use clap::Args;
use isoflop_sweep::plan::Sweep;
use isoflop_sweep::spec::{Design, PlanSpec};
use std::path::{Path, PathBuf};
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
    /// A larger (or smaller) study: the default's budgets extended upward (1.2e13, 2e13,
    /// 3e13, 5e13, 7e13, 1.2e14, ...) as far as the plan's time estimate for this machine
    /// stays within MINUTES (the estimate was within 8% of the time six studies of 82 to 506
    /// seconds took on a 2-core machine, and 17% over for one of 1,703 s).
    #[arg(long, value_name = "MINUTES", conflicts_with_all = ["quick", "sweep"])]
    budget_minutes: Option<f64>,
    /// Train the planned study this many times, at seeds 0, 1, ... (`plan --seeds`), and fit
    /// all the runs together: each seed costs the study's time again. Four seeds of the
    /// default study brought its three approaches within 0.1 of each other with every
    /// interval under 0.25; three missed the agreement by 0.011 (docs/results.md: "Our own default
    /// study"). A rerun with more seeds on the same --out trains only the new replicates.
    #[arg(long, default_value_t = 1, conflicts_with = "sweep")]
    seeds: usize,
    /// Replace files in --out that isoflop did not write (or that changed since it did).
    #[arg(long)]
    force: bool,
    /// Train nothing: collect the runs of --sweep that ended (trained elsewhere: a Slurm
    /// array, another machine), then fit, validate, draw and report (a sweep's chained Slurm
    /// job runs this).
    #[arg(long, requires = "sweep")]
    no_train: bool,
}

/// Refuses an output folder holding, under a name `run` writes, a file isoflop did not
/// write (the user's `sweep.toml`, `law.json` or `report.html`), unless `--force`.
fn check_out(a: &RunArgs) -> Result<()> {
    if a.force {
        return Ok(());
    }
    use isoflop_core::study_dir::{FIT_FILE, LAW_FILE, RUNS_TABLE, SWEEP_FILE, VALIDATION_FILE};
    let mut names: Vec<String> = [RUNS_TABLE, LAW_FILE, FIT_FILE, VALIDATION_FILE]
        .iter()
        .map(|n| n.to_string())
        .collect();
    names.extend(isoflop_plot::report::file_names());
    if a.sweep.is_none() {
        names.push(SWEEP_FILE.into());
    }
    let paths: Vec<PathBuf> = names.iter().map(|n| a.out.join(n)).collect();
    let foreign = isoflop_core::manifest::foreign_among(&paths);
    if !foreign.is_empty() {
        anyhow::bail!(
            "--out {}: {} file(s) there that isoflop did not write, or that changed since it did ({}); `run` would replace them: choose another --out, or pass --force",
            a.out.display(),
            foreign.len(),
            isoflop_core::error::list(foreign.iter().map(|p| p.display()), ", ")
        );
    }
    Ok(())
}

/// The default study's IsoFLOP budgets, sized for a 2-core machine (about 8 minutes; quick
/// under 2). Their points are cooldown branches of one trunk per model (the `wsd` design):
/// for the FLOPs of the 4-budget cosine study of earlier versions, twice its budgets and
/// points, and exponents that agree (docs/results.md: "Our own default study").
pub fn default_budgets(quick: bool) -> Vec<f64> {
    if quick {
        vec![1e11, 2e11, 3e11, 5e11, 8e11, 1.2e12]
    } else {
        vec![3e11, 5e11, 8e11, 1.2e12, 2e12, 3e12, 5e12, 7e12]
    }
}

/// The budgets `--budget-minutes` chooses among, smallest first: the default study's, then
/// 1.2, 2, 3, 5 and 7 times each power of ten from 1e13 to 1e17.
fn budget_ladder() -> Vec<f64> {
    let mut v = default_budgets(false);
    for e in 13..=17 {
        v.extend([1.2, 2.0, 3.0, 5.0, 7.0].map(|m| m * 10f64.powi(e)));
    }
    v
}

/// The plan of the study `isoflop run` plans on `budgets` of the corpus `data` (a resolved
/// path), named `name`, into `file`: `plan`'s defaults, the wsd design.
fn study_plan(
    budgets: Vec<f64>,
    seeds: usize,
    name: String,
    file: PathBuf,
    data: &str,
) -> PlanSpec {
    PlanSpec {
        design: Design::Wsd,
        budgets,
        seeds,
        out: file,
        data: Some(data.to_string()),
        name,
        ..PlanSpec::default()
    }
}

/// The longest prefix of [`budget_ladder`] (three budgets at least) whose estimated time,
/// by `estimate` (seconds), fits in `minutes`.
fn choose_budgets(minutes: f64, estimate: &dyn Fn(&[f64]) -> Result<f64>) -> Result<Vec<f64>> {
    if !(minutes > 0.0 && minutes.is_finite()) {
        anyhow::bail!("--budget-minutes must be a positive number of minutes, got {minutes}");
    }
    let ladder = budget_ladder();
    let mut best = None;
    for k in 3..=ladder.len() {
        let secs = estimate(&ladder[..k])?;
        if secs > 60.0 * minutes {
            if best.is_none() {
                anyhow::bail!(
                    "--budget-minutes {minutes}: the smallest study (budgets {:?}) needs about {:.1} minutes on this machine; `--quick` plans one of under two",
                    &ladder[..k],
                    secs / 60.0
                );
            }
            break;
        }
        best = Some(ladder[..k].to_vec());
    }
    Ok(best.expect("the ladder has more than three budgets"))
}

/// The plan's estimated seconds on this machine for the study on `budgets` at `seeds` seeds.
fn estimate(budgets: &[f64], seeds: usize, file: &Path, data: &str) -> Result<f64> {
    // The library's plan, its notes unprinted: each prefix of the ladder is planned once.
    let plan = isoflop_sweep::spec::make_plan(&study_plan(
        budgets.to_vec(),
        seeds,
        String::new(),
        file.into(),
        data,
    ))?;
    Ok(plan.sweep.estimated_secs(cores()))
}

/// Plans the default study (or the one `--budget-minutes` sizes) into `OUT/sweep.toml`,
/// keeping an existing file of the same design (so a rerun resumes instead of restarting).
fn default_study(a: &RunArgs) -> Result<(PathBuf, Sweep)> {
    let file = isoflop_core::study_dir::StudyDir::new(&a.out).sweep();
    let data = isoflop_core::corpus::resolve(a.data.clone())?;
    let data = std::fs::canonicalize(&data)?.display().to_string();
    let (budgets, name) = match a.budget_minutes {
        Some(m) => (
            choose_budgets(m, &|b| estimate(b, a.seeds, &file, &data))?,
            format!("budget-{m}min"),
        ),
        None if a.quick => (default_budgets(true), "default-quick".into()),
        None => (default_budgets(false), "default".into()),
    };
    let name = match a.seeds {
        1 => name,
        k => format!("{name}-{k}seeds"),
    };
    let planned = make_plan(&study_plan(budgets, a.seeds, name, file.clone(), &data))?;
    let s = match Sweep::read(&file) {
        Ok(old) if old.runs == planned.runs && old.defaults == planned.defaults => old,
        _ => {
            std::fs::create_dir_all(&a.out)
                .with_context(|| format!("creating {}", a.out.display()))?;
            isoflop_core::manifest::write(&file, planned.to_toml(cores()).as_bytes())?;
            planned
        }
    };
    Ok((file, s))
}

/// What a study of cooldown branches prints under its intervals when they resample runs;
/// `None` for a study without branches, or one whose bootstrap resamples sizes.
fn branch_note(s: &Sweep, unit: isoflop_fit::stats::BootUnit, out: &Path) -> Option<String> {
    let branches = s.runs.iter().any(|r| r.trunk.is_some());
    (branches && unit == isoflop_fit::stats::BootUnit::Run).then(|| format!(
        "note: these intervals resample runs; a size's runs here are cooldown branches of one trunk. Retraining our default study at other seeds moved a by less than such intervals imply, but they leave out which model shapes were trained: `isoflop fit {} --boot-by size` resamples model sizes, each with all its runs (two to three times wider on our default study: docs/results.md, \"Our own default study\")",
        isoflop_core::study_dir::StudyDir::new(out).runs_table().display()
    ))
}

pub fn run(a: RunArgs) -> Result<()> {
    let t0 = Instant::now();
    crate::study::settings(&a.fit)?; // options checked before hours of training
    check_out(&a)?;
    let (file, s) = match &a.sweep {
        Some(f) => (f.clone(), Sweep::read(f)?),
        None => default_study(&a)?,
    };
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
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
    let study = isoflop_study::Study {
        sweep_file: file.clone(),
        sweep: s,
        fit: a.fit.clone(),
        dir: isoflop_core::study_dir::StudyDir::new(&a.out),
        force: a.force,
    };
    let mut local =
        |s: &Sweep, f: &Path| -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
            Ok(sweep_local(s, f, a.jobs, 1, false)?.len())
        };
    let dispatch: Option<isoflop_study::pipeline::Dispatch> =
        if a.no_train { None } else { Some(&mut local) };
    let done = isoflop_study::run_study(
        &study,
        dispatch,
        &crate::study::provenance(),
        Some(crate::study::progress_line),
    )?;
    if done.failed > 0 {
        eprintln!(
            "warning: {} run(s) failed; the fit uses the runs that finished",
            done.failed
        );
    }
    for line in [&done.collected.missing, &done.collected.trunks]
        .into_iter()
        .flatten()
    {
        eprintln!("{line}");
    }
    println!("{}", done.collected.path.display());
    if let Err(e) = &done.validation {
        eprintln!("warning: no validation: {e}");
    }
    crate::study::print_drawn(&done.report, &done.written);
    let (laws, largest, report) = (&done.laws, done.largest, &done.report);
    let validation = done.validation.as_ref().ok();
    println!("Predicted compute-optimal models (each approach the data supports):");
    for c in [largest, 100.0 * largest] {
        match isoflop_fit::allocate(laws, isoflop_fit::Target::Flops(c), 0.95) {
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
    if let Some(note) = branch_note(&study.sweep, a.fit.boot_by, &a.out) {
        println!("{note}");
    }
    if let Some(v) = validation {
        println!("Validation (fitted without the largest budget, then predicting it):");
        let mut out = std::io::stdout().lock();
        crate::text::print_validation_summary(&mut out, v)?;
    }
    println!("report: {}", study.dir.report().display());
    eprintln!(
        "study done in {:.0} s: {:.3e} FLOPs of training",
        t0.elapsed().as_secs_f64(),
        study.sweep.total_flops()
    );
    crate::study::usable(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in estimate: one minute per budget.
    fn per_budget(b: &[f64]) -> Result<f64> {
        Ok(60.0 * b.len() as f64)
    }

    #[test]
    fn only_a_study_of_branches_resampling_runs_gets_the_note() {
        use isoflop_fit::stats::BootUnit;
        let d = std::env::temp_dir().join(format!("isoflop-branch-note-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let plan_at = |design: Design, seeds: usize| {
            let mut p = study_plan(
                vec![1e12, 3e12, 1e13],
                seeds,
                "n".into(),
                d.join("s.toml"),
                "kjv.txt",
            );
            p.design = design;
            make_plan(&p).unwrap()
        };
        let plan = |design: Design| plan_at(design, 1);
        let out = Path::new("study");
        let note = branch_note(&plan(Design::Wsd), BootUnit::Run, out).unwrap();
        assert!(
            note.contains("cooldown branches of one trunk")
                && note.contains("isoflop fit study/runs.csv --boot-by size"),
            "{note}"
        );
        assert_eq!(branch_note(&plan(Design::Wsd), BootUnit::Size, out), None);
        assert_eq!(branch_note(&plan(Design::Cosine), BootUnit::Run, out), None);
        // --seeds reaches the plan: three replicates, three times the time estimate.
        let one = plan(Design::Wsd);
        let three = plan_at(Design::Wsd, 3);
        assert_eq!(three.runs.len(), 3 * one.runs.len());
        assert_eq!(three.runs[..one.runs.len()], one.runs[..]);
        assert!((three.estimated_secs(2) / one.estimated_secs(2) - 3.0).abs() < 1e-9);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn budget_minutes_take_the_longest_prefix_of_the_ladder_that_fits() {
        let ladder = budget_ladder();
        assert_eq!(ladder[..8], default_budgets(false)[..]);
        assert_eq!(ladder[8..11], [1.2e13, 2e13, 3e13]);
        assert!(ladder.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            choose_budgets(8.0, &per_budget).unwrap(),
            default_budgets(false)
        );
        assert_eq!(choose_budgets(10.5, &per_budget).unwrap(), ladder[..10]);
        assert_eq!(choose_budgets(3.0, &per_budget).unwrap(), ladder[..3]);
        let e = choose_budgets(2.9, &per_budget).unwrap_err().to_string();
        assert!(
            e.contains("needs about 3.0 minutes") && e.contains("--quick"),
            "{e}"
        );
        for bad in [0.0, -1.0, f64::NAN] {
            assert!(choose_budgets(bad, &per_budget).is_err());
        }
    }
}
