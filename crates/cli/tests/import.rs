//! `isoflop import` and `isoflop count` on files with known contents: TensorBoard event
//! files written by the reader's own writer (the Python suite checks files written by
//! `torch.utils.tensorboard`, `wandb` and `transformers`), byte-level faults, hostile
//! names, all-or-nothing; the counting conventions and loss units of `isoflop fit`.

mod common;
use common::{isoflop, stderr, stdout, tmpdir};
use isoflop_core::import::tensorboard::write_events;
use std::path::{Path, PathBuf};

const LAW: (f64, f64, f64, f64, f64) = (1.69, 406.4, 410.7, 0.34, 0.28);

fn loss(n: f64, d: f64) -> f64 {
    let (e, a, b, alpha, beta) = LAW;
    e + a / n.powf(alpha) + b / d.powf(beta)
}

/// A TensorBoard run per (N, final D): `loss`, `tokens` and (once) `params` logged every
/// 50 steps of 1e6 tokens, as f32 (what TensorBoard keeps).
fn tensorboard_runs(dir: &Path, sizes: &[f64], steps: &[i64]) -> Vec<(String, Vec<(i64, f32)>)> {
    let mut out = Vec::new();
    for &n in sizes {
        for &s in steps {
            let name = format!("n{n:e}-s{s}");
            let run = dir.join(&name);
            std::fs::create_dir_all(&run).unwrap();
            let mut scalars = vec![(0, 0.0, "params", n as f32)];
            let mut logged = Vec::new();
            for k in (50..=s).step_by(50) {
                let d = k as f64 * 1e6;
                let l = loss(n, d) as f32;
                scalars.push((k, k as f64, "train/loss", l));
                scalars.push((k, k as f64, "tokens", d as f32));
                logged.push((k, l));
            }
            std::fs::write(
                run.join("events.out.tfevents.1.host"),
                write_events(&scalars),
            )
            .unwrap();
            out.push((name, logged));
        }
    }
    out
}

/// `isoflop import SOURCE --out OUT EXTRA...`.
fn import(source: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "import",
        source.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    isoflop(&args)
}

fn run_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter(|e| e.path().join("curve.csv").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn tensorboard_curves_come_back_as_logged_and_fit() {
    let dir = tmpdir("import", "tb");
    let logs = dir.join("tb");
    let logged = tensorboard_runs(&logs, &[2e7, 5e7, 1e8], &[500, 1000, 2000]);
    let out = dir.join("runs");
    let o = import(&logs, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("imported 9 runs (9 finished, 0 unfinished)"),
        "{}",
        stdout(&o)
    );
    for (name, points) in &logged {
        let text = std::fs::read_to_string(out.join(name).join("curve.csv")).unwrap();
        let rows: Vec<(i64, f32)> = text
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[1].parse().unwrap(), f[5].parse::<f64>().unwrap() as f32)
            })
            .collect();
        assert_eq!(&rows, points, "{name}");
    }
    // The imported folder fits: Approach 3 on the final points recovers the law's exponents
    // (the losses are f32, so to about 1e-3).
    let o = isoflop(&[
        "fit",
        out.to_str().unwrap(),
        "--approach",
        "3",
        "--boot",
        "0",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let law = &v["approach3"]["fitted"]["law"];
    assert!(
        (law["alpha"].as_f64().unwrap() - LAW.3).abs() < 0.02,
        "{law}"
    );
    assert_eq!(v["counted"]["params"], "params");
    assert_eq!(v["counted"]["loss_unit"], "nats per token");
}

#[test]
fn damaged_event_files_are_named_by_byte_and_nothing_is_written() {
    let dir = tmpdir("import", "faults");
    let logs = dir.join("tb");
    tensorboard_runs(&logs, &[2e7], &[500, 1000]);
    let bad = logs.join("n2e7-s1000").join("events.out.tfevents.1.host");
    let mut bytes = std::fs::read(&bad).unwrap();
    let first = 12 + bytes[0] as usize + 4;
    let second = first + 12 + bytes[first] as usize + 4;
    bytes[second + 20] ^= 0x10;
    std::fs::write(&bad, &bytes).unwrap();
    let out = dir.join("runs");
    let o = import(&logs, &out, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(&bad.display().to_string())
            && e.contains(&format!("byte {second} (record 2)"))
            && e.contains("checksum"),
        "{e}"
    );
    assert!(
        run_dirs(&out).is_empty(),
        "nothing written: {:?}",
        run_dirs(&out)
    );
    // --skip-bad names the bad source and imports the rest.
    let o = import(&logs, &out, &["--skip-bad"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("skipped") && stderr(&o).contains("byte"),
        "{}",
        stderr(&o)
    );
    assert_eq!(run_dirs(&out), vec!["n2e7-s500"]);
    // A final record cut short (a run still writing): read up to it, with a warning.
    let cut = dir.join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    let whole = std::fs::read(logs.join("n2e7-s500").join("events.out.tfevents.1.host")).unwrap();
    std::fs::write(
        cut.join("events.out.tfevents.2.host"),
        &whole[..whole.len() - 5],
    )
    .unwrap();
    let out2 = dir.join("runs2");
    let o = import(&cut, &out2, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("cut short"), "{}", stderr(&o));
    // The cut record was step 500's token count (its loss came before it): 10 rows, the
    // last one's tokens extrapolated from the steps before.
    let curve = std::fs::read_to_string(out2.join("cut").join("curve.csv")).unwrap();
    let last = curve.lines().last().unwrap().to_string();
    assert_eq!(curve.lines().count() - 1, 10, "{curve}");
    assert!(last.starts_with("cut,500,20000000,500000000,"), "{last}");
    // Run again into the same folder: refused, unless --force (an import wrote it).
    let o = import(&cut, &out2, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("already holds"), "{}", stderr(&o));
    let o = import(&cut, &out2, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn logs_with_hostile_names_bad_lines_and_unfinished_runs() {
    let dir = tmpdir("import", "logs");
    let log = dir.join("log.jsonl");
    let mut text = String::new();
    for (run, steps) in [("../../evil", 10), ("a,b\"c", 10), ("short", 4)] {
        for s in 1..=steps {
            text.push_str(&format!(
                "{{\"run\": {}, \"step\": {s}, \"loss\": {}, \"lr\": 0.001}}\n",
                serde_json::to_string(run).unwrap(),
                4.0 - 0.1 * s as f64
            ));
        }
    }
    std::fs::write(&log, &text).unwrap();
    let out = dir.join("runs");
    let base = [
        "import",
        log.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--params",
        "1e6",
    ];
    // No token count: named.
    let o = isoflop(&base);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--tokens-per-step"), "{}", stderr(&o));
    let mut args = base.to_vec();
    args.extend(["--tokens-per-step", "4096", "--total-steps", "10"]);
    let o = isoflop(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("2 finished, 1 unfinished"),
        "{}",
        stdout(&o)
    );
    assert_eq!(run_dirs(&out), vec!["_.._evil", "a_b_c", "short"]);
    assert!(!dir.join("evil").exists());
    assert!(
        !out.join("short").join("summary.json").exists(),
        "unfinished: no summary"
    );
    let curve = std::fs::read_to_string(out.join("a_b_c").join("curve.csv")).unwrap();
    assert!(
        curve
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("a_b_c,1,1000000,4096,"),
        "{curve}"
    );
    // A line that is not JSON: file and line named, nothing written.
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"step\": 1, \"loss\": 3}\n{\"step\": 2, \"loss\": \n",
    )
    .unwrap();
    let out2 = dir.join("runs2");
    let o = import(&bad, &out2, &["--params", "1e6", "--tokens-per-step", "10"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{}: line 2: not JSON", bad.display())),
        "{}",
        stderr(&o)
    );
    assert!(run_dirs(&out2).is_empty());
    // A W&B run folder whose history has a line that is not JSON.
    let wb = dir.join("wandb").join("run-20260101_000000-abc123");
    std::fs::create_dir_all(wb.join("files")).unwrap();
    std::fs::write(
        wb.join("files").join("wandb-history.jsonl"),
        "{\"_step\": 1, \"loss\": 3.0, \"tokens\": 100}\nnot json\n",
    )
    .unwrap();
    let o = import(&dir.join("wandb"), &out2, &["--params", "1e6"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("wandb-history.jsonl: line 2: not JSON"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn count_matches_published_totals() {
    let dir = tmpdir("import", "count");
    let cfg = dir.join("config.json");
    std::fs::write(
        &cfg,
        r#"{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
        "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000,
        "max_position_embeddings": 4096}"#,
    )
    .unwrap();
    let o = isoflop(&["count", "--config", cfg.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Llama-2-7B (Touvron et al. 2023): 6.74B.
    assert_eq!(v["count"]["params"]["total"], 6_738_415_616u64);
    let o = isoflop(&["count", "--config", cfg.to_str().unwrap()]);
    assert!(stdout(&o).contains("(6.74B)"), "{}", stdout(&o));
    std::fs::write(&cfg, r#"{"model_type": "t5", "d_model": 512}"#).unwrap();
    let o = isoflop(&["count", "--config", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("model_type 't5' is not one isoflop counts"),
        "{}",
        stderr(&o)
    );
}

fn synthetic_table(path: &PathBuf, scale: f64) {
    let mut t = String::from("params,tokens,loss\n");
    for n in [1e7, 2e7, 5e7, 1e8, 2e8, 5e8, 1e9] {
        for d in [1e9, 2e9, 5e9, 1e10, 2e10, 5e10] {
            t.push_str(&format!("{n},{d},{}\n", loss(n, d) * scale));
        }
    }
    std::fs::write(path, t).unwrap();
}

fn law_of(args: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let mut a = vec!["fit"];
    a.extend(args);
    a.extend(["--approach", "3", "--boot", "0", "--json"]);
    let o = isoflop(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    (
        v["approach3"]["fitted"]["law"].clone(),
        v["counted"].clone(),
    )
}

#[test]
fn loss_units_scale_e_a_b_and_keep_the_exponents() {
    let dir = tmpdir("import", "units");
    let nats = dir.join("nats.csv");
    let bits = dir.join("bits.csv");
    synthetic_table(&nats, 1.0);
    synthetic_table(&bits, 1.0 / std::f64::consts::LN_2);
    let (n, cn) = law_of(&[nats.to_str().unwrap()]);
    let (b, cb) = law_of(&[bits.to_str().unwrap(), "--loss-unit", "bits"]);
    let (bpb, cbpb) = law_of(&[nats.to_str().unwrap(), "--bytes-per-token", "4"]);
    assert_eq!(cn["loss_unit"], "nats per token");
    assert_eq!(cb["loss_unit"], "bits per token");
    assert_eq!(cbpb["loss_unit"], "bits per byte");
    let f = |v: &serde_json::Value, k: &str| v[k].as_f64().unwrap();
    // A loss in other units is the same law scaled: E, A and B scale, the exponents stay.
    for (law, scale) in [
        (&b, 1.0 / std::f64::consts::LN_2),
        (&bpb, 1.0 / std::f64::consts::LN_2 / 4.0),
    ] {
        for k in ["E", "A", "B"] {
            assert!(
                (f(law, k) / (f(&n, k) * scale) - 1.0).abs() < 1e-6,
                "{k}: {law} vs {n}"
            );
        }
        for k in ["alpha", "beta"] {
            assert!((f(law, k) - f(&n, k)).abs() < 1e-6, "{k}");
        }
    }
    // Bytes per token as a column: rows of two tokenizers on one scale.
    let mut t = String::from("params,tokens,loss,bytes_per_token\n");
    for (i, line) in std::fs::read_to_string(&nats)
        .unwrap()
        .lines()
        .skip(1)
        .enumerate()
    {
        let f: Vec<f64> = line.split(',').map(|x| x.parse().unwrap()).collect();
        let bpt = if i % 2 == 0 { 4.0 } else { 2.0 };
        // A tokenizer of 2 bytes a token has half the loss per token at the same bits per byte.
        t.push_str(&format!("{},{},{},{bpt}\n", f[0], f[1], f[2] * bpt / 4.0));
    }
    let mixed = dir.join("mixed.csv");
    std::fs::write(&mixed, t).unwrap();
    let (m, _) = law_of(&[
        mixed.to_str().unwrap(),
        "--bytes-per-token",
        "bytes_per_token",
    ]);
    for k in ["E", "alpha", "beta"] {
        assert!(
            (f(&m, k) / f(&bpb, k) - 1.0).abs() < 1e-6,
            "{k}: {m} vs {bpb}"
        );
    }
}

#[test]
fn conventions_are_chosen_reported_and_compared() {
    let dir = tmpdir("import", "conventions");
    let logs = dir.join("tb");
    // One model config for every run would give one N; give each size its own import.
    let sizes = [(256usize, 4usize), (384, 6), (512, 8)];
    let out = dir.join("runs");
    for (d, l) in sizes {
        let cfg = dir.join(format!("config-{d}.json"));
        std::fs::write(
            &cfg,
            format!(
                r#"{{"model_type": "gpt2", "n_embd": {d}, "n_layer": {l}, "n_head": 4,
            "vocab_size": 50257, "n_positions": 1024}}"#
            ),
        )
        .unwrap();
        let count: serde_json::Value = serde_json::from_slice(
            &isoflop(&["count", "--config", cfg.to_str().unwrap(), "--json"]).stdout,
        )
        .unwrap();
        let n = count["count"]["params"]["non_embedding"].as_f64().unwrap();
        let sub = logs.join(format!("d{d}"));
        for s in [200i64, 400, 800, 1600] {
            let run = sub.join(format!("d{d}-s{s}"));
            std::fs::create_dir_all(&run).unwrap();
            let scalars: Vec<(i64, f64, &str, f32)> = (50..=s)
                .step_by(50)
                .flat_map(|k| {
                    let t = k as f64 * 5e5;
                    [
                        (k, 0.0, "loss", loss(n, t) as f32),
                        (k, 0.0, "tokens", t as f32),
                    ]
                })
                .collect();
            std::fs::write(run.join("events.out.tfevents.1"), write_events(&scalars)).unwrap();
        }
        let o = isoflop(&[
            "import",
            sub.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--model-config",
            cfg.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let curve = std::fs::read_to_string(out.join("d256-s200").join("curve.csv")).unwrap();
    assert!(curve.starts_with("run,step,params,params_no_embed,tokens,flops,flops_no_embed,flops_kaplan,flops_chinchilla,flops_deepseek,loss"), "{curve}");
    let (_, counted) = law_of(&[
        out.to_str().unwrap(),
        "--params-column",
        "params_no_embed",
        "--flops-column",
        "flops_kaplan",
    ]);
    assert_eq!(counted["params"], "params_no_embed");
    assert_eq!(counted["flops"], "flops_kaplan");
    assert_eq!(counted["conventions"].as_array().unwrap().len(), 5);
    let o = isoflop(&[
        "fit",
        out.to_str().unwrap(),
        "--compare-conventions",
        "--approach",
        "3",
        "--boot",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for c in [
        "(params / flops)",
        "(params_no_embed / flops_no_embed)",
        "(params_no_embed / flops_kaplan)",
        "(params / flops_chinchilla)",
        "(params_no_embed / flops_deepseek)",
    ] {
        assert!(text.contains(c), "{c}: {text}");
    }
    // The losses were drawn from the law in non-embedding N: that convention recovers its
    // alpha, the total count does not.
    let (ne, _) = law_of(&[
        out.to_str().unwrap(),
        "--params-column",
        "params_no_embed",
        "--flops-column",
        "flops_kaplan",
    ]);
    let (tot, _) = law_of(&[out.to_str().unwrap()]);
    let alpha = |v: &serde_json::Value| v["alpha"].as_f64().unwrap();
    assert!(
        (alpha(&ne) - LAW.3).abs() < (alpha(&tot) - LAW.3).abs(),
        "{ne} vs {tot}"
    );
}

#[test]
fn count_of_isoflop_shapes_is_the_trainers() {
    // The benchmark model's hand count (crates/core/src/shape.rs): 875,264 parameters.
    let o = isoflop(&[
        "count",
        "--layers",
        "4",
        "--d-model",
        "128",
        "--heads",
        "4",
        "--context",
        "128",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["count"]["params"]["total"], 875_264);
    let f = &v["count"]["flops_per_token"];
    assert_eq!(f["six_n"].as_f64().unwrap(), 6.0 * 875_264.0);
    let ne = v["count"]["params"]["non_embedding"].as_f64().unwrap();
    assert_eq!(f["six_n_no_embed"].as_f64().unwrap(), 6.0 * ne);
    // Kaplan et al. 2020, Table 1: 6 N_non-embedding + 6 L T d.
    assert_eq!(
        f["kaplan"].as_f64().unwrap(),
        6.0 * ne + 6.0 * 4.0 * 128.0 * 128.0
    );
}

#[test]
fn a_table_instead_of_run_folders_fits_as_the_folders_do() {
    let dir = tmpdir("import", "table");
    let logs = dir.join("tb");
    tensorboard_runs(&logs, &[2e7, 5e7, 1e8], &[500, 1000, 2000]);
    let table = dir.join("runs.csv");
    let o = isoflop(&[
        "import",
        logs.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&table).unwrap();
    assert!(
        text.starts_with("run,step,params,tokens,flops,loss,lr,secs,final_loss\n"),
        "{text}"
    );
    // 9 runs of 10, 20 and 40 rows.
    assert_eq!(text.lines().count() - 1, 3 * (10 + 20 + 40));
    // Refused the second time (the file exists), not overwritten.
    let o = isoflop(&[
        "import",
        logs.to_str().unwrap(),
        "--table",
        table.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let out = dir.join("runs");
    assert!(import(&logs, &out, &[]).status.success());
    let (from_table, _) = law_of(&[table.to_str().unwrap()]);
    let (from_folders, _) = law_of(&[out.to_str().unwrap()]);
    assert_eq!(from_table, from_folders);
}

#[test]
fn the_report_names_the_loss_unit() {
    let dir = tmpdir("import", "report");
    let nats = dir.join("nats.csv");
    synthetic_table(&nats, 1.0);
    let figs = dir.join("figs");
    let o = isoflop(&[
        "plot",
        nats.to_str().unwrap(),
        "--approach",
        "3",
        "--boot",
        "0",
        "--bytes-per-token",
        "4",
        "--out",
        figs.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(figs.join("report.html")).unwrap();
    assert!(
        html.contains("losses in bits per byte"),
        "report.html names no unit"
    );
    let svg = std::fs::read_to_string(figs.join("fig3_isoloss.svg")).unwrap();
    assert!(svg.contains("Loss (bits per byte)"));
}
