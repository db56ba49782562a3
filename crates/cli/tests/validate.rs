//! `isoflop validate` from the command line: a table with budgets is validated on its largest
//! budget, as text and JSON; splits that leave a side too small, or a threshold outside the
//! data, are errors naming the split and the counts.

use std::path::PathBuf;

mod common;
use common::{isoflop, stderr, stdout};

/// Five IsoFLOP budgets of nine sizes from L = 1.8 + 480/N^0.35 + 2100/D^0.37, with a small
/// deterministic wiggle.
fn table(name: &str) -> PathBuf {
    let d = common::tmpdir("validate", name);
    let p = d.join("runs.csv");
    let mut s = String::from("params,tokens,loss,budget\n");
    let g = ((0.35f64 * 480.0) / (0.37 * 2100.0)).powf(1.0 / 0.72);
    for (k, c) in [1e18f64, 3e18, 1e19, 3e19, 1e20].iter().enumerate() {
        let n0 = g * (c / 6.0).powf(0.37 / 0.72);
        for j in -4..=4 {
            let n = n0 * 10f64.powf(j as f64 * 0.15);
            let t = c / (6.0 * n);
            let l = (1.8 + 480.0 / n.powf(0.35) + 2100.0 / t.powf(0.37))
                * (1.0 + 0.003 * ((k * 9 + (j + 4) as usize) as f64 * 1.7).sin());
            s += &format!("{n},{t},{l},{c}\n");
        }
    }
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn the_largest_budget_is_predicted_from_the_others() {
    let p = table("ok");
    let o = isoflop(&[
        "validate",
        p.to_str().unwrap(),
        "--boot",
        "100",
        "--backtest",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("the 1 largest of 5 budgets") && text.contains("backtest"),
        "{text}"
    );
    // The backtest figure: an SVG with a point per (origin, target) and a loss series.
    let fig = p.with_file_name("backtest.svg");
    let o = isoflop(&[
        "validate",
        p.to_str().unwrap(),
        "--boot",
        "0",
        "--backtest",
        "--figure",
        fig.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let svg = std::fs::read_to_string(&fig).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("loss, Approach 3")
            && svg.contains("Decades of FLOPs"),
        "{}",
        &svg[..200.min(svg.len())]
    );
    let o = isoflop(&["validate", p.to_str().unwrap(), "--boot", "100", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["held_runs"], 9);
    let loss = v["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["quantity"] == "loss")
        .unwrap();
    assert!(
        loss["mean_abs_rel_error"].as_f64().unwrap() < 0.02,
        "{loss}"
    );
    assert_eq!(v["runs"].as_array().unwrap().len(), 9);
}

#[test]
fn bad_splits_name_the_split_and_the_counts() {
    let p = table("bad");
    for (args, says) in [
        (vec!["--holdout-top-budgets", "5"], "of 5 budgets"),
        (
            vec!["--holdout-flops-above", "1e40"],
            "outside the runs' FLOPs",
        ),
        (
            vec!["--holdout-params-above", "1"],
            "outside the runs' sizes",
        ),
        (vec!["--holdout-flops-above", "1e18"], "form 1 budget"),
    ] {
        let mut a = vec!["validate", p.to_str().unwrap(), "--boot", "0"];
        a.extend(args.iter());
        let o = isoflop(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&o).contains("hold-out split") && stderr(&o).contains(says),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

/// Two experiments in one table: a `source` column, and laws with different exponents.
fn mixed() -> PathBuf {
    let d = common::tmpdir("validate", "mixed");
    let p = d.join("mixed.csv");
    let mut s = String::from("source,params,tokens,loss\n");
    for (src, beta) in [("lab-a", 0.28), ("lab-b", 0.40)] {
        for i in 0..7 {
            for j in 0..7 {
                let n = 1e7 * 10f64.powf(i as f64 * 0.4);
                let t = 1e9 * 10f64.powf(j as f64 * 0.4);
                let l = 1.8 + 480.0 / n.powf(0.34) + 2100.0 / t.powf(beta);
                s += &format!("{src},{n},{t},{l}\n");
            }
        }
    }
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn a_table_that_mixes_experiments_is_fitted_per_group_or_filtered() {
    let p = mixed();
    let path = p.to_str().unwrap();
    // Pooled: a warning names the varying column and how to split it.
    let o = isoflop(&["fit", path, "--approach", "3", "--boot", "0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("column 'source' holds 2 different values (lab-a, lab-b)")
            && stderr(&o).contains("--group-by source"),
        "{}",
        stderr(&o)
    );
    // Per group: one row each, each with its own exponent.
    let o = isoflop(&[
        "fit",
        path,
        "--approach",
        "3",
        "--boot",
        "0",
        "--group-by",
        "source",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let beta = |k: usize| {
        v[k]["report"]["approach3"]["fitted"]["law"]["beta"]
            .as_f64()
            .unwrap()
    };
    assert_eq!(v[0]["group"], "source=lab-a");
    assert!(
        (beta(0) - 0.28).abs() < 0.01 && (beta(1) - 0.40).abs() < 0.01,
        "{} {}",
        beta(0),
        beta(1)
    );
    let text = stdout(&isoflop(&[
        "fit",
        path,
        "--approach",
        "3",
        "--boot",
        "0",
        "--group-by",
        "source",
    ]));
    assert!(
        text.contains("source=lab-a") && text.contains("source=lab-b"),
        "{text}"
    );
    // Filtered: one experiment, no warning.
    let o = isoflop(&[
        "fit",
        path,
        "--approach",
        "3",
        "--boot",
        "0",
        "--where",
        "source!=lab-a",
        "--json",
    ]);
    assert!(
        o.status.success() && !stderr(&o).contains("holds 2 different"),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["runs"], 49);
    // A filter on a column the file lacks, and one that leaves nothing, are named errors.
    let o = isoflop(&["fit", path, "--where", "lab=x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--where lab") && stderr(&o).contains("source, params"),
        "{}",
        stderr(&o)
    );
    let o = isoflop(&["fit", path, "--where", "source=lab-c"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no row passes source=lab-c"),
        "{}",
        stderr(&o)
    );
}
