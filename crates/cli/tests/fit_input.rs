//! Tables the fit refuses or warns about, and fit options that ask for too much: one model
//! size, losses too large to be nats, an allocation far outside the fitted range, a bootstrap
//! larger than memory, `--drop-top` beyond the table. Each test is named after what it
//! guards.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{isoflop, law, stderr, stdout, table};

fn tmpdir(name: &str) -> PathBuf {
    common::tmpdir("fit-input", name)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fittable table: 4 sizes x 3 token counts of [`common::law`].
fn good_table(dir: &Path) -> PathBuf {
    let mut rows = Vec::new();
    for n in [1e6, 2e6, 4e6, 8e6] {
        for d in [2e7, 6e7, 2e8] {
            rows.push((n, d, law(n, d)));
        }
    }
    table(dir, "runs.csv", &rows)
}

#[test]
fn a_table_at_one_model_size_refuses_approach_3_with_a_warning() {
    let d = tmpdir("oneN");
    let rows: Vec<_> = [1e7, 3e7, 1e8, 2e8, 5e8, 1e9]
        .iter()
        .map(|&t| (1e6, t, law(1e6, t)))
        .collect();
    let p = table(&d, "oneN.csv", &rows);
    let o = isoflop(&[
        "fit",
        p.to_str().unwrap(),
        "--boot",
        "10",
        "--approach",
        "3",
    ]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("same model sizes N"), "{}", stderr(&o));
    let rows: Vec<_> = [1e6, 2e6, 4e6, 8e6, 1.6e7, 3.2e7]
        .iter()
        .map(|&n| (n, 1e8, law(n, 1e8)))
        .collect();
    let p = table(&d, "oneD.csv", &rows);
    let o = isoflop(&["fit", p.to_str().unwrap(), "--boot", "10"]);
    assert!(stderr(&o).contains("same token counts D"), "{}", stderr(&o));
    assert!(!stdout(&o).contains("alpha"), "{}", stdout(&o));
}

#[test]
fn losses_too_large_to_be_nats_warn() {
    let d = tmpdir("bits");
    let mut rows = Vec::new();
    for n in [1e6, 2e6, 4e6, 8e6] {
        for t in [1e7, 3e7, 1e8] {
            rows.push((n, t, 10.0 * law(n, t)));
        }
    }
    let p = table(&d, "ppl.csv", &rows);
    let o = isoflop(&["fit", p.to_str().unwrap(), "--boot", "0", "--approach", "3"]);
    assert!(
        stderr(&o).contains("nats per token") && stderr(&o).contains("perplexities"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_allocation_far_outside_the_fitted_range_warns_with_its_decades() {
    let o = isoflop(&["allocate", "--flops", "1e60", "--preset", "epoch"]);
    assert!(o.status.success());
    assert!(stderr(&o).contains("37.9 decades above"), "{}", stderr(&o));
    let o = isoflop(&["allocate", "--flops", "5.76e23", "--preset", "epoch"]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

#[test]
fn a_bootstrap_larger_than_memory_is_refused_before_any_work() {
    let d = tmpdir("boot");
    let t0 = std::time::Instant::now();
    let o = isoflop(&["fit", s(&good_table(&d)), "--boot", "1000000000"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("--boot 1000000000") && err.contains("at most"),
        "{err}"
    );
    assert!(t0.elapsed().as_secs() < 10);
}

#[test]
fn drop_top_larger_than_the_table_names_the_option_and_the_counts() {
    let d = tmpdir("droptop");
    let o = isoflop(&[
        "fit",
        s(&good_table(&d)),
        "--drop-top",
        "100",
        "--boot",
        "0",
    ]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("--drop-top 100 dropped 12 of the table's 12 runs, leaving 0"),
        "{err}"
    );
}

#[test]
fn epochs_own_file_fits_with_one_line_per_reason_and_no_warning_about_its_colours() {
    let epoch = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/epoch_chinchilla_svg_extracted_data.csv");
    if !epoch.exists() {
        eprintln!("skipped: {} is absent", epoch.display());
        return;
    }
    let o = isoflop(&["fit", s(&epoch), "--boot", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    // Its `color` and `hex_color` columns draw the loss (one loss per colour): not
    // experiments, so no mixed-table warning.
    assert!(!err.contains("column '"), "{err}");
    // Four of its seven automatic budgets have too few runs: one line says so.
    let folded: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("budgets refused, each with fewer than 3 runs"))
        .collect();
    assert_eq!(folded.len(), 1, "{err}");
    assert!(folded[0].contains("4 of 7 budgets"), "{err}");
    let each = |e: &str| e.lines().filter(|l| l.contains("(1 runs) refused")).count();
    assert_eq!(each(&err), 0, "{err}");
    // --verbose lists each of them as well.
    let o = isoflop(&["fit", s(&epoch), "--boot", "0", "--verbose"]);
    let err = stderr(&o);
    assert_eq!(each(&err), 3, "{err}");
    assert!(err.contains("budget 1.905e18 (2 runs) refused"), "{err}");
}
