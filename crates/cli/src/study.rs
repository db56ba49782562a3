//! The study pipeline that `fit`, `plot` and `run` share: the fit options, reading a table
//! with the user's column choice, fitting with the convergence check, drawing the figures.

use anyhow::{bail, Context, Result};
use clap::Args;
use isoflop_core::RunTable;
use isoflop_fit::isoflop::Grouping;
use isoflop_fit::report::{FitReport, FitSettings};
use isoflop_fit::study::fit_table;
use std::path::Path;

/// Options shared by `fit`, `plot` and `run`.
#[derive(Args, Debug)]
pub struct FitOpts {
    /// Approaches to fit, e.g. `3` or `2,3` (default: every one the data supports).
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=3))]
    approach: Vec<u8>,
    /// Drop the K highest-loss runs before Approaches 2 and 3 (Epoch drops 5).
    #[arg(long, default_value_t = 0, value_name = "K")]
    drop_top: usize,
    /// Bootstrap resamples (0 for none).
    #[arg(long, default_value_t = 1000)]
    boot: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// What a bootstrap resample draws: `run` (each run on its own, as the paper and Epoch
    /// do) or `size` (each model size with all its runs: for runs of one size that are not
    /// independent, such as cooldown branches of one trunk, and to count which model shapes
    /// were trained).
    #[arg(long, default_value = "run", value_name = "run|size")]
    boot_by: isoflop_fit::stats::BootUnit,
    /// Approach 2 budgets: `chinchilla` (the paper's nine, 6e18..3e21) or a list of FLOPs;
    /// runs go to the nearest within --budget-tol decades. Default: the `budget` column,
    /// else clusters of FLOPs.
    #[arg(long)]
    budgets: Option<String>,
    /// Approach 2 tolerance in decades of FLOPs (grouping gap, or distance to a budget).
    #[arg(long, default_value_t = isoflop_fit::isoflop::TOL_DECADES)]
    budget_tol: f64,
    /// Approach 2: fit each budget's parabola to the runs within this many decades of N
    /// around its minimum (0.6 keeps a 16x band), or `all` (every run, as the paper did; the
    /// default, chosen by measurement: docs/deviations.md).
    #[arg(long, default_value = "all", value_parser = parse_window, value_name = "DECADES|all")]
    window: Window,
    /// Approach 2: regress the frontier on each budget's `mean` FLOPs (geometric mean of 6ND
    /// over its runs) or its `nominal` budget (the budget column or --budgets list).
    #[arg(long, value_enum, default_value = "mean")]
    budget_flops: BudgetFlopsArg,
    /// Approach 3 Huber delta.
    #[arg(long, default_value_t = 1e-3)]
    delta: f64,
    /// Approach 1 Gaussian smoothing, standard deviation in training steps.
    #[arg(long, default_value_t = 10.0)]
    smooth_steps: f64,
    /// Law forms to fit, e.g. `chinchilla,kaplan`: `chinchilla` (the three approaches),
    /// `data-constrained` (Muennighoff et al. 2023; the table needs unique_tokens), `kaplan`
    /// (Kaplan et al. 2020). Two or more are compared on the runs they were fitted to, and
    /// each refitted without the largest budget and scored on it.
    #[arg(
        long = "law",
        value_delimiter = ',',
        default_value = "chinchilla",
        value_name = "FORM"
    )]
    laws: Vec<String>,
    /// Approach 3 on big tables: `auto` screens the starts on 4,096 points when the table
    /// has more than 20,000, then polishes the distinct optima on all points; `off` runs
    /// every start on every point; a number screens on that many points.
    #[arg(long, default_value = "auto", value_parser = parse_screen)]
    screen: isoflop_fit::parametric::Screen,
    /// Keep only the rows where a text column has (COL=VALUE) or has not (COL!=VALUE) a
    /// value; repeat for several conditions.
    #[arg(long = "where", value_name = "COL=VALUE", value_parser = isoflop_core::Filter::parse)]
    filters: Vec<isoflop_core::Filter>,
    /// Fit each group of rows that share these columns' values separately, and compare them
    /// (`fit` only), e.g. `--group-by source` or `--group-by dataset,condition`.
    #[arg(long, value_delimiter = ',', value_name = "COL")]
    pub group_by: Vec<String>,
    /// The loss column, where several columns could be it (e.g. loss and val_loss).
    #[arg(long, value_name = "NAME")]
    loss_column: Option<String>,
    /// The params (N) column, where several could be it.
    #[arg(long, value_name = "NAME")]
    params_column: Option<String>,
    /// The tokens (D) column, where several could be it.
    #[arg(long, value_name = "NAME")]
    tokens_column: Option<String>,
    /// The flops (C) column, where several could be it.
    #[arg(long, value_name = "NAME")]
    flops_column: Option<String>,
    /// The unit the loss column is written in: nats (per token, PyTorch's cross-entropy)
    /// or bits (per token).
    #[arg(long, value_enum, default_value = "nats")]
    loss_unit: LossUnitArg,
    /// Bytes of text per token (a number, or a column of the table): losses are converted
    /// to bits per byte, so runs with different tokenizers can be fitted together.
    #[arg(long, value_name = "N|COLUMN")]
    bytes_per_token: Option<String>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LossUnitArg {
    /// Nats per token.
    Nats,
    /// Bits per token.
    Bits,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BudgetFlopsArg {
    /// The geometric mean of 6ND over the budget's runs.
    Mean,
    /// The nominal budget.
    Nominal,
}

/// `--window`: decades, or `all` (none).
#[derive(Clone, Copy, Debug)]
struct Window(Option<f64>);

fn parse_window(s: &str) -> std::result::Result<Window, String> {
    if s == "all" {
        return Ok(Window(None));
    }
    match s.parse::<f64>() {
        Ok(w) if w > 0.0 && w.is_finite() => Ok(Window(Some(w))),
        _ => Err(format!("'{s}': give a positive number of decades, or all")),
    }
}

fn parse_screen(s: &str) -> std::result::Result<isoflop_fit::parametric::Screen, String> {
    use isoflop_fit::parametric::Screen;
    match s {
        "auto" => Ok(Screen::Auto),
        "off" => Ok(Screen::Off),
        n => match n.parse::<usize>() {
            Ok(m) if m >= 6 => Ok(Screen::Points(m)),
            _ => Err(format!(
                "'{n}': give auto, off, or a number of points (at least 6)"
            )),
        },
    }
}

/// Prints a line of a long fit's progress on stderr, with the seconds since the first.
fn progress_line(line: &str) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let t = START.get_or_init(std::time::Instant::now);
    eprintln!("[{:6.1} s] {line}", t.elapsed().as_secs_f64());
}

impl FitOpts {
    /// The columns the user chose.
    pub fn columns(&self) -> isoflop_core::ColumnChoice {
        isoflop_core::ColumnChoice {
            params: self.params_column.clone(),
            tokens: self.tokens_column.clone(),
            flops: self.flops_column.clone(),
            loss: self.loss_column.clone(),
            filters: self.filters.clone(),
            loss_unit: match self.loss_unit {
                LossUnitArg::Nats => isoflop_core::LossUnit::Nats,
                LossUnitArg::Bits => isoflop_core::LossUnit::Bits,
            },
            bytes_per_token: self.bytes_per_token.clone(),
        }
    }
}

/// The fit settings of the options (checked).
pub fn settings(a: &FitOpts) -> Result<FitSettings> {
    let mut s = FitSettings::default()
        .with_bootstrap(a.boot, a.seed)
        .with_boot_unit(a.boot_by);
    if !a.approach.is_empty() {
        s.approaches = a.approach.clone();
        s.explicit = true;
    }
    s.drop_top = a.drop_top;
    s.parametric.delta = a.delta;
    s.parametric.screen = a.screen;
    s.isoflop.window_decades = a.window.0;
    s.isoflop.budget_flops = match a.budget_flops {
        BudgetFlopsArg::Mean => isoflop_fit::isoflop::BudgetFlops::Mean,
        BudgetFlopsArg::Nominal => isoflop_fit::isoflop::BudgetFlops::Nominal,
    };
    s.laws = a.laws.clone();
    s.parametric.progress = Some(progress_line);
    s.envelope.smooth_steps = a.smooth_steps;
    s.isoflop.grouping = Grouping::from_spec(a.budgets.as_deref(), a.budget_tol)
        .map_err(|e| anyhow::anyhow!("--budgets: {e}"))?;
    s.check()?;
    Ok(s)
}

/// Reads `runs` (a table or a folder of runs) with the options' columns and fits it: what
/// `fit`, `plot` and `run` do first.
///
/// # Errors
/// The options' error, the reader's (file, line, column), or the fit's.
pub fn read_and_fit(runs: &Path, opts: &FitOpts) -> Result<(RunTable, FitReport)> {
    let s = settings(opts)?;
    let table = RunTable::read_with(runs, &opts.columns())
        .with_context(|| format!("reading runs from {}", runs.display()))?;
    let report = fit_table(&table, &s).with_context(|| format!("fitting {}", runs.display()))?;
    Ok((table, report))
}

/// Warns where the table mixes what may be several experiments: text columns whose values
/// vary, with no `--where` or `--group-by` to separate them.
pub fn warn_mixed(table: &RunTable, opts: &FitOpts) {
    if !opts.filters.is_empty() || !opts.group_by.is_empty() {
        return;
    }
    for (col, n, values) in &table.varying_text {
        let col = isoflop_core::error::clip(col);
        let limit = isoflop_core::error::LIST_MAX;
        let shown: Vec<String> = values
            .iter()
            .take(limit)
            .map(|v| isoflop_core::error::clip(v))
            .collect();
        let more = if *n > shown.len() {
            format!(", and {} more", n - shown.len())
        } else {
            String::new()
        };
        let shown = shown.join(", ");
        eprintln!(
            "warning: column '{col}' holds {n} different values ({shown}{more}): the runs are fitted as one study; --group-by {col} fits each separately, --where '{col}=VALUE' picks one"
        );
    }
}

/// The value combinations of `columns` in `runs` (after the options' filters), each as the
/// filters that select it.
///
/// # Errors
/// The reader's error, or a column the file lacks.
pub fn groups(
    runs: &Path,
    opts: &FitOpts,
    columns: &[String],
) -> Result<Vec<Vec<isoflop_core::Filter>>> {
    let mut out: Vec<Vec<isoflop_core::Filter>> = vec![Vec::new()];
    for col in columns {
        let mut next = Vec::new();
        for g in out {
            let mut choice = opts.columns();
            choice.filters.extend(g.iter().cloned());
            for v in RunTable::distinct_values(runs, col, &choice)? {
                let mut h = g.clone();
                h.push(isoflop_core::Filter {
                    column: col.clone(),
                    value: v,
                    equal: true,
                });
                next.push(h);
            }
        }
        out = next;
    }
    Ok(out)
}

/// Fails where nothing usable came out of a fit: Approach 3 did not converge and no other
/// approach was fitted. Every command checks this after reporting what it has.
///
/// # Errors
/// That, in one line.
pub fn usable(report: &FitReport) -> Result<()> {
    let converged3 = report.approach3.fitted().map(|f| f.diagnostics.converged);
    if converged3 == Some(false)
        && report.approach1.fitted().is_none()
        && report.approach2.fitted().is_none()
    {
        bail!("Approach 3 did not converge and no other approach could be fitted");
    }
    Ok(())
}

/// Draws the figures, `figures.json` and `report.html` of `report` into `out`, projected to
/// `target_flops`; prints the report's warnings and what could not be drawn.
///
/// # Errors
/// The plot crate's error, naming the file.
pub fn draw(
    out: &Path,
    report: &FitReport,
    table: &RunTable,
    target_flops: f64,
    sections: &[isoflop_plot::report::Section],
) -> Result<isoflop_plot::report::Written> {
    let prov = isoflop_plot::report::Provenance {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        versions: format!(
            "isoflop {} (plotters 0.3, contour 0.13)",
            env!("CARGO_PKG_VERSION")
        ),
    };
    let written =
        isoflop_plot::report::write_all_with(out, report, table, target_flops, &prov, sections)
            .with_context(|| format!("writing figures to {}", out.display()))?;
    for w in report.warnings() {
        eprintln!("warning: {w}");
    }
    for s in &written.skipped {
        eprintln!("not drawn: {s}");
    }
    Ok(written)
}
