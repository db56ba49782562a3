//! `isoflop._isoflop`: the Rust half of the Python package (python/). Tables come in as CSV
//! text (the Python side writes a DataFrame or a dict of arrays as CSV), so the same reader,
//! aliases and error messages serve the CLI and Python; results go out as JSON, the same
//! JSON the CLI writes. Every fit releases the GIL. libtorch is never linked.

use isoflop_core::RunTable;
use isoflop_fit::allocate::{allocate as allocate_laws, LawSet, Target};
use isoflop_fit::report::FitReport;
use isoflop_study::FitSpec;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::path::Path;

/// Bad input (a table, an option): Python raises it as `isoflop.InputError`.
fn input(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The fit options Python passes as JSON: `isoflop fit`'s, by the same names and with the
/// same defaults (a [`FitSpec`]; keys left out take its default, unknown keys are refused).
fn spec(options: &str) -> PyResult<FitSpec> {
    serde_json::from_str(options).map_err(|e| {
        // Name the keyword: the first one that is refused on its own.
        let keys: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(options).unwrap_or_default();
        for (k, v) in keys {
            let one = serde_json::json!({ k.clone(): v });
            if let Err(e) = serde_json::from_value::<FitSpec>(one) {
                let e = e.to_string().replace('`', "");
                return input(format!("{k}: {}", e.split(" at line").next().unwrap_or(&e)));
            }
        }
        input(format!("options: {e}"))
    })
}

/// The table of CSV text (`csv`, named `source`), or of the file or folder `source` where
/// `csv` is empty, read with the options' columns.
fn table(csv: &str, source: &str, spec: &FitSpec) -> PyResult<RunTable> {
    let choice = spec.columns();
    if csv.is_empty() {
        // A path: the command line's reader (CSV, JSON Lines, or a folder of run folders).
        return RunTable::read_with(Path::new(source), &choice).map_err(input);
    }
    RunTable::from_csv_with(Path::new(source), csv, &choice).map_err(input)
}

/// Runs `work` on another thread with the GIL released, checking every 50 ms for Ctrl-C
/// (Python's pending signals); on one, the bootstrap is told to stop, its result is
/// discarded, and KeyboardInterrupt is raised.
fn interruptible<T: Send + 'static>(
    py: Python<'_>,
    work: impl FnOnce() -> T + Send + 'static,
) -> PyResult<T> {
    use std::sync::atomic::Ordering;
    isoflop_fit::stats::CANCEL.store(false, Ordering::SeqCst);
    let caller = std::thread::current();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    let handle = std::thread::spawn(move || {
        let out = work();
        finished.store(true, Ordering::SeqCst);
        caller.unpark();
        out
    });
    loop {
        // Wakes as soon as the work ends, or after 50 ms to look for a signal.
        py.detach(|| std::thread::park_timeout(std::time::Duration::from_millis(50)));
        if done.load(Ordering::SeqCst) || handle.is_finished() {
            return handle
                .join()
                .map_err(|_| PyRuntimeError::new_err("the fit panicked"));
        }
        if let Err(e) = py.check_signals() {
            isoflop_fit::stats::CANCEL.store(true, Ordering::SeqCst);
            let _ = py.detach(|| handle.join());
            isoflop_fit::stats::CANCEL.store(false, Ordering::SeqCst);
            return Err(e);
        }
    }
}

/// Fits a table given as CSV text; returns (report JSON, laws JSON, warnings JSON: the
/// report's warnings, as `isoflop fit` prints them). `options`: a [`FitSpec`] as JSON, the
/// options of `isoflop fit` by their field names (`{}` for every default).
#[pyfunction]
fn fit(
    py: Python<'_>,
    csv: &str,
    source: &str,
    options: &str,
) -> PyResult<(String, String, String)> {
    let spec = spec(options)?;
    spec.settings().map_err(input)?; // the options checked before the table is read
    let t = table(csv, source, &spec)?;
    let report = interruptible(py, move || isoflop_study::fit(&t, &spec, None))?.map_err(input)?;
    Ok((
        json(&report)?,
        json(&report.laws())?,
        json(&report.warnings())?,
    ))
}

/// The optimal model for a target (`flops`, `params` or `loss`) by every law in `laws`
/// (laws JSON, as `fit` returns and `isoflop fit --out` writes); JSON allocations.
#[pyfunction]
#[pyo3(signature = (laws, target, value, level=0.95))]
fn allocate(laws: &str, target: &str, value: f64, level: f64) -> PyResult<String> {
    let laws = law_set(laws)?;
    check_level(level)?;
    let t = match target {
        "flops" => Target::Flops(value),
        "params" => Target::Params(value),
        "loss" => Target::Loss(value),
        other => {
            return Err(input(format!(
                "target '{other}': give flops, params or loss"
            )))
        }
    };
    json(&allocate_laws(&laws, t, level).map_err(input)?)
}

fn law_set(laws: &str) -> PyResult<LawSet> {
    LawSet::from_json(laws, "the law set").map_err(input)
}

fn check_level(level: f64) -> PyResult<()> {
    if level > 0.0 && level < 1.0 {
        Ok(())
    } else {
        Err(input(format!(
            "level must lie strictly between 0 and 1, got {level}"
        )))
    }
}

/// Approach 3's parameter intervals at `level` from the law set's bootstrap samples (the
/// fit's own percentile intervals), else a preset's published 95% intervals, else none:
/// JSON `{"source": ..., "intervals": {name: {lo, hi, level}}}` or `null`.
#[pyfunction]
#[pyo3(signature = (laws, level=0.95))]
fn law_intervals(laws: &str, level: f64) -> PyResult<String> {
    let laws = law_set(laws)?;
    check_level(level)?;
    let samples = laws
        .approach3
        .as_ref()
        .map(|a| a.samples.as_slice())
        .unwrap_or_default();
    if let Some(iv) = isoflop_fit::parametric::law_intervals(samples, samples.len(), 0, level) {
        let named: Vec<(&str, isoflop_fit::stats::Interval)> = vec![
            ("E", iv.e),
            ("A", iv.a),
            ("B", iv.b),
            ("alpha", iv.alpha),
            ("beta", iv.beta),
        ];
        let map: serde_json::Map<String, serde_json::Value> = named
            .into_iter()
            .map(|(k, v)| Ok((k.to_string(), serde_json::to_value(v)?)))
            .collect::<Result<_, serde_json::Error>>()
            .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
        let source = format!("{} bootstrap resamples", samples.len());
        return json(&serde_json::json!({ "source": source, "intervals": map }));
    }
    match &laws.published {
        Some((ivs, source)) if (level - 0.95).abs() < 1e-12 => json(&serde_json::json!({
            "source": source,
            "intervals": ivs.iter().map(|(k, v)| (k.clone(), v)).collect::<std::collections::BTreeMap<_, _>>(),
        })),
        _ => Ok("null".into()),
    }
}

/// A built-in law set (`chinchilla`, `chinchilla-unrounded`, `epoch`, `muennighoff2023`,
/// `kaplan2020`) as laws JSON.
#[pyfunction]
fn preset(name: &str) -> PyResult<String> {
    json(&LawSet::preset(name).map_err(input)?)
}

/// The figures of a fit (report JSON, and its table as CSV) as [(name, SVG or None, why not)].
#[pyfunction]
fn figures(
    py: Python<'_>,
    report: &str,
    csv: &str,
    source: &str,
    target_flops: f64,
    options: &str,
) -> PyResult<Vec<(String, Option<String>, Option<String>)>> {
    let r: FitReport =
        serde_json::from_str(report).map_err(|e| input(format!("not a fit report: {e}")))?;
    let t = table(csv, source, &spec(options)?)?;
    if !(target_flops > 0.0 && target_flops.is_finite()) {
        return Err(input(format!(
            "target_flops must be positive, got {target_flops}"
        )));
    }
    py.detach(|| {
        let figs = isoflop_plot::spec::figures(&r, &t, target_flops);
        isoflop_plot::report::FIGURES
            .iter()
            .map(|def| match (def.get)(&figs) {
                Ok(fig) => match isoflop_plot::render::svg(fig) {
                    Ok(svg) => Ok((def.name.to_string(), Some(svg), None)),
                    Err(e) => Err(PyRuntimeError::new_err(format!("{}: {e}", def.name))),
                },
                Err(why) => Ok((def.name.to_string(), None, Some(why.clone()))),
            })
            .collect()
    })
}

pyo3::create_exception!(
    _isoflop,
    RunHeldError,
    pyo3::exceptions::PyException,
    "Another live process holds the run (its lease): nothing was written."
);
pyo3::create_exception!(
    _isoflop,
    RunEndedError,
    pyo3::exceptions::PyException,
    "The run has ended (finished, diverged, or failed on its own terms)."
);

fn writer_err(e: isoflop_core::writer::WriterError) -> PyErr {
    use isoflop_core::writer::WriterError;
    match e {
        WriterError::Held { .. } => RunHeldError::new_err(e.to_string()),
        WriterError::Ended { .. } => RunEndedError::new_err(e.to_string()),
        WriterError::Io { .. } => pyo3::exceptions::PyOSError::new_err(e.to_string()),
        WriterError::Bad(_) => input(e),
    }
}

/// The one writer of run records (`isoflop_core::writer::RunWriter`), for Python's
/// `isoflop.Recorder`: the same files, lease, divergence and `final_loss` rules as
/// `isoflop train`.
#[pyclass(module = "isoflop._isoflop")]
struct RunRecorder {
    w: Option<isoflop_core::writer::RunWriter>,
}

impl RunRecorder {
    fn writer(&mut self) -> PyResult<&mut isoflop_core::writer::RunWriter> {
        self.w
            .as_mut()
            .ok_or_else(|| RunEndedError::new_err("the recorder was closed"))
    }
}

#[pymethods]
impl RunRecorder {
    /// Opens run `run` in folder `out` (config: JSON text), taking its lease.
    #[new]
    fn new(out: &str, run: &str, params: u64, config: &str) -> PyResult<Self> {
        let config: serde_json::Value =
            serde_json::from_str(config).map_err(|e| input(format!("config: {e}")))?;
        let w = isoflop_core::writer::RunWriter::open(Path::new(out), run, params, &config)
            .map_err(writer_err)?;
        Ok(RunRecorder { w: Some(w) })
    }

    /// Logs one step; returns the divergence reason where this row ends the run.
    #[pyo3(signature = (step, tokens, loss, lr, eval_loss=None, flops=None))]
    fn log(
        &mut self,
        step: u64,
        tokens: u64,
        loss: f64,
        lr: f64,
        eval_loss: Option<f64>,
        flops: Option<f64>,
    ) -> PyResult<Option<String>> {
        self.writer()?
            .log(step, tokens, loss, lr, eval_loss, flops)
            .map_err(writer_err)
    }

    /// Writes the curve now.
    fn flush(&mut self) -> PyResult<()> {
        self.writer()?.flush().map_err(writer_err)
    }

    /// Ends the run as finished; the summary as JSON.
    #[pyo3(signature = (eval_loss=None))]
    fn finish(&mut self, eval_loss: Option<f64>) -> PyResult<String> {
        let s = self.writer()?.finish(eval_loss).map_err(writer_err)?;
        self.w = None;
        json(&s)
    }

    /// Ends the run as failed (`transient`: the next sweep resumes it); the summary as JSON.
    fn fail(&mut self, reason: &str, transient: bool) -> PyResult<String> {
        let s = self.writer()?.fail(reason, transient).map_err(writer_err)?;
        self.w = None;
        json(&s)
    }

    /// Releases the lease without ending the run (it stays unfinished).
    fn close(&mut self) {
        self.w = None;
    }

    /// The last step an earlier session logged, if any.
    #[getter]
    fn resume_step(&self) -> Option<u64> {
        self.w.as_ref().and_then(|w| w.resume_step())
    }

    /// True once the run has ended (finished, diverged, failed) or the recorder closed.
    #[getter]
    fn ended(&self) -> bool {
        self.w.as_ref().is_none_or(|w| w.has_ended())
    }
}

/// Checks a law file's text as `isoflop allocate --law` does (`LawSet::from_json`), `name`
/// starting the message.
#[pyfunction]
fn check_laws(text: &str, name: &str) -> PyResult<()> {
    LawSet::from_json(text, name).map(|_| ()).map_err(input)
}

/// A run table read by the command line's one reader (a CSV or JSON Lines file, or a
/// folder of run folders), as CSV text (`RunTable::to_csv`) and its notes.
#[pyfunction]
fn read_table(path: &str) -> PyResult<(String, Vec<String>)> {
    let t = RunTable::read(Path::new(path)).map_err(input)?;
    Ok((t.to_csv(), t.notes))
}

/// `isoflop import` (`isoflop_core::import::import_runs`): `keys` a JSON object of the
/// options (`format`, `loss_key`, ..., `params`, `model_config`, `context`,
/// `tokens_per_step`, `total_steps`), the report as JSON.
#[pyfunction]
#[pyo3(signature = (sources, out, table, options, skip_bad, force))]
fn import_runs(
    sources: Vec<String>,
    out: Option<String>,
    table: Option<String>,
    options: &str,
    skip_bad: bool,
    force: bool,
) -> PyResult<String> {
    use isoflop_core::import::{Format, ImportOptions, Keys, Output};
    let o: serde_json::Value = serde_json::from_str(options).map_err(input)?;
    let text = |k: &str| o.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let number = |k: &str| o.get(k).and_then(serde_json::Value::as_f64);
    let format = match text("format") {
        None => None,
        Some(f) => Some(Format::parse(&f).ok_or_else(|| {
            input(format!(
                "format '{f}': one of {}",
                Format::ALL.map(Format::name).join(", ")
            ))
        })?),
    };
    let model = match text("model_config") {
        None => None,
        Some(p) => Some(
            isoflop_core::arch::Arch::read(Path::new(&p), number("context").map(|c| c as usize))
                .map_err(input)?
                .count(),
        ),
    };
    let opts = ImportOptions {
        format,
        keys: Keys {
            loss: text("loss_key"),
            eval_loss: text("eval_loss_key"),
            step: text("step_key"),
            tokens: text("tokens_key"),
            lr: text("lr_key"),
            run: text("run_key"),
            params: text("params_key"),
        },
        tokens_per_step: number("tokens_per_step"),
        params: number("params"),
        model,
        total_steps: number("total_steps").map(|s| s as u64),
    };
    let output = match (out, table) {
        (Some(d), None) => Output::Runs(d.into()),
        (None, Some(t)) => Output::Table(t.into()),
        _ => {
            return Err(input(
                "give out (a folder of run records) or table (a CSV file), not both",
            ))
        }
    };
    let paths: Vec<std::path::PathBuf> = sources.iter().map(Into::into).collect();
    let report = isoflop_core::import::import_runs(&paths, &opts, &output, skip_bad, force)
        .map_err(input)?;
    json(&report)
}

/// `isoflop count --json`: a model config's architecture and counts, as JSON.
#[pyfunction]
#[pyo3(signature = (config, context=None))]
fn count(config: &str, context: Option<usize>) -> PyResult<String> {
    let arch = isoflop_core::arch::Arch::read(Path::new(config), context).map_err(input)?;
    let c = arch.count();
    json(&serde_json::json!({"arch": arch, "count": c}))
}

/// The Rust half of the `isoflop` Python package.
#[pymodule]
fn _isoflop(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RunRecorder>()?;
    m.add("RunHeldError", m.py().get_type::<RunHeldError>())?;
    m.add("RunEndedError", m.py().get_type::<RunEndedError>())?;
    m.add("EXIT_HELD", isoflop_core::record::EXIT_HELD)?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(allocate, m)?)?;
    m.add_function(wrap_pyfunction!(preset, m)?)?;
    m.add_function(wrap_pyfunction!(law_intervals, m)?)?;
    m.add_function(wrap_pyfunction!(figures, m)?)?;
    m.add_function(wrap_pyfunction!(read_table, m)?)?;
    m.add_function(wrap_pyfunction!(check_laws, m)?)?;
    m.add_function(wrap_pyfunction!(import_runs, m)?)?;
    m.add_function(wrap_pyfunction!(count, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
