//! The Slurm executor: one job array (an index per run, each running `isoflop sweep-task
//! FILE --index $SLURM_ARRAY_TASK_ID` on the shared results folder), throttled, and a fit job
//! that runs after it (`afterany`) to collect the runs and fit them.

use super::{Dispatched, Executor};
use crate::error::SweepError;
use crate::exec::{sh_quote, write_plan_index, RunOutcome, Runner};
use crate::plan::Sweep;
use isoflop_core::record::write_atomic;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A Slurm job array of the sweep's runs.
#[derive(Clone, Debug)]
pub struct Slurm {
    /// The sweep file, which every array task reads.
    pub sweep_file: PathBuf,
    /// Array tasks at once (`%throttle`).
    pub throttle: usize,
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
        _on_event: &(dyn Fn(&str, &RunOutcome) + Sync),
    ) -> Result<Dispatched, SweepError> {
        let s = runner.sweep;
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
                self.throttle,
                runner.threads,
                &logs,
                runner.retry_failed,
            )
            .as_bytes(),
        )
        .map_err(io(&script))?;
        let job = sbatch(&[], Some(&script))?;
        let table = std::fs::canonicalize(results)
            .map_err(io(results))?
            .join("runs.csv");
        let q = |p: &Path| sh_quote(&p.display().to_string());
        let fit = format!(
            "{bin} collect {file} --out {table} && {bin} fit {table} --out {law} > {txt}",
            bin = q(bin),
            file = q(&file),
            table = q(&table),
            law = q(&table.with_file_name("law.json")),
            txt = q(&table.with_file_name("fit.txt"))
        );
        let out_log = format!("--output={}/fit_%j.out", logs.display());
        let dep = format!("--dependency=afterany:{job}");
        let fit_job = sbatch(
            &["--job-name=isoflop-fit", &dep, &out_log, "--wrap", &fit],
            None,
        )?;
        Ok(Dispatched::Submitted {
            summary: format!(
                "array job {job} ({} runs, %{}); fit job {fit_job} after it; script {}",
                s.runs.len(),
                self.throttle,
                script.display()
            ),
        })
    }
}

/// A Slurm job-array script: one array index per run, at most `throttle` at once
/// (`%throttle`), each running `isoflop sweep-task SWEEP --index $SLURM_ARRAY_TASK_ID`.
pub fn slurm_script(
    sweep: &Sweep,
    sweep_file: &Path,
    isoflop: &Path,
    throttle: usize,
    cpus: usize,
    logs: &Path,
    retry_failed: bool,
) -> String {
    let n = sweep.runs.len();
    format!(
        "#!/bin/bash\n#SBATCH --job-name=isoflop-{name}\n#SBATCH --array=0-{last}%{throttle}\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --output={logs}/%A_%a.out\n#SBATCH --error={logs}/%A_%a.out\n# One array index per run of {file} ({n} runs). A task whose run has ended exits at once;\n# an unfinished one resumes from its checkpoint.\nexec {bin} sweep-task {file} --index \"$SLURM_ARRAY_TASK_ID\" --threads {cpus}{retry}\n",
        retry = if retry_failed { " --retry-failed" } else { "" },
        // The name and paths reach sbatch's directives and bash: the name is cut to safe
        // characters, the paths quoted (and a path holding a line break is refused by
        // the caller, since no quoting survives it in a directive).
        name = sweep
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
            .collect::<String>(),
        last = n.saturating_sub(1),
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
