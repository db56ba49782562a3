//! Law forms from the command line: the data-constrained law (fit, allocate with unique
//! tokens), inference-aware allocation, Kaplan's form and the comparison of forms, and their
//! bad input.

use std::path::PathBuf;

mod common;
use common::{isoflop, stderr, stdout};

fn tmpdir(name: &str) -> PathBuf {
    common::tmpdir("forms", name)
}

/// `fit`'s options for Chinchilla's and Kaplan's forms, Approach 3 alone, no bootstrap.
const TWO_FORMS: [&str; 6] = [
    "--law",
    "chinchilla,kaplan",
    "--boot",
    "0",
    "--approach",
    "3",
];

/// Writes `k.csv` in `d`: runs at the (N, D) pairs given, their losses from a Kaplan law
/// (N_c 3e12, alpha_N 0.09, D_c 2e13, alpha_D 0.11), without noise.
fn kaplan_runs(d: &std::path::Path, pairs: impl IntoIterator<Item = (f64, f64)>) -> PathBuf {
    let p = d.join("k.csv");
    let mut s = String::from("params,tokens,loss\n");
    for (n, t) in pairs {
        let l = ((3e12f64 / n).powf(0.09 / 0.11) + 2e13 / t).powf(0.11);
        s += &format!("{n},{t},{l}\n");
    }
    std::fs::write(&p, s).unwrap();
    p
}

#[test]
fn allocation_under_unique_tokens_with_the_released_law() {
    // Muennighoff et al.'s example: the compute of 8.67B parameters on 178B tokens, 25B unique.
    let o = isoflop(&[
        "allocate",
        "--flops",
        &format!("{}", 6.0 * 8.67e9 * 178e9),
        "--unique-tokens",
        "25e9",
        "--preset",
        "muennighoff2023",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["allocation"];
    assert!(
        (a["params"].as_f64().unwrap() / 6.8e9 - 1.0).abs() < 0.03,
        "{a}"
    );
    assert!(
        (a["tokens"].as_f64().unwrap() / 227e9 - 1.0).abs() < 0.03,
        "{a}"
    );
    assert!((a["epochs"].as_f64().unwrap() - 9.1).abs() < 0.15, "{a}");
}

#[test]
fn inference_aware_allocation_is_smaller_and_saves_flops() {
    let o = isoflop(&[
        "allocate",
        "--loss",
        "2.0",
        "--inference-tokens",
        "2e12",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = &v["allocation"];
    assert!(
        a["params_ratio"].as_f64().unwrap() < 1.0 && a["tokens_ratio"].as_f64().unwrap() > 1.0,
        "{a}"
    );
    assert!(a["flops_saved"].as_f64().unwrap() > 0.0);
    let text = stdout(&isoflop(&[
        "allocate",
        "--loss",
        "2.0",
        "--inference-tokens",
        "2e12",
    ]));
    assert!(
        text.contains("inference-aware") && text.contains("FLOPs saved"),
        "{text}"
    );
}

#[test]
fn bad_targets_and_tables_for_the_new_forms_say_why() {
    let d = tmpdir("bad");
    for (args, says) in [
        (
            vec!["allocate", "--loss", "1.5", "--inference-tokens", "1e12"],
            "irreducible",
        ),
        (
            vec!["allocate", "--loss", "2", "--inference-tokens", "-5"],
            "-5",
        ),
        (
            vec!["allocate", "--flops", "1e22", "--unique-tokens", "1e9"],
            "no data-constrained law",
        ),
        (
            vec![
                "allocate",
                "--flops",
                "1e22",
                "--unique-tokens",
                "-1",
                "--preset",
                "muennighoff2023",
            ],
            "--unique-tokens",
        ),
    ] {
        let o = isoflop(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    // U > D in a table, and U missing for the data-constrained law.
    let p = d.join("u.csv");
    std::fs::write(
        &p,
        "params,tokens,unique_tokens,loss\n1e8,1e9,1e9,3.5\n1e8,1e9,2e9,3.4\n",
    )
    .unwrap();
    let o = isoflop(&["fit", p.to_str().unwrap(), "--law", "data-constrained"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("u.csv:3") && stderr(&o).contains("unique tokens exceed"),
        "{}",
        stderr(&o)
    );
    let p = d.join("nou.csv");
    std::fs::write(&p, "params,tokens,loss\n1e8,1e9,3.5\n2e8,1e9,3.4\n").unwrap();
    let o = isoflop(&["fit", p.to_str().unwrap(), "--law", "data-constrained"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unique_tokens (U)"), "{}", stderr(&o));
    let o = isoflop(&["fit", p.to_str().unwrap(), "--law", "chinchila"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("law form 'chinchila' is unknown"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn two_forms_are_compared_and_saved_for_allocation() {
    // Runs from a Kaplan law: the Kaplan form must describe them better than Chinchilla's.
    let d = tmpdir("compare");
    let grid = (0..49).map(|k| {
        let (i, j) = (k / 7, k % 7);
        (
            1e7 * 10f64.powf(i as f64 * 0.5),
            1e8 * 10f64.powf(j as f64 * 0.5),
        )
    });
    let p = kaplan_runs(&d, grid);
    let law = d.join("law.json");
    let (p, l) = (p.to_str().unwrap(), law.to_str().unwrap());
    let o = isoflop(&[&["fit", p], &TWO_FORMS[..], &["--out", l, "--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let cmp = v["comparison"].as_array().unwrap();
    assert_eq!(cmp.len(), 2);
    assert_eq!(cmp[0]["form"], "kaplan", "{cmp:?}");
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&law).unwrap()).unwrap();
    assert!(
        (saved["kaplan"]["alpha_d"].as_f64().unwrap() - 0.11).abs() < 0.005,
        "{saved}"
    );
}

/// IsoFLOP runs drawn from a Kaplan law (no noise): 5 budgets a decade apart, 6 sizes each.
fn kaplan_isoflop_runs(d: &std::path::Path) -> PathBuf {
    kaplan_runs(
        d,
        (0..30).map(|k| {
            let c = 1e17 * 10f64.powi(k / 6);
            let n = (c / 120.0).sqrt() * 10f64.powf(-0.75 + 0.3 * (k % 6) as f64);
            (n, c / (6.0 * n))
        }),
    )
}

#[test]
fn forms_are_compared_on_runs_they_did_not_see() {
    let d = tmpdir("held-out");
    let p = kaplan_isoflop_runs(&d);
    let args = [&[p.to_str().unwrap()], &TWO_FORMS[..], &["--json"]].concat();
    let o = isoflop(&[&["fit"], &args[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let h = &v["held_out"]["fitted"];
    // The largest budget (6 runs) is held out; each form is refitted to the other 24.
    assert_eq!(h["held_runs"], 6, "{h}");
    assert_eq!(h["fitted_runs"], 24, "{h}");
    let scores = h["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 2, "{h}");
    // The runs' own form extrapolates them (no noise); Chinchilla's does not.
    assert_eq!(scores[0]["form"], "kaplan", "{h}");
    assert!(
        scores[0]["mean_abs_rel_error"].as_f64().unwrap() < 1e-3,
        "{h}"
    );
    assert!(
        scores[1]["mean_abs_rel_error"].as_f64().unwrap() > 2e-3,
        "{h}"
    );
    let text = stdout(&isoflop(&[&["fit"], &args[..args.len() - 1]].concat()));
    assert!(
        text.contains("Forms compared on runs they did not see: each refitted to 24 runs and scored on 6 held out"),
        "{text}"
    );
    // `validate` scores the forms on its own split, here the two largest budgets.
    let o = isoflop(&[&["validate"], &args[..], &["--holdout-top-budgets", "2"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let forms = v["forms"].as_array().unwrap();
    assert_eq!(forms.len(), 2, "{v}");
    assert_eq!(forms[0]["form"], "kaplan");
    assert_eq!(forms[0]["points"], 12);
}

#[test]
fn a_table_too_small_to_split_says_why_there_is_no_held_out_comparison() {
    let d = tmpdir("held-out-small");
    let grid = (0..9).map(|k| (1e7 * 10f64.powi(k / 3), 1.7e9 * 10f64.powi(k % 3)));
    let p = kaplan_runs(&d, grid);
    let o = isoflop(&[&["fit", p.to_str().unwrap()], &TWO_FORMS[..]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("No held-out comparison of forms:")
            && text.contains("8 runs fitted and 1 held out; the fit needs at least 6 and at least 2 must be held out"),
        "{text}"
    );
}
