//! Writing imported runs: one run record per run (docs/run-records.md), or one run table.
//!
//! All or nothing: every run is read and written into a staging folder inside the output
//! folder first (so memory holds one source at a time), and moved into place only when
//! every source was read (or `skip_bad` names the ones that were not). A run folder that
//! is there already is replaced only with `force`, and only if an import wrote it.
//!
//! Run names come from the sources (folder names, W&B run names, a log's `run` field):
//! each becomes a folder name of letters, digits, `.`, `_` and `-` only (others become
//! `_`, a leading `.` is dropped), so no name reaches a path outside the output folder;
//! two runs of one name get `-2`, `-3`.

use super::{assemble, discover, Format, ImportError, ImportOptions, ImportedRun};
use crate::record::{
    final_loss, write_atomic, RunStatus, RunSummary, CONFIG_FILE, CURVE_FILE, SUMMARY_FILE,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Where the runs go.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// A folder of run records.
    Runs(PathBuf),
    /// One run table (CSV), the finished runs' curves with each run's final loss.
    Table(PathBuf),
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ImportReport {
    /// Each run written: (name as the source gives it, folder or table name, format, source,
    /// rows, finished).
    pub runs: Vec<RunWritten>,
    /// Sources skipped (`skip_bad`), each with why.
    pub skipped: Vec<String>,
    /// What was noticed, per run.
    pub warnings: Vec<String>,
}

/// One imported run, as written.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RunWritten {
    /// The name the source gives it.
    pub name: String,
    /// The name it was written under (its folder).
    pub written_as: String,
    /// The format.
    pub format: Format,
    /// Where it came from.
    pub source: PathBuf,
    /// Curve rows.
    pub rows: usize,
    /// Whether it reached its configured total.
    pub finished: bool,
    /// Its final loss (held-out where logged), for finished runs.
    pub final_loss: Option<f64>,
}

/// A run name as a folder name (see the module's documentation).
pub fn folder_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() {
        "run".into()
    } else {
        s
    }
}

const COLUMNS_PARAMS: [&str; 3] = ["params", "params_no_embed", "params_active"];
const COLUMNS_FLOPS: [&str; 6] = [
    "flops",
    "flops_no_embed",
    "flops_kaplan",
    "flops_chinchilla",
    "flops_deepseek",
    "flops_active",
];

fn header(run: &ImportedRun, table: bool) -> Vec<&'static str> {
    let moe = run.model.is_some_and(|m| m.params.active != m.params.total);
    let mut h = vec!["run", "step"];
    match run.model {
        Some(_) => {
            h.extend(&COLUMNS_PARAMS[..if moe { 3 } else { 2 }]);
            h.push("tokens");
            h.extend(&COLUMNS_FLOPS[..if moe { 6 } else { 5 }]);
        }
        None => h.extend(["params", "tokens", "flops"]),
    }
    // A table carries each run's final loss (held-out where logged) instead of the
    // held-out column, as `isoflop collect`'s does: two loss columns would be ambiguous.
    h.extend(["loss", "lr", "secs"]);
    h.push(if table { "final_loss" } else { "eval_loss" });
    h
}

/// Appends `v` (nothing for `None`) and a separator.
fn cell(out: &mut String, v: Option<f64>, sep: char) {
    use std::fmt::Write;
    if let Some(x) = v {
        let _ = write!(out, "{x}");
    }
    out.push(sep);
}

/// Appends the run's rows as CSV lines to `out`. `name` is a [`folder_name`] (letters,
/// digits, `.`, `_`, `-`), which needs no quoting; numbers are written straight into the
/// buffer (importing many runs is bound by this).
fn rows_csv(run: &ImportedRun, name: &str, out: &mut String, final_loss: Option<Option<f64>>) {
    use std::fmt::Write;
    let moe = run.model.is_some_and(|m| m.params.active != m.params.total);
    for r in &run.rows {
        let _ = write!(out, "{name},{},", r.step);
        match run.model {
            Some(m) => {
                let p = m.params;
                let f = m.flops_per_token;
                let _ = write!(out, "{},{},", p.total, p.non_embedding);
                if moe {
                    let _ = write!(out, "{},", p.active);
                }
                let _ = write!(out, "{},{:e},", r.tokens, 6.0 * p.total as f64 * r.tokens);
                for x in [f.six_n_no_embed, f.kaplan, f.chinchilla, f.deepseek] {
                    let _ = write!(out, "{:e},", x * r.tokens);
                }
                if moe {
                    let _ = write!(out, "{:e},", f.six_n * r.tokens);
                }
            }
            None => {
                let _ = write!(
                    out,
                    "{},{},{:e},",
                    run.params,
                    r.tokens,
                    6.0 * run.params * r.tokens
                );
            }
        }
        let _ = write!(out, "{},", r.loss);
        cell(out, r.lr, ',');
        cell(out, r.secs.map(|s| (s * 1e3).round() / 1e3), ',');
        match final_loss {
            None => cell(out, r.eval_loss, '\n'),
            Some(f) => cell(out, f, '\n'),
        }
    }
}

fn summary(run: &ImportedRun, name: &str) -> RunSummary {
    let last = run.rows.last().expect("a run has rows");
    let pairs: Vec<(f64, f64)> = run.rows.iter().map(|r| (r.tokens, r.loss)).collect();
    let secs = last.secs.unwrap_or(0.0);
    RunSummary {
        run: name.to_string(),
        status: RunStatus::Finished,
        reason: None,
        failed_at_step: None,
        steps: last.step,
        params: run.params.round() as u64,
        tokens: last.tokens.round() as u64,
        flops: 6.0 * run.params * last.tokens,
        final_loss: final_loss(&pairs),
        final_eval_loss: run.final_eval_loss,
        secs,
        tokens_per_sec: if secs > 0.0 { last.tokens / secs } else { 0.0 },
        transient: false,
    }
}

fn config(run: &ImportedRun, name: &str) -> serde_json::Value {
    serde_json::json!({
        "run": name,
        "params": run.params,
        "trainer": "imported",
        "imported": {
            "format": run.format,
            "source": run.source.display().to_string(),
            "metrics": run.used,
            "total_steps": run.total_steps,
            "finished": run.finished,
        },
        "counts": run.model,
        "config": run.config,
    })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ImportError + '_ {
    move |e| ImportError::new(path, "", e.to_string())
}

/// Writes one run's record into `dir` (created) in the staging folder: plain writes, as
/// no reader sees the staging folder; moving the folder into place is the atomic step.
fn write_record(dir: &Path, run: &ImportedRun, name: &str) -> Result<Option<f64>, ImportError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut curve = header(run, false).join(",");
    curve.push('\n');
    rows_csv(run, name, &mut curve, None);
    let p = dir.join(CURVE_FILE);
    std::fs::write(&p, &curve).map_err(io(&p))?;
    let p = dir.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(&config(run, name)).expect("serialises");
    std::fs::write(&p, text.as_bytes()).map_err(io(&p))?;
    if !run.finished {
        return Ok(None);
    }
    let s = summary(run, name);
    let p = dir.join(SUMMARY_FILE);
    let text = serde_json::to_string_pretty(&s).expect("serialises");
    std::fs::write(&p, text.as_bytes()).map_err(io(&p))?;
    Ok(s.fit_loss())
}

/// Renames a staged run (a second run of one name): the `run` column of its curve (and
/// table rows) and the `run` field of its config and summary.
fn rename_run(dir: &Path, name: &str) -> Result<(), ImportError> {
    for file in [CURVE_FILE, "table-rows.csv"] {
        let p = dir.join(file);
        let Ok(text) = std::fs::read(&p) else {
            continue;
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_slice());
        let mut w = csv::Writer::from_writer(Vec::new());
        for (i, rec) in rdr.records().enumerate() {
            let rec = rec.map_err(|e| ImportError::new(&p, "", e.to_string()))?;
            let mut fields: Vec<&str> = rec.iter().collect();
            if i > 0 || file != CURVE_FILE {
                fields[0] = name;
            }
            w.write_record(&fields).expect("writing to memory");
        }
        std::fs::write(&p, w.into_inner().expect("writing to memory")).map_err(io(&p))?;
    }
    for file in [CONFIG_FILE, SUMMARY_FILE] {
        let p = dir.join(file);
        let Ok(mut v) = crate::record::read_json::<serde_json::Value>(&p) else {
            continue;
        };
        v["run"] = serde_json::Value::String(name.to_string());
        std::fs::write(&p, serde_json::to_string_pretty(&v).expect("serialises"))
            .map_err(io(&p))?;
    }
    Ok(())
}

/// Whether `dir` is a run folder an import wrote.
fn imported(dir: &Path) -> bool {
    crate::record::read_json::<serde_json::Value>(&dir.join(CONFIG_FILE))
        .is_ok_and(|c| c.get("trainer").and_then(|t| t.as_str()) == Some("imported"))
}

/// Reads every source and writes its runs to `output`: what `isoflop import` does.
///
/// # Errors
/// The first source's [`ImportError`] (with how many others failed) unless `skip_bad`;
/// an output run folder that exists (and, with `force`, one an import did not write); an
/// output table that exists without `force`; an I/O error writing. Nothing is written then.
///
/// # Example
/// ```
/// use isoflop_core::import::{import_runs, ImportOptions, Output};
/// # let dir = std::env::temp_dir().join(format!("isoflop-doc-import-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// # std::fs::create_dir_all(&dir).unwrap();
/// // A JSON Lines log of two runs, its token count per step given.
/// let log = dir.join("train.jsonl");
/// let lines: String = (1..=20)
///     .flat_map(|s| ["small", "big"].map(move |r| format!("{{\"run\": \"{r}\", \"step\": {s}, \"loss\": {}}}\n", 3.0 - 0.01 * s as f64)))
///     .collect();
/// std::fs::write(&log, lines).unwrap();
/// let opts = ImportOptions { params: Some(1e6), tokens_per_step: Some(4096.0), ..Default::default() };
/// let report = import_runs(&[log], &opts, &Output::Runs(dir.join("runs")), false, false).unwrap();
/// assert_eq!(report.runs.len(), 2);
/// let table = isoflop_core::RunTable::read_runs(&dir.join("runs")).unwrap();
/// assert_eq!(table.rows.len(), 40);
/// assert_eq!(table.rows[0].tokens, 4096.0);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn import_runs(
    inputs: &[PathBuf],
    opts: &ImportOptions,
    output: &Output,
    skip_bad: bool,
    force: bool,
) -> Result<ImportReport, ImportError> {
    let mut report = ImportReport::default();
    let mut sources = Vec::new();
    let mut failures: Vec<ImportError> = Vec::new();
    for input in inputs {
        match discover(std::slice::from_ref(input), opts.format) {
            Ok(s) => sources.extend(s),
            Err(e) => failures.push(e),
        }
    }
    let (root, table) = match output {
        Output::Runs(dir) => (dir.clone(), None),
        Output::Table(file) => {
            if file.exists() && !force {
                return Err(ImportError::new(file, "", "exists; --force replaces it"));
            }
            (
                file.parent()
                    .map(Path::to_path_buf)
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or_else(|| PathBuf::from(".")),
                Some(file.clone()),
            )
        }
    };
    std::fs::create_dir_all(&root).map_err(io(&root))?;
    let staging = root.join(format!(".isoflop-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io(&staging))?;
    let staged = stage(&sources, opts, &staging, table.is_some());
    // In source order: each source's runs, or its error.
    let mut runs: Vec<(Staged, String)> = Vec::new();
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    for outcome in staged {
        match outcome {
            Err(e) => failures.push(e),
            Ok(list) => {
                for s in list {
                    let base = folder_name(&s.name);
                    let mut name = base.clone();
                    let mut k = 2;
                    while !names.insert(name.clone()) {
                        name = format!("{base}-{k}");
                        k += 1;
                    }
                    if name != base {
                        if let Err(e) = rename_run(&s.dir, &name) {
                            let _ = std::fs::remove_dir_all(&staging);
                            return Err(e);
                        }
                    }
                    runs.push((s, name));
                }
            }
        }
    }
    if !failures.is_empty() && !skip_bad {
        let _ = std::fs::remove_dir_all(&staging);
        let more = failures.len() - 1;
        let mut e = failures.swap_remove(0);
        if more > 0 {
            e.problem.push_str(&format!(
                " (and {more} more sources failed; --skip-bad imports the rest)"
            ));
        }
        return Err(e);
    }
    report.skipped = failures.iter().map(|e| e.to_string()).collect();
    if runs.is_empty() {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(ImportError::new(&root, "", "no run was imported"));
    }
    let finish = match &table {
        None => move_into_place(&runs, &root, force),
        Some(file) => write_table(&runs, file),
    };
    let _ = std::fs::remove_dir_all(&staging);
    finish?;
    for (s, name) in runs {
        for w in &s.warnings {
            report.warnings.push(format!("{name}: {w}"));
        }
        report.runs.push(RunWritten {
            name: s.name,
            written_as: name,
            format: s.format,
            source: s.source,
            rows: s.rows,
            finished: s.finished,
            final_loss: s.final_loss,
        });
    }
    Ok(report)
}

/// A run read and written into the staging folder.
struct Staged {
    name: String,
    dir: PathBuf,
    format: Format,
    source: PathBuf,
    rows: usize,
    finished: bool,
    final_loss: Option<f64>,
    warnings: Vec<String>,
}

/// Reads and stages every source, on as many threads as there are cores (at most 8).
fn stage(
    sources: &[super::Source],
    opts: &ImportOptions,
    staging: &Path,
    table: bool,
) -> Vec<Result<Vec<Staged>, ImportError>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<Result<Vec<Staged>, ImportError>>>> =
        sources.iter().map(|_| Mutex::new(None)).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8)
        .min(sources.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(src) = sources.get(i) else { break };
                let outcome = stage_one(src, opts, staging, i, table);
                *slots[i].lock().expect("no panics while held") = Some(outcome);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("no panics while held")
                .expect("every source staged")
        })
        .collect()
}

fn stage_one(
    src: &super::Source,
    opts: &ImportOptions,
    staging: &Path,
    i: usize,
    table: bool,
) -> Result<Vec<Staged>, ImportError> {
    let mut out = Vec::new();
    for (k, raw) in src.read(&opts.keys)?.into_iter().enumerate() {
        let run = assemble(raw, src.format, opts)?;
        // One folder per run, straight in the staging folder (fewer folders to make).
        let d = staging.join(format!("{i}-{k}"));
        let name = folder_name(&run.name);
        let final_loss = write_record(&d, &run, &name)?;
        if table {
            // The table's rows, written beside the record and joined in source order.
            let mut rows = String::new();
            rows_csv(&run, &name, &mut rows, Some(final_loss));
            let p = d.join("table-rows.csv");
            std::fs::write(&p, rows).map_err(io(&p))?;
            std::fs::write(d.join("table-header"), header(&run, true).join(",")).map_err(io(&d))?;
        }
        out.push(Staged {
            name: run.name.clone(),
            dir: d,
            format: run.format,
            source: run.source.clone(),
            rows: run.rows.len(),
            finished: run.finished,
            final_loss,
            warnings: run.warnings.clone(),
        });
    }
    Ok(out)
}

fn move_into_place(runs: &[(Staged, String)], root: &Path, force: bool) -> Result<(), ImportError> {
    let mut blocked = Vec::new();
    for (_, name) in runs {
        let target = root.join(name);
        if target.exists() && !(force && imported(&target)) {
            blocked.push(name.clone());
        }
    }
    if !blocked.is_empty() {
        return Err(ImportError::new(
            root,
            "",
            format!(
                "already holds run folders of these names: {} ({}); nothing was written",
                crate::error::list(&blocked, ", "),
                if force {
                    "not written by an import, so not replaced"
                } else {
                    "--force replaces those an import wrote"
                }
            ),
        ));
    }
    for (s, name) in runs {
        let target = root.join(name);
        // The run's own files carry its name as the source gives it; the folder is its
        // safe name.
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(io(&target))?;
        }
        std::fs::rename(&s.dir, &target).map_err(io(&target))?;
    }
    Ok(())
}

fn write_table(runs: &[(Staged, String)], file: &Path) -> Result<(), ImportError> {
    let finished: Vec<&(Staged, String)> = runs.iter().filter(|(s, _)| s.finished).collect();
    if finished.is_empty() {
        return Err(ImportError::new(file, "", "no imported run finished, so the table would be empty (unfinished runs go to a folder with --out)"));
    }
    let headers: Vec<String> = finished
        .iter()
        .map(|(s, _)| std::fs::read_to_string(s.dir.join("table-header")).unwrap_or_default())
        .collect();
    if headers.iter().any(|h| *h != headers[0]) {
        return Err(ImportError::new(file, "", "the runs carry different columns (some were counted with --model-config, some not); import them into a folder with --out"));
    }
    let mut out = headers[0].clone().into_bytes();
    out.push(b'\n');
    for (s, _) in &finished {
        let p = s.dir.join("table-rows.csv");
        out.extend(std::fs::read(&p).map_err(io(&p))?);
    }
    write_atomic(file, &out).map_err(io(file))
}
