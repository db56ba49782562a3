use super::*;

#[test]
fn atomic_write_replaces_whole_and_leaves_no_temporary() {
    let d = std::env::temp_dir().join(format!("isoflop-atomic-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join("x.json");
    write_atomic(&p, b"one").unwrap();
    write_atomic(&p, b"two").unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn curve_round_trips_and_reads_as_a_run_table() {
    let rows: Vec<CurveRow> = (1..=3)
        .map(|s| CurveRow {
            run: "r1".into(),
            step: s,
            params: 1000,
            tokens: 512 * s,
            flops: 6.0 * 1000.0 * 512.0 * s as f64,
            loss: 5.0 - s as f64 * 0.1,
            lr: 1e-3,
            secs: s as f64,
            eval_loss: (s == 3).then_some(4.5),
        })
        .collect();
    let text = curve_csv(&rows);
    let d = std::env::temp_dir().join(format!("isoflop-curve-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(CURVE_FILE);
    std::fs::write(&p, &text).unwrap();
    let back = read_curve(&p).unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back[2].eval_loss, Some(4.5));
    assert_eq!(back[1].tokens, 1024);
    let t = crate::RunTable::from_csv_with(&p, &text, &crate::ColumnChoice::curve()).unwrap();
    assert!(t.has_curves());
    assert_eq!(t.final_rows()[0].loss, 4.7);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn final_loss_is_the_loss_at_the_end_not_the_mean_of_the_tail() {
    // A curve with a known end: L(t) = 2 + 3 exp(-t / 2e5), logged every 1e4 tokens to
    // 1e6 (L(1e6) = 2.0202). The old rule (mean of the last 10 rows) gave the loss
    // halfway through its window.
    let law = |t: f64| 2.0 + 3.0 * (-t / 2e5).exp();
    let rows: Vec<(f64, f64)> = (1..=100)
        .map(|k| (k as f64 * 1e4, law(k as f64 * 1e4)))
        .collect();
    let end = law(1e6);
    let got = final_loss(&rows).unwrap();
    assert!((got - end).abs() < 2e-3, "{got} vs {end}");
    let mean10 = rows[90..].iter().map(|r| r.1).sum::<f64>() / 10.0;
    assert!(
        (mean10 - end) > 2.0 * (got - end).abs(),
        "{mean10} {got} {end}"
    );
    // Zero-mean noise on a straight end averages out, and the line stays unbiased:
    let noisy: Vec<(f64, f64)> = (1..=100)
        .map(|k| {
            (
                k as f64,
                3.0 - 0.001 * k as f64 + if k % 2 == 0 { 0.05 } else { -0.05 },
            )
        })
        .collect();
    assert!((final_loss(&noisy).unwrap() - 2.9).abs() < 0.02);
    // A short curve: at least the last 3 rows; one row: itself; non-finite rows left out.
    assert_eq!(final_loss(&[(1.0, 4.0)]), Some(4.0));
    assert_eq!(final_loss(&[(1.0, 4.0), (2.0, f64::NAN)]), Some(4.0));
    assert_eq!(final_loss(&[]), None);
    let three = final_loss(&[(1.0, 5.0), (2.0, 4.0), (3.0, 3.0)]).unwrap();
    assert!((three - 3.0).abs() < 1e-12);
}

#[test]
fn a_run_name_with_a_comma_or_a_quote_keeps_curve_csv_parseable() {
    let rows = vec![CurveRow {
        run: "a,b \"c\"".into(),
        step: 1,
        params: 10,
        tokens: 20,
        flops: 1200.0,
        loss: 3.0,
        lr: 1e-3,
        secs: 0.5,
        eval_loss: None,
    }];
    let text = curve_csv(&rows);
    let d = std::env::temp_dir().join(format!("isoflop-quote-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let p = d.join(CURVE_FILE);
    std::fs::write(&p, &text).unwrap();
    assert_eq!(read_curve(&p).unwrap(), rows);
    let t = crate::RunTable::from_csv_with(&p, &text, &crate::ColumnChoice::curve()).unwrap();
    assert_eq!(t.rows[0].run.as_deref(), Some("a,b \"c\""));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_checkpoint_verifies_only_with_its_own_bytes() {
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let m = CheckpointMeta::of(&bytes, 40);
    assert!(m.verifies(&bytes));
    let mut flipped = bytes.clone();
    for b in flipped.iter_mut().skip(5000).take(64) {
        *b ^= 0xff;
    }
    assert!(!m.verifies(&flipped));
    assert!(!m.verifies(&bytes[..9999]));
    // FNV-1a 64 of "a" (the published test vector).
    assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
}

#[test]
fn one_line_keeps_the_first_line_of_a_libtorch_error() {
    let msg = "\nInternal torch error: PytorchStreamReader failed reading zip archive\nException raised from valid at ../caffe2/serialize/inline_container.cc:236\nframe #0: c10::Error::Error(...) + 0x9d";
    assert_eq!(
        one_line(msg),
        "Internal torch error: PytorchStreamReader failed reading zip archive"
    );
    assert!(one_line(&"x".repeat(1000)).len() < 410);
}
