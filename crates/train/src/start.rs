//! Starting a run in its folder: what the folder holds (a new run, an unfinished one to
//! resume, an ended one), the config that must match to resume, the temporaries a killed
//! writer left, the checkpoint a resume starts from, and a restart from step 0 or a state
//! loaded from elsewhere (a branch's trunk).

use crate::data::Corpus;
use crate::error::{folder_err, io, Result};
use crate::event::{Event, Outcome};
use crate::model::device;
use crate::state::{remove_checkpoints, verified_checkpoints, State};
use crate::steps::{run_loop, From, Session};
use isoflop_core::record::{self, write_atomic, RunConfig, RunStatus, RunSummary};
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// The config fields that define a run (what must match to resume it): everything except
/// where and how fast it runs.
fn identity(c: &RunConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(c).expect("config serialises");
    if let Some(o) = v.as_object_mut() {
        // A trunk may gain branches (kept checkpoints) after it started; the counts follow
        // from the shape (and gain fields as isoflop counts more ways).
        for k in [
            "device",
            "threads",
            "trainer",
            "run",
            "keep_steps",
            "params",
            "flops_per_token",
        ] {
            o.remove(k);
        }
    }
    v
}

/// Removes temporary files left in `out` by a writer that was killed between writing and
/// renaming (`.NAME.tmpPID` from [`write_atomic`], `checkpoint.ot.tmp`). Called while holding
/// the run's lease, so no live writer owns them; only in a folder that holds a run.
pub(crate) fn remove_stale_temporaries(out: &Path) {
    if !out.join(record::CONFIG_FILE).exists() {
        return;
    }
    for e in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.starts_with('.') && name.contains(".tmp")) || name.ends_with(".ot.tmp") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// What is in the output folder before training.
pub(crate) enum Start {
    Fresh,
    /// An unfinished run: from its newest checkpoint that verifies, else from step 0.
    Resume,
    Done(RunSummary),
}

/// Checks what `out` holds against `config` (writing the config into a new folder): a
/// fresh start, an unfinished run to resume, or an ended one (with `resume`).
pub(crate) fn prepare(
    out: &Path,
    config: &RunConfig,
    resume: bool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Start> {
    let cfg_path = out.join(record::CONFIG_FILE);
    if !out.exists() {
        std::fs::create_dir_all(out).map_err(io(out))?;
    } else if cfg_path.exists() {
        let existing: RunConfig = record::read_json(&cfg_path)
            .map_err(|e| folder_err(out, format!("holds an unreadable config: {e}")))?;
        let (a, b) = (identity(&existing), identity(config));
        if a != b {
            let differs: Vec<String> = a
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| b.get(k.as_str()) != Some(v))
                .map(|(k, _)| k.clone())
                .collect();
            return Err(folder_err(
                out,
                format!(
                    "holds a different run (differs in: {}); choose another --out",
                    differs.join(", ")
                ),
            ));
        }
        if let Ok(summary) = record::read_json::<RunSummary>(&out.join(record::SUMMARY_FILE)) {
            if resume && summary.status == RunStatus::Failed && summary.transient {
                // A machine fault stopped it: resume (the reason was reported when it
                // happened, and a sweep keeps the old summary in its logs).
                on_event(&Event::Note(format!(
                    "{}: resuming after a failure: {}",
                    out.display(),
                    summary.reason.as_deref().unwrap_or("unknown")
                )));
                std::fs::remove_file(out.join(record::SUMMARY_FILE))
                    .map_err(io(&out.join(record::SUMMARY_FILE)))?;
                return Ok(Start::Resume);
            }
            if resume {
                return Ok(Start::Done(summary));
            }
            return Err(folder_err(out, format!("holds this run already ended ({:?}); nothing to do (use --resume to accept it, or another --out)", summary.status)));
        }
        if !resume {
            return Err(folder_err(
                out,
                "holds an unfinished run of this config; pass --resume to continue it",
            ));
        }
        if existing.keep_steps != config.keep_steps {
            // A trunk that gained branches: its config says which checkpoints it keeps.
            write_atomic(
                &cfg_path,
                &serde_json::to_vec_pretty(config).expect("config serialises"),
            )
            .map_err(io(&cfg_path))?;
        }
        return Ok(Start::Resume);
    } else if std::fs::read_dir(out)
        .map_err(io(out))?
        .flatten()
        .any(|e| e.file_name() != isoflop_core::lease::LEASE_FILE)
    {
        return Err(folder_err(
            out,
            "is not empty and holds no run; choose an empty or new folder",
        ));
    }
    write_atomic(
        &cfg_path,
        &serde_json::to_vec_pretty(config).expect("config serialises"),
    )
    .map_err(io(&cfg_path))?;
    Ok(Start::Fresh)
}

/// Where an unfinished run resumes: its newest checkpoint that verifies and loads into
/// `state`, with its curve's rows up to it; `None` where none does (the caller restarts it).
/// Each checkpoint passed over is a note.
pub(crate) fn resume_point(
    out: &Path,
    state: &mut State,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Option<From>> {
    let (good, bad) = verified_checkpoints(out);
    for f in &bad {
        on_event(&Event::Note(format!(
            "{}: {f} does not match its checksum; it is not trained on",
            out.display()
        )));
    }
    let mut loaded = None;
    let newest = good.first().map(|g| g.1);
    for (p, at, bytes) in good {
        match state.load(&p, bytes) {
            Ok(l) => {
                loaded = Some(l);
                break;
            }
            Err(e) => on_event(&Event::Note(format!(
                "{}: checkpoint at step {at} could not be loaded ({}); trying an older one",
                p.display(),
                record::one_line(&e.to_string())
            ))),
        }
    }
    let Some((step, secs)) = loaded else {
        if newest.is_some() || !bad.is_empty() {
            on_event(&Event::Note(format!(
                "{}: no checkpoint verifies; the run restarts from step 0",
                out.display()
            )));
        }
        return Ok(None);
    };
    if newest != Some(step) || !bad.is_empty() {
        on_event(&Event::Note(format!(
            "{}: resuming from the checkpoint at step {step}",
            out.display()
        )));
    }
    let curve_path = out.join(record::CURVE_FILE);
    let mut rows = Vec::new();
    if curve_path.exists() {
        rows = record::read_curve(&curve_path).map_err(|e| folder_err(out, e.to_string()))?;
        rows.retain(|r| r.step <= step);
    }
    Ok(Some(From { step, secs, rows }))
}

/// A run's folder cleared of checkpoints, its model built from its seed, then `start`
/// loads a state into it (or none) and gives the step, the seconds so far and the curve's
/// rows to train on from.
pub(crate) fn restart(
    config: &RunConfig,
    corpus: &Corpus,
    out: &Path,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
    lease: isoflop_core::lease::Lease,
    start: &mut dyn FnMut(&mut State) -> Result<From>,
) -> Result<Outcome> {
    remove_checkpoints(out);
    let dev = device(&config.device)?;
    let mut session = Session::new(config, corpus, out, lease, dev);
    let from = start(&mut session.state)?;
    run_loop(session, from, stop, on_event)
}
