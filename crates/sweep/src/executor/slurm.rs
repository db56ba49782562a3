//! The Slurm executor: one job array (an index per run, each running `isoflop sweep-task
//! FILE --index $SLURM_ARRAY_TASK_ID` on the shared results folder), throttled, and a fit job
//! that runs after it (`afterany`) to collect the runs and fit them. Cooldown branches are
//! one more array per trunk, of the same script, that starts after the trunk's task ends
//! (`afterany:JOB_TASK`: a branch whose trunk failed then fails itself, saying why).

use super::{Dispatched, Event, Executor};
use crate::error::SweepError;
use crate::exec::{sh_quote, write_plan_index, Runner};
use crate::plan::Sweep;
use isoflop_core::record::write_atomic;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Slurm job array of the sweep's runs.
#[derive(Clone, Debug)]
pub struct Slurm {
    /// The sweep file, which every array task reads.
    pub sweep_file: PathBuf,
    /// Array tasks at once (`%throttle`), in each array.
    pub throttle: usize,
    /// What each task asks for (the sweep's `[slurm]` table with the options over it).
    pub resources: crate::resources::SlurmResources,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SweepError + '_ {
    move |source| SweepError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Executor for Slurm {
    fn dispatch(
        &self,
        runner: &Runner,
        _on_event: &(dyn Fn(&str, Event) + Sync),
    ) -> Result<Dispatched, SweepError> {
        let s = runner.sweep;
        let res = &self.resources;
        res.check().map_err(SweepError::Slurm)?;
        let results = &runner.results;
        let logs = results.join("slurm");
        std::fs::create_dir_all(&logs).map_err(io(&logs))?;
        write_plan_index(s, results).map_err(io(results))?;
        let file = std::fs::canonicalize(&self.sweep_file).map_err(io(&self.sweep_file))?;
        let logs = std::fs::canonicalize(&logs).map_err(io(&logs))?;
        let bin = &runner.isoflop;
        for p in [&file, bin, &logs] {
            if p.display().to_string().contains(['\n', '\r']) {
                return Err(SweepError::Slurm(format!(
                    "{p:?}: a path with a line break cannot be passed to sbatch"
                )));
            }
        }
        let script = logs.join("sweep.sbatch");
        write_atomic(
            &script,
            slurm_script(
                s,
                &file,
                bin,
                runner.threads,
                &logs,
                runner.retry_failed,
                res,
            )
            .as_bytes(),
        )
        .map_err(io(&script))?;
        let cpus = res.cpus_per_task.map_or(runner.threads, |c| c as usize);
        let time_arg = |indices: &[usize]| -> Option<String> {
            indices
                .iter()
                .filter_map(|&i| res.minutes_for(s.run_secs(&s.runs[i], res.flops_per_sec, cpus)))
                .max()
                .map(|m| format!("--time={}", crate::resources::slurm_time(m)))
        };
        // The runs that are not branches, one array per time limit (a ladder of sizes
        // spans 100x in time: one limit for all would hold the small runs' slots or kill
        // the large ones).
        let own: Vec<usize> = (0..s.runs.len())
            .filter(|&i| s.runs[i].trunk.is_none())
            .collect();
        let mut groups: std::collections::BTreeMap<Option<u64>, Vec<usize>> = Default::default();
        for &i in &own {
            groups
                .entry(res.minutes_for(s.run_secs(&s.runs[i], res.flops_per_sec, cpus)))
                .or_default()
                .push(i);
        }
        let mut jobs = Vec::new();
        let mut job_of = std::collections::HashMap::new();
        for indices in groups.values() {
            let array = format!("--array={}%{}", array_spec(indices), self.throttle);
            let mut args = vec![array];
            args.extend(time_arg(indices));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let job = sbatch(&a, Some(&script))?;
            for &i in indices {
                job_of.insert(i, job.clone());
            }
            jobs.push(job);
        }
        let main_jobs = jobs.len();
        for (t, trunk) in s.runs.iter().enumerate().filter(|r| r.1.is_trunk()) {
            let branches: Vec<usize> = (0..s.runs.len())
                .filter(|&i| s.runs[i].trunk.as_deref() == Some(trunk.id.as_str()))
                .collect();
            if branches.is_empty() {
                continue;
            }
            let mut args = vec![
                format!("--array={}%{}", array_spec(&branches), self.throttle),
                format!("--dependency=afterany:{}_{t}", job_of[&t]),
            ];
            args.extend(time_arg(&branches));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            jobs.push(sbatch(&a, Some(&script))?);
        }
        let fit_job = submit_fit(s, &file, bin, results, &logs, &jobs, res)?;
        Ok(Dispatched::Submitted {
            summary: format!(
                "{} ({} runs, %{} each){}; fit job {fit_job} after them; script {}",
                if main_jobs == 1 {
                    format!("array job {}", jobs[0])
                } else {
                    format!(
                        "{main_jobs} array jobs by time limit ({})",
                        jobs[..main_jobs].join(", ")
                    )
                },
                s.runs.len(),
                self.throttle,
                if jobs.len() > main_jobs {
                    format!(
                        "; {} branch arrays ({}) after their trunks' tasks",
                        jobs.len() - main_jobs,
                        jobs[main_jobs..].join(", ")
                    )
                } else {
                    String::new()
                },
                script.display()
            ),
        })
    }
}

/// The study job, after every array (`afterany`): `isoflop run --sweep FILE --no-train`
/// into the results' study folder (collect, fit, validate, draw: the same study `isoflop
/// run` makes after training locally), on the partition and account the runs use.
fn submit_fit(
    s: &Sweep,
    file: &Path,
    bin: &Path,
    results: &Path,
    logs: &Path,
    jobs: &[String],
    res: &crate::resources::SlurmResources,
) -> Result<String, SweepError> {
    let _ = s;
    let study = std::fs::canonicalize(results)
        .map_err(io(results))?
        .join(isoflop_core::study_dir::CHAINED_STUDY_DIR);
    let q = |p: &Path| sh_quote(&p.display().to_string());
    // One isoflop command (its text, stdout and stderr, goes to the job's log).
    let fit = format!(
        "{bin} run --sweep {file} --out {study} --no-train",
        bin = q(bin),
        file = q(file),
        study = q(&study),
    );
    let out_log = format!("--output={}/fit_%j.out", logs.display());
    let dep = format!("--dependency=afterany:{}", jobs.join(":"));
    let mut args = vec!["--job-name=isoflop-fit".to_string(), dep, out_log];
    if let Some(p) = &res.partition {
        args.push(format!("--partition={p}"));
    }
    if let Some(a) = &res.account {
        args.push(format!("--account={a}"));
    }
    args.push("--wrap".into());
    args.push(fit);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    sbatch(&a, None)
}

/// Indices as a Slurm `--array` list: runs of consecutive indices as ranges (`0-3,7,9-10`).
pub fn array_spec(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut k = 0;
    while k < indices.len() {
        let start = indices[k];
        let mut end = start;
        while k + 1 < indices.len() && indices[k + 1] == end + 1 {
            k += 1;
            end = indices[k];
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        k += 1;
    }
    parts.join(",")
}

/// A Slurm job-array script: one array index per run but the cooldown branches (which are
/// submitted after their trunks, with `--array` given to sbatch), at most `throttle` at once
/// (`%throttle`), each running `isoflop sweep-task SWEEP --index $SLURM_ARRAY_TASK_ID`.
pub fn slurm_script(
    sweep: &Sweep,
    sweep_file: &Path,
    isoflop: &Path,
    threads: usize,
    logs: &Path,
    retry_failed: bool,
    res: &crate::resources::SlurmResources,
) -> String {
    let n = sweep.runs.len();
    let cpus = res.cpus_per_task.map_or(threads, |c| c as usize);
    let directives: String = res
        .directives(threads)
        .into_iter()
        .map(|d| d + "\n")
        .collect();
    format!(
        "#!/bin/bash\n#SBATCH --job-name=isoflop-{name}\n{directives}#SBATCH --output={logs}/%A_%a.out\n#SBATCH --error={logs}/%A_%a.out\n# One array index per run of {file} ({n} runs; sbatch is given --array and --time). A task\n# whose run has ended exits at once; an unfinished one resumes from its checkpoint. On the\n# --signal, the task has the trainer checkpoint and stop (transient){requeue_note}.\nexec {bin} sweep-task {file} --index \"$SLURM_ARRAY_TASK_ID\" --threads {cpus}{retry}{requeue}\n",
        retry = if retry_failed { " --retry-failed" } else { "" },
        requeue = if res.requeue { " --requeue" } else { "" },
        requeue_note = if res.requeue { ", then requeues itself" } else { "" },
        // The name and paths reach sbatch's directives and bash: the name is cut to safe
        // characters, the paths quoted (and a path holding a line break is refused by
        // the caller, since no quoting survives it in a directive).
        name = sweep
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
            .collect::<String>(),
        logs = logs.display(),
        file = sh_quote(&sweep_file.display().to_string()),
        bin = sh_quote(&isoflop.display().to_string()),
    )
}

/// Submits `script` with `sbatch --parsable`, returning the job id.
///
/// # Errors
/// sbatch's own message when it fails or cannot be run.
pub fn sbatch(args: &[&str], script: Option<&Path>) -> Result<String, SweepError> {
    let mut c = Command::new("sbatch");
    c.arg("--parsable").args(args);
    if let Some(s) = script {
        c.arg(s);
    }
    let o = c.output().map_err(|e| {
        SweepError::Slurm(format!("could not run sbatch: {e} (is Slurm installed?)"))
    })?;
    if !o.status.success() {
        return Err(SweepError::Slurm(format!(
            "sbatch failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )));
    }
    let id = String::from_utf8_lossy(&o.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string();
    if id.is_empty() {
        return Err(SweepError::Slurm("sbatch printed no job id".into()));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn array_lists_join_consecutive_indices_into_ranges() {
        assert_eq!(super::array_spec(&[0, 1, 2, 3]), "0-3");
        assert_eq!(super::array_spec(&[0, 2, 3, 4, 7, 9, 10]), "0,2-4,7,9-10");
        assert_eq!(super::array_spec(&[5]), "5");
    }
}
