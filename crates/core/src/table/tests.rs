//! Tests of the run-table reader and writer.

use super::*;

fn csv(text: &str) -> Result<RunTable> {
    RunTable::from_csv(Path::new("t.csv"), text)
}

#[test]
fn aliases_and_derived_tokens() {
    let t = csv("Model Size,Training FLOP,loss\n1e6,6e12,3.0\n2e6,6e12,2.9\n").unwrap();
    assert_eq!(t.rows.len(), 2);
    // D = C / (6N)
    assert!((t.rows[0].tokens - 1e6).abs() < 1e-6);
    assert!((t.rows[1].tokens - 5e5).abs() < 1e-6);
    assert!(t.notes[0].contains("C/(6N)"), "{:?}", t.notes);
}

#[test]
fn derived_flops() {
    let t = csv("N,D,val_loss\n1e6,2e7,3.0\n").unwrap();
    assert_eq!(t.rows[0].flops, 6.0 * 1e6 * 2e7);
    assert!(t.notes[0].contains("6ND"));
}

#[test]
fn bad_cells_name_line_and_column() {
    let e = csv("params,tokens,loss\n1e6,2e7,3\n1e6,abc,3\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t.csv:3") && e.contains("'tokens'") && e.contains("not a number"),
        "{e}"
    );
    for (cell, why) in [
        ("NaN", "NaN"),
        ("inf", "finite"),
        ("0", "positive"),
        ("-2", "positive"),
    ] {
        let e = csv(&format!("params,tokens,loss\n1e6,2e7,{cell}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t.csv:2") && e.contains("'loss'") && e.contains(why),
            "{e}"
        );
    }
}

#[test]
fn missing_column_and_empty_file() {
    let e = csv("params,loss\n1,2\n").unwrap_err().to_string();
    assert!(e.contains("tokens (D) or flops (C)"), "{e}");
    let e = csv("tokens,flops\n1,6\n").unwrap_err().to_string();
    assert!(e.contains("no column for params"), "{e}");
    let e = csv("params,tokens,loss\n").unwrap_err().to_string();
    assert!(e.contains("no data rows"), "{e}");
    let e = csv("").unwrap_err().to_string();
    assert!(e.contains("no data rows"), "{e}");
}

#[test]
fn ragged_row_is_named() {
    let e = csv("params,tokens,loss\n1,2,3\n1,2\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.csv:3") && e.contains("2 fields"), "{e}");
}

#[test]
fn wrong_units_are_caught() {
    // params given in millions: 6ND is a million times smaller than the FLOPs.
    let e = csv("params,tokens,flops,loss\n2,4e7,4.8e14,3\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("t.csv:2") && e.contains("units"), "{e}");
}

#[test]
fn jsonl_rows_and_errors() {
    let p = Path::new("r.jsonl");
    let t = RunTable::from_jsonl(p, "{\"run\":\"a\",\"params\":1e6,\"tokens\":1e7,\"loss\":3.1}\n\n{\"run\":\"a\",\"params\":1e6,\"tokens\":2e7,\"loss\":\"2.9\"}\n").unwrap();
    assert_eq!(t.rows.len(), 2);
    assert_eq!(t.rows[1].line, 3);
    assert!(t.has_curves());
    assert_eq!(t.final_rows().len(), 1);
    assert_eq!(t.final_rows()[0].loss, 2.9);
    let e = RunTable::from_jsonl(p, "{\"params\":1,\"tokens\":1,\"loss\":1}\n{oops\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("r.jsonl:2") && e.contains("invalid JSON"), "{e}");
}

#[test]
fn final_loss_column_gives_the_final_points_loss() {
    let t = csv("run,step,params,tokens,loss,final_loss\na,1,1e6,1e7,4.0,2.5\na,2,1e6,2e7,3.0,2.5\nb,1,2e6,1e7,3.5,\nb,2,2e6,2e7,2.9,\n").unwrap();
    let f = t.final_rows();
    assert_eq!((f[0].loss, f[1].loss), (2.5, 2.9));
    // The curve keeps its own losses.
    assert_eq!(t.rows[1].loss, 3.0);
    assert!(
        t.notes.iter().any(|n| n.contains("final_loss")),
        "{:?}",
        t.notes
    );
}

#[test]
fn drop_highest_loss_follows_epoch_rule() {
    let rows: Vec<Observation> = [3.0, 5.0, 4.0, 2.0]
        .iter()
        .enumerate()
        .map(|(i, &l)| Observation {
            line: i + 2,
            run: None,
            step: None,
            params: 1.0,
            tokens: 1.0,
            flops: 6.0,
            loss: l,
            budget: None,
            unique_tokens: None,
        })
        .collect();
    let (kept, n) = drop_highest_loss(&rows, 2);
    assert_eq!(n, 2);
    assert_eq!(
        kept.iter().map(|r| r.loss).collect::<Vec<_>>(),
        vec![3.0, 2.0]
    );
}

#[test]
fn ambiguous_columns_are_refused_with_both_names_and_the_option() {
    for (header, a, b, opt) in [
        (
            "params,tokens,loss,val_loss",
            "'loss'",
            "'val_loss'",
            "--loss-column",
        ),
        ("params,N,tokens,loss", "'params'", "'N'", "--params-column"),
        ("params,tokens,D,loss", "'tokens'", "'D'", "--tokens-column"),
    ] {
        let row = vec!["1e6"; header.split(',').count()].join(",");
        let e = csv(&format!("{header}\n{row}\n")).unwrap_err().to_string();
        assert!(e.contains(a) && e.contains(b) && e.contains(opt), "{e}");
    }
    let e = csv("params,tokens,loss,Loss\n1,2,3,4\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("twice") && e.contains("'loss' and 'Loss'"),
        "{e}"
    );
    let e = csv("params,tokens,loss,loss\n1,2,3,4\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("twice"), "{e}");
}

#[test]
fn a_chosen_column_resolves_the_ambiguity() {
    let choice = ColumnChoice {
        loss: Some("val_loss".into()),
        ..ColumnChoice::default()
    };
    let t = RunTable::from_csv_with(
        Path::new("t.csv"),
        "params,tokens,loss,val_loss\n1e6,2e7,3.5,3.0\n",
        &choice,
    )
    .unwrap();
    assert_eq!(t.rows[0].loss, 3.0);
    let choice = ColumnChoice {
        loss: Some("nope".into()),
        ..ColumnChoice::default()
    };
    let e = RunTable::from_csv_with(Path::new("t.csv"), "params,tokens,loss\n1,2,3\n", &choice)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--loss-column nope") && e.contains("params, tokens, loss"),
        "{e}"
    );
}

#[test]
fn a_missing_loss_lists_the_files_loss_like_columns_as_typed() {
    let e = csv("params,tokens,loss_c4_val,ppl_wiki\n1,2,3,4\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("'loss_c4_val', 'ppl_wiki'") && e.contains("val_loss") && !e.contains("valloss"),
        "{e}"
    );
}

#[test]
fn jsonl_with_a_byte_order_mark_reads_like_csv_with_one() {
    let j = RunTable::from_jsonl(
        Path::new("r.jsonl"),
        "\u{feff}{\"params\":1e6,\"tokens\":2e7,\"loss\":3.0}\n",
    )
    .unwrap();
    let c = csv("\u{feff}params,tokens,loss\n1e6,2e7,3.0\n").unwrap();
    assert_eq!(j.rows[0].loss, c.rows[0].loss);
    assert_eq!(j.rows[0].params, 1e6);
}

#[test]
fn to_csv_reads_back_to_the_same_rows_finals_and_budgets() {
    let t = csv("run,step,params,tokens,loss,budget,final_loss\n\"a,\"\"x\"\"\",1,1e6,1e7,4.0,6e13,2.5\n\"a,\"\"x\"\"\",2,1e6,2e7,3.1234567890123,6e13,2.5\nb,1,2e6,1e7,3.5,,\nb,2,2e6,2e7,2.9,,\n").unwrap();
    let back = csv(&t.to_csv()).unwrap();
    let strip = |rows: &[Observation]| {
        rows.iter()
            .map(|r| {
                (
                    r.run.clone(),
                    r.step,
                    r.params,
                    r.tokens,
                    r.flops,
                    r.loss,
                    r.budget,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&t.rows), strip(&back.rows));
    assert_eq!(t.finals, back.finals);
    assert_eq!(back.rows[0].run.as_deref(), Some("a,\"x\""));
    assert_eq!(strip(&t.final_rows()), strip(&back.final_rows()));
}

#[test]
fn final_rows_come_in_run_name_order_whatever_the_line_order() {
    let t = csv("run,step,params,tokens,loss\nb,1,2e6,1e7,3.5\na,1,1e6,1e7,4.0\nb,2,2e6,2e7,2.9\na,2,1e6,2e7,3.0\n").unwrap();
    let names: Vec<_> = t.final_rows().into_iter().filter_map(|r| r.run).collect();
    assert_eq!(names, ["a", "b"]);
}

#[test]
fn only_text_columns_shared_by_runs_of_different_losses_are_labels_of_experiments() {
    let names = |t: &RunTable| -> Vec<String> {
        t.varying_text.iter().map(|(c, _, _)| c.clone()).collect()
    };
    // `lab` groups runs of different losses: a label. `color` is a colour of the loss (one
    // loss per value, as in Epoch's digitised file) and `name` one value per run: neither.
    let t = csv("params,tokens,loss,lab,color,name\n\
                 1e6,1e8,3.0,a,#f00,r1\n\
                 2e6,1e8,2.9,a,#0f0,r2\n\
                 1e6,2e8,2.9,b,#0f0,r3\n\
                 2e6,2e8,2.8,b,#00f,r4\n")
    .unwrap();
    assert_eq!(names(&t), ["lab"]);
    assert_eq!(t.varying_text[0].1, 2);
    // In a table of curves, a value on the rows of one run only names that run.
    let t = csv("run,step,params,tokens,loss,source\n\
                 r1,1,1e6,1e8,3.0,x\n\
                 r1,2,1e6,2e8,2.9,x\n\
                 r2,1,2e6,1e8,2.9,y\n\
                 r2,2,2e6,2e8,2.8,y\n")
    .unwrap();
    assert!(names(&t).is_empty(), "{:?}", t.varying_text);
    // The same source over both runs' rows, beside another: a label.
    let t = csv("run,step,params,tokens,loss,source\n\
                 r1,1,1e6,1e8,3.0,x\n\
                 r2,1,2e6,1e8,2.9,x\n\
                 r3,1,2e6,2e8,2.8,y\n")
    .unwrap();
    assert_eq!(names(&t), ["source"]);
}
