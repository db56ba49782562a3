//! Training on CPU with a 2-layer model and a generated corpus: loss falls, resume equals an
//! uninterrupted run, divergence is caught, folders are protected.

use isoflop_core::record::{self, RunStatus, RunSummary};
use isoflop_core::shape::ModelShape;
use isoflop_train::data::Corpus;
use isoflop_train::trainer::{train, Event, Outcome, Settings};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small English-like corpus with structure a model can learn.
fn corpus(dir: &Path) -> Corpus {
    let words = [
        "the", "model", "learns", "to", "predict", "next", "byte", "of", "text", "and", "loss",
        "falls", "with", "more", "compute",
    ];
    let mut s = String::new();
    let mut k = 7usize;
    for i in 0..6000 {
        k = (k * 1103515245 + 12345) % 2147483648;
        s.push_str(words[(k >> 8) % words.len()]);
        s.push(if i % 11 == 10 { '\n' } else { ' ' });
    }
    let p = dir.join("corpus.txt");
    std::fs::write(&p, s).unwrap();
    Corpus::load(&p, None, 32).unwrap()
}

fn settings(tokens: u64) -> Settings {
    let shape = ModelShape::new(2, 64, 2, 256, 32, false).unwrap();
    let mut s = Settings::new("t", shape, tokens);
    s.train.batch = 8;
    s.train.log_every = 1;
    s.train.eval_every = 20;
    s.train.eval_batches = 2;
    s.train.checkpoint_every = 10;
    s.threads = 1;
    s
}

fn summary(out: &Path) -> RunSummary {
    record::read_json(&out.join(record::SUMMARY_FILE)).unwrap()
}

#[test]
fn loss_falls_on_a_corpus() {
    let d = tmp("falls");
    let c = corpus(&d);
    let cfg = settings(150 * 8 * 32).config().unwrap();
    let out = d.join("run");
    let r = train(&cfg, &c, &out, false, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert!(matches!(r, Outcome::Ended(ref s) if s.status == RunStatus::Finished));
    let rows = record::read_curve(&out.join(record::CURVE_FILE)).unwrap();
    assert_eq!(rows.len(), 150);
    let first = rows[0].loss;
    let s = summary(&out);
    // At initialisation the loss is about ln 256 = 5.55; this corpus has about 15 words.
    assert!(first > 5.0, "{first}");
    assert!(
        s.final_loss.unwrap() < first - 2.5,
        "{first} -> {:?}",
        s.final_loss
    );
    assert!(s.final_eval_loss.unwrap() < first - 2.5);
    // FLOPs are 6N per token, as the config says.
    let last = rows.last().unwrap();
    assert_eq!(
        last.flops,
        6.0 * cfg.params.total as f64 * last.tokens as f64
    );
    assert!(!out.join("checkpoint.ot").exists());
    // The run's thread count reached libtorch (every test here trains at 1 thread).
    assert_eq!(tch::get_num_threads(), 1);
}

#[test]
fn resume_after_a_stop_at_a_random_step_gives_the_same_curve() {
    let d = tmp("resume");
    let c = corpus(&d);
    let cfg = settings(60 * 8 * 32).config().unwrap();
    let a = d.join("a");
    train(&cfg, &c, &a, false, &AtomicBool::new(false), &mut |_| {}).unwrap();
    // Stop at a step drawn from the clock, then resume.
    let stop_at = 5
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            % 50);
    let b = d.join("b");
    let flag = AtomicBool::new(false);
    let r = train(&cfg, &c, &b, false, &flag, &mut |e| {
        if matches!(e, Event::Progress(p) if p.step == stop_at) {
            flag.store(true, std::sync::atomic::Ordering::SeqCst)
        }
    })
    .unwrap();
    assert!(
        matches!(r, Outcome::Stopped { step } if step == stop_at),
        "{r:?}"
    );
    assert!(!b.join(record::SUMMARY_FILE).exists());
    // Without --resume the unfinished run is protected.
    let e = train(&cfg, &c, &b, false, &AtomicBool::new(false), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("--resume"), "{e}");
    train(&cfg, &c, &b, true, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let (ra, rb) = (
        record::read_curve(&a.join(record::CURVE_FILE)).unwrap(),
        record::read_curve(&b.join(record::CURVE_FILE)).unwrap(),
    );
    assert_eq!(ra.len(), rb.len());
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!((x.step, x.tokens), (y.step, y.tokens));
        assert!(
            (x.loss - y.loss).abs() < 1e-5,
            "step {}: {} vs {} (stopped at {stop_at})",
            x.step,
            x.loss,
            y.loss
        );
    }
    assert!(
        (summary(&a).final_eval_loss.unwrap() - summary(&b).final_eval_loss.unwrap()).abs() < 1e-5
    );
}

#[test]
fn a_diverging_run_is_marked_with_its_step() {
    let d = tmp("diverge");
    let c = corpus(&d);
    let mut s = settings(100 * 8 * 32);
    s.train.lr = 1e4;
    s.train.grad_clip = 0.0;
    s.train.warmup = Some(1);
    let cfg = s.config().unwrap();
    let out = d.join("run");
    let r = train(&cfg, &c, &out, false, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let Outcome::Ended(sum) = r else {
        panic!("{r:?}")
    };
    assert_eq!(sum.status, RunStatus::Diverged);
    let at = sum.failed_at_step.unwrap();
    assert!(
        sum.reason.as_ref().unwrap().contains(&format!("step {at}")),
        "{:?}",
        sum.reason
    );
    assert_eq!(summary(&out).status, RunStatus::Diverged);
}

#[test]
fn a_folder_holding_another_run_is_refused_and_kept() {
    let d = tmp("folder");
    let c = corpus(&d);
    let cfg = settings(10 * 8 * 32).config().unwrap();
    let out = d.join("run");
    train(&cfg, &c, &out, false, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let before = std::fs::read(out.join(record::CURVE_FILE)).unwrap();
    let mut other = settings(20 * 8 * 32);
    other.train.lr = 1e-3;
    let e = train(
        &other.config().unwrap(),
        &c,
        &out,
        false,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("different run") && e.contains("lr") && e.contains("tokens"),
        "{e}"
    );
    let e = train(&cfg, &c, &out, false, &AtomicBool::new(false), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("already ended"), "{e}");
    assert_eq!(std::fs::read(out.join(record::CURVE_FILE)).unwrap(), before);
    let junk = d.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "mine").unwrap();
    let e = train(&cfg, &c, &junk, false, &AtomicBool::new(false), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("not empty"), "{e}");
    assert_eq!(
        std::fs::read_to_string(junk.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn loss_falls_on_the_default_real_corpus() {
    // The King James Bible from Debian's bible-kjv (scripts/setup.sh installs it).
    let d = tmp("kjv");
    let Some(path) = isoflop_train::data::default_corpus(&d) else {
        eprintln!("skipped: Debian's bible-kjv is not installed (scripts/setup.sh installs it)");
        return;
    };
    let c = Corpus::load(&path, None, 32).unwrap();
    assert!(c.train.len() > 3_000_000, "{}", c.description);
    let mut s = settings(200 * 8 * 32);
    s.shape = ModelShape::new(2, 64, 2, 256, 32, true).unwrap(); // rotary positions
    let cfg = s.config().unwrap();
    let out = d.join("run");
    train(&cfg, &c, &out, false, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let rows = record::read_curve(&out.join(record::CURVE_FILE)).unwrap();
    let s = summary(&out);
    // Bytes of English start near ln 256 = 5.55 and fall below 3 nats within 200 steps.
    assert!(
        rows[0].loss > 5.0 && s.final_eval_loss.unwrap() < 3.0,
        "{} -> {:?}",
        rows[0].loss,
        s.final_eval_loss
    );
}

#[test]
fn a_leased_run_is_not_trained_twice() {
    let d = tmp("lease");
    let c = corpus(&d);
    let cfg = settings(10 * 8 * 32).config().unwrap();
    let out = d.join("run");
    std::fs::create_dir_all(&out).unwrap();
    // Another live process (here: this one) holds the run.
    let lease = isoflop_core::lease::Lease::acquire(&out).unwrap();
    let e = train(&cfg, &c, &out, true, &AtomicBool::new(false), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("is being trained by process"), "{e}");
    assert!(!out.join(record::CONFIG_FILE).exists());
    drop(lease);
    train(&cfg, &c, &out, true, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert!(out.join(record::SUMMARY_FILE).exists() && !out.join(".lease").exists());
}
