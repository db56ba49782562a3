//! The one writer of run records (see [`crate::record`]): the curve, written whole and
//! renamed into place; the divergence rule; the summary, with `final_loss` by
//! [`final_loss`]'s rule, written last. isoflop's trainer writes through these functions,
//! and so does [`RunWriter`], the writer any other training loop uses (Python's
//! `isoflop.Recorder`, through PyO3): both write the same three files the same way.

use crate::lease::{Holder, Lease, LeaseError};
use crate::record::{
    self, final_loss, write_atomic, CurveRow, RunStatus, RunSummary, CONFIG_FILE, CURVE_FILE,
    SUMMARY_FILE,
};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A step's loss above both this many times the median of the run's recent losses and that
/// median plus [`JUMP_NATS`] marks the run diverged ([`loss_jump`]).
pub const JUMP_FACTOR: f64 = 3.0;
/// See [`JUMP_FACTOR`].
pub const JUMP_NATS: f64 = 3.0;
/// How many recent losses [`loss_jump`] compares with (it needs at least half of them).
pub const JUMP_WINDOW: usize = 40;

/// Whether `loss` jumped far above the run's own `recent` losses: above [`JUMP_FACTOR`]
/// times their median and above the median plus [`JUMP_NATS`] nats (a byte-level model that
/// predicts uniformly has a loss of ln 256 = 5.5; a healthy run's spikes stay well under
/// both bounds). Returns the median it compared with. Needs [`JUMP_WINDOW`]/2 recent losses.
pub fn loss_jump(recent: &[f64], loss: f64) -> Option<f64> {
    if recent.len() < JUMP_WINDOW / 2 {
        return None;
    }
    let mut v = recent.to_vec();
    v.sort_by(f64::total_cmp);
    let m = v[v.len() / 2];
    (loss > JUMP_FACTOR * m && loss > m + JUMP_NATS).then_some(m)
}

/// The losses the divergence rule compares a new one with: the last [`JUMP_WINDOW`] finite
/// losses of `rows`, newest first.
pub fn recent_losses(rows: &[CurveRow]) -> VecDeque<f64> {
    rows.iter()
        .rev()
        .map(|r| r.loss)
        .filter(|l| l.is_finite())
        .take(JUMP_WINDOW)
        .collect()
}

/// Why `loss` at `step` ends the run as diverged, by the divergence rule: not finite, or
/// a [`loss_jump`] above the `recent` losses. `None`: it goes on.
pub fn divergence(recent: &[f64], loss: f64, step: u64) -> Option<String> {
    if !loss.is_finite() {
        return Some(format!("loss became {loss} at step {step}"));
    }
    loss_jump(recent, loss).map(|m| {
        format!(
            "loss jumped to {loss:.4} at step {step}, above {JUMP_FACTOR}x the median {m:.4} of its {} recent losses",
            recent.len()
        )
    })
}

/// Writes `rows` as the run's `curve.csv`, whole.
///
/// # Errors
/// The I/O error, with the path.
pub fn write_curve(out: &Path, rows: &[CurveRow]) -> std::io::Result<()> {
    write_atomic(&out.join(CURVE_FILE), record::curve_csv(rows).as_bytes())
}

/// Writes the run's `summary.json`, whole: the last file a run writes.
///
/// # Errors
/// The I/O error, with the path.
pub fn write_summary(out: &Path, s: &RunSummary) -> std::io::Result<()> {
    write_atomic(
        &out.join(SUMMARY_FILE),
        &serde_json::to_vec_pretty(s).expect("a summary serialises"),
    )
}

/// The summary of a run that ended (`Finished` or `Diverged`) after `rows` (its curve),
/// `step` the steps it completed: tokens and FLOPs from its last row at or before `step`,
/// `final_loss` by [`final_loss`] over those rows (a diverged run's end is its last good
/// step), `reason` and `at` for a diverged one.
#[allow(clippy::too_many_arguments)]
pub fn ended_summary(
    run: &str,
    params: u64,
    status: RunStatus,
    reason: Option<String>,
    at: Option<u64>,
    step: u64,
    rows: &[CurveRow],
    secs: f64,
    final_eval_loss: Option<f64>,
) -> RunSummary {
    let kept: Vec<&CurveRow> = rows
        .iter()
        .filter(|r| status == RunStatus::Finished || r.step <= step)
        .collect();
    let last = kept.last();
    let tokens = last.map_or(0, |r| r.tokens);
    RunSummary {
        run: run.to_string(),
        status,
        reason,
        failed_at_step: at,
        steps: step,
        params,
        tokens,
        flops: last.map_or(0.0, |r| r.flops),
        final_loss: final_loss(
            &kept
                .iter()
                .map(|r| (r.tokens as f64, r.loss))
                .collect::<Vec<_>>(),
        ),
        final_eval_loss,
        secs,
        tokens_per_sec: if secs > 0.0 {
            tokens as f64 / secs
        } else {
            0.0
        },
        transient: false,
    }
}

/// Why a run could not be opened for writing.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    /// Another live process holds the run (its lease): nothing was written. A script
    /// exits with [`record::EXIT_HELD`].
    #[error("{path}: the run is held by process {} on {}; nothing was written", .holder.pid, .holder.host)]
    Held {
        /// The run folder.
        path: PathBuf,
        /// Who holds it.
        holder: Holder,
    },
    /// The run has ended (finished, diverged, or failed on its own terms).
    #[error("{path}: the run has ended ({status:?}); a sweep's --retry-failed, or another folder, trains it again")]
    Ended {
        /// The run folder.
        path: PathBuf,
        /// How it ended.
        status: RunStatus,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The folder holds a curve that is not a run's.
    #[error(transparent)]
    Bad(#[from] crate::CoreError),
}

/// The writer of one run's record from any training loop: open it (which takes the run's
/// lease and resumes an unfinished run), [`RunWriter::log`] each step's row, then
/// [`RunWriter::finish`] or [`RunWriter::fail`]. The curve is rewritten whole at most every
/// [`RunWriter::flush_every`] (and at the end), the summary last.
#[derive(Debug)]
pub struct RunWriter {
    out: PathBuf,
    run: String,
    params: u64,
    rows: Vec<CurveRow>,
    recent: VecDeque<f64>,
    clock: Instant,
    secs0: f64,
    last_flush: Instant,
    last_refresh: Instant,
    /// How often the curve is rewritten while logging (default 5 s).
    pub flush_every: Duration,
    lease: Option<Lease>,
    ended: bool,
}

impl RunWriter {
    /// Opens the run `run` in folder `out` (created if absent): takes its lease, writes
    /// `config` as `config.json` (kept if the folder has one), and resumes an unfinished
    /// run: its curve's rows are kept, and a row logged at step S drops every kept row at S
    /// or later, so a loop resumed from an earlier checkpoint duplicates none. A run whose
    /// summary says it failed by a fault of the machine (`transient`) is resumed too.
    ///
    /// # Errors
    /// [`WriterError::Held`] for a run another live process holds, [`WriterError::Ended`]
    /// for one that has ended, and I/O and parse errors naming the file.
    pub fn open(
        out: &Path,
        run: &str,
        params: u64,
        config: &serde_json::Value,
    ) -> Result<RunWriter, WriterError> {
        let io = |path: PathBuf| move |source| WriterError::Io { path, source };
        std::fs::create_dir_all(out).map_err(io(out.to_path_buf()))?;
        let lease = match Lease::acquire(out) {
            Ok(l) => l,
            Err(LeaseError::Held(holder)) => {
                return Err(WriterError::Held {
                    path: out.to_path_buf(),
                    holder,
                })
            }
            Err(LeaseError::Io(e)) => return Err(io(out.join(crate::lease::LEASE_FILE))(e)),
        };
        let summary_path = out.join(SUMMARY_FILE);
        if summary_path.exists() {
            let s: RunSummary = record::read_json(&summary_path)?;
            if !(s.status == RunStatus::Failed && s.transient) {
                return Err(WriterError::Ended {
                    path: out.to_path_buf(),
                    status: s.status,
                });
            }
            std::fs::remove_file(&summary_path).map_err(io(summary_path.clone()))?;
        }
        let config_path = out.join(CONFIG_FILE);
        if !config_path.exists() {
            write_atomic(
                &config_path,
                &serde_json::to_vec_pretty(config).expect("JSON serialises"),
            )
            .map_err(io(config_path.clone()))?;
        }
        let curve_path = out.join(CURVE_FILE);
        let rows = if curve_path.exists() {
            record::read_curve(&curve_path)?
        } else {
            Vec::new()
        };
        let secs0 = rows.last().map_or(0.0, |r| r.secs);
        let recent = recent_losses(&rows);
        Ok(RunWriter {
            out: out.to_path_buf(),
            run: run.to_string(),
            params,
            rows,
            recent,
            clock: Instant::now(),
            secs0,
            last_flush: Instant::now(),
            last_refresh: Instant::now(),
            flush_every: Duration::from_secs(5),
            lease: Some(lease),
            ended: false,
        })
    }

    /// The last step an earlier session logged (where a resumed loop continues), if any.
    pub fn resume_step(&self) -> Option<u64> {
        self.rows.last().map(|r| r.step)
    }

    /// The rows logged so far (an earlier session's included).
    pub fn rows(&self) -> &[CurveRow] {
        &self.rows
    }

    /// Seconds since the run began, earlier sessions included.
    pub fn secs(&self) -> f64 {
        self.secs0 + self.clock.elapsed().as_secs_f64()
    }

    /// Logs one step: `tokens` seen and training `loss` after `step` optimizer steps, the
    /// rate `lr`, a held-out `eval_loss` where measured, `flops` spent (default 6 N D).
    /// Returns the divergence reason where the row ends the run as diverged (the summary is
    /// then written and further calls fail).
    ///
    /// # Errors
    /// I/O errors writing the curve or summary; logging after the run ended.
    pub fn log(
        &mut self,
        step: u64,
        tokens: u64,
        loss: f64,
        lr: f64,
        eval_loss: Option<f64>,
        flops: Option<f64>,
    ) -> Result<Option<String>, WriterError> {
        if self.ended {
            return Err(WriterError::Ended {
                path: self.out.clone(),
                status: RunStatus::Diverged,
            });
        }
        // A resumed loop logs a step an earlier session logged: the later rows go.
        if self.rows.last().is_some_and(|r| r.step >= step) {
            self.rows.retain(|r| r.step < step);
            self.recent = recent_losses(&self.rows);
        }
        let row = CurveRow {
            run: self.run.clone(),
            step,
            params: self.params,
            tokens,
            flops: flops.unwrap_or(6.0 * self.params as f64 * tokens as f64),
            loss,
            lr,
            secs: self.secs(),
            eval_loss,
        };
        let recent: Vec<f64> = self.recent.iter().copied().collect();
        if let Some(reason) = divergence(&recent, loss, step) {
            self.rows.push(row);
            let before = self.rows.len().saturating_sub(1);
            let last_good = if before > 0 {
                self.rows[before - 1].step
            } else {
                0
            };
            let s = ended_summary(
                &self.run,
                self.params,
                RunStatus::Diverged,
                Some(reason.clone()),
                Some(step),
                last_good,
                &self.rows,
                self.secs(),
                None,
            );
            self.end(&s)?;
            return Ok(Some(reason));
        }
        if self.recent.len() == JUMP_WINDOW {
            self.recent.pop_back();
        }
        self.recent.push_front(loss);
        self.rows.push(row);
        if self.last_flush.elapsed() >= self.flush_every {
            self.flush()?;
        }
        Ok(None)
    }

    /// Writes the curve now (whole), and keeps the lease fresh.
    ///
    /// # Errors
    /// The I/O error, with the path.
    pub fn flush(&mut self) -> Result<(), WriterError> {
        write_curve(&self.out, &self.rows).map_err(|source| WriterError::Io {
            path: self.out.join(CURVE_FILE),
            source,
        })?;
        self.last_flush = Instant::now();
        if self.last_refresh.elapsed() >= Duration::from_secs(30) {
            if let Some(l) = &self.lease {
                l.refresh();
            }
            self.last_refresh = Instant::now();
        }
        Ok(())
    }

    fn end(&mut self, s: &RunSummary) -> Result<(), WriterError> {
        self.flush()?;
        write_summary(&self.out, s).map_err(|source| WriterError::Io {
            path: self.out.join(SUMMARY_FILE),
            source,
        })?;
        self.ended = true;
        self.lease = None;
        Ok(())
    }

    /// Ends the run as finished: the curve, then the summary (`final_eval_loss` where the
    /// loop measured one at the end, else the last row's held-out loss).
    ///
    /// # Errors
    /// I/O errors; a run with no row logged.
    pub fn finish(&mut self, final_eval_loss: Option<f64>) -> Result<RunSummary, WriterError> {
        let Some(last) = self.rows.last() else {
            return Err(WriterError::Io {
                path: self.out.join(CURVE_FILE),
                source: std::io::Error::other("no step was logged; nothing to finish"),
            });
        };
        let eval = final_eval_loss.or(last.eval_loss);
        let s = ended_summary(
            &self.run,
            self.params,
            RunStatus::Finished,
            None,
            None,
            last.step,
            &self.rows,
            self.secs(),
            eval,
        );
        self.end(&s)?;
        Ok(s)
    }

    /// Ends the run as failed, with `reason` in one line: `transient` for a fault of the
    /// machine or an interruption (the next sweep resumes it), else it stays failed.
    ///
    /// # Errors
    /// I/O errors.
    pub fn fail(&mut self, reason: &str, transient: bool) -> Result<RunSummary, WriterError> {
        let mut s = RunSummary::failed(&self.run, self.params, reason, transient);
        if let Some(last) = self.rows.last() {
            s.steps = last.step;
            s.tokens = last.tokens;
            s.flops = last.flops;
            s.failed_at_step = Some(last.step);
        }
        s.secs = self.secs();
        self.end(&s)?;
        Ok(s)
    }

    /// True once the run has ended (finished, diverged or failed).
    pub fn has_ended(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("isoflop-writer-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_run_written_through_the_writer_reads_as_a_finished_run() {
        let d = dir("finish");
        let mut w = RunWriter::open(&d, "r1", 1000, &serde_json::json!({"n": 1})).unwrap();
        for s in 1..=10u64 {
            assert_eq!(
                w.log(s, 100 * s, 5.0 - 0.1 * s as f64, 1e-3, None, None)
                    .unwrap(),
                None
            );
        }
        let s = w.finish(Some(3.9)).unwrap();
        assert_eq!(s.status, RunStatus::Finished);
        assert_eq!(
            (s.steps, s.tokens, s.flops),
            (10, 1000, 6.0 * 1000.0 * 1000.0)
        );
        // final_loss by the one rule: the line through the last 10% (at least 3 rows).
        let rows: Vec<(f64, f64)> = (1..=10)
            .map(|s| (100.0 * s as f64, 5.0 - 0.1 * s as f64))
            .collect();
        assert_eq!(s.final_loss, final_loss(&rows));
        let t = crate::RunTable::read_runs(&d).unwrap();
        assert_eq!(t.rows.len(), 10);
        assert_eq!(t.finals["r1"], 3.9);
        // A finished run is not opened again.
        assert!(matches!(
            RunWriter::open(&d, "r1", 1000, &serde_json::json!({})),
            Err(WriterError::Ended { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_held_run_is_refused_and_a_resumed_one_drops_the_rows_after_its_step() {
        let d = dir("resume");
        let mut w = RunWriter::open(&d, "r", 10, &serde_json::json!({})).unwrap();
        assert!(matches!(
            RunWriter::open(&d, "r", 10, &serde_json::json!({})),
            Err(WriterError::Held { .. })
        ));
        for s in 1..=8u64 {
            w.log(s, s, 3.0, 1e-3, None, None).unwrap();
        }
        w.fail("interrupted", true).unwrap();
        drop(w);
        let mut w = RunWriter::open(&d, "r", 10, &serde_json::json!({})).unwrap();
        assert_eq!(w.resume_step(), Some(8));
        // The loop resumes from its checkpoint at step 5: steps 6.. are logged again.
        for s in 6..=10u64 {
            w.log(s, s, 2.0, 1e-3, None, None).unwrap();
        }
        w.finish(None).unwrap();
        let steps: Vec<u64> = record::read_curve(&d.join(CURVE_FILE))
            .unwrap()
            .iter()
            .map(|r| r.step)
            .collect();
        assert_eq!(steps, (1..=10).collect::<Vec<_>>());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_loss_that_jumps_or_is_not_finite_ends_the_run_diverged() {
        let d = dir("diverge");
        let mut w = RunWriter::open(&d, "r", 10, &serde_json::json!({})).unwrap();
        for s in 1..=30u64 {
            assert!(w.log(s, s, 2.0, 1e-3, None, None).unwrap().is_none());
        }
        let why = w.log(31, 31, 9.0, 1e-3, None, None).unwrap().unwrap();
        assert!(why.contains("jumped"), "{why}");
        let s: RunSummary = record::read_json(&d.join(SUMMARY_FILE)).unwrap();
        assert_eq!(
            (s.status, s.steps, s.failed_at_step),
            (RunStatus::Diverged, 30, Some(31))
        );
        assert!(w.log(32, 32, 2.0, 1e-3, None, None).is_err());
        let d2 = dir("nan");
        let mut w = RunWriter::open(&d2, "r", 10, &serde_json::json!({})).unwrap();
        assert!(w
            .log(1, 1, f64::NAN, 1e-3, None, None)
            .unwrap()
            .unwrap()
            .contains("NaN"));
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&d2).unwrap();
    }
}
