//! Faults in a run's folder: a checkpoint whose bytes changed is never trained on (the
//! previous one is, or the run restarts), and a loss far above the run's own recent values
//! marks it diverged. A 2-layer model on a generated corpus, a few seconds each.

use isoflop_core::record::{self, CheckpointMeta, RunStatus, RunSummary};
use isoflop_core::shape::ModelShape;
use isoflop_train::data::Corpus;
use isoflop_train::trainer::{loss_jump, train, Event, Outcome, Settings, JUMP_WINDOW};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// libtorch's generator is global: two tests initialising models at once would interleave
/// their draws. The tests here hold this lock.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faults-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn corpus(dir: &Path) -> Corpus {
    let words = [
        "scaling", "laws", "predict", "the", "loss", "of", "larger", "models",
    ];
    let mut s = String::new();
    let mut k = 11usize;
    for i in 0..5000 {
        k = (k * 1103515245 + 12345) % 2147483648;
        s.push_str(words[(k >> 8) % words.len()]);
        s.push(if i % 9 == 8 { '\n' } else { ' ' });
    }
    let p = dir.join("corpus.txt");
    std::fs::write(&p, s).unwrap();
    Corpus::load(&p, None, 32).unwrap()
}

fn settings() -> Settings {
    let shape = ModelShape::new(2, 64, 2, 256, 32, false).unwrap();
    let mut s = Settings::new("t", shape, 60 * 8 * 32);
    s.train.batch = 8;
    s.train.log_every = 1;
    s.train.eval_every = 30;
    s.train.eval_batches = 2;
    s.train.checkpoint_every = 10;
    s.threads = 1;
    s
}

/// Trains into `out` and stops at `at` (the stop writes a checkpoint there; the periodic one
/// before it becomes the previous checkpoint).
fn stopped_at(c: &Corpus, out: &Path, at: u64) {
    let cfg = settings().config().unwrap();
    let flag = AtomicBool::new(false);
    let r = train(&cfg, c, out, false, &flag, &mut |e| {
        if matches!(e, Event::Progress(p) if p.step == at) {
            flag.store(true, Ordering::SeqCst)
        }
    })
    .unwrap();
    assert!(
        matches!(r, Outcome::Stopped { step } if step == at),
        "{r:?}"
    );
}

fn flip_64_bytes(p: &Path) {
    let mut b = std::fs::read(p).unwrap();
    let mid = b.len() / 2;
    for x in &mut b[mid..mid + 64] {
        *x ^= 0x5a;
    }
    std::fs::write(p, b).unwrap();
}

fn curve_losses(out: &Path) -> Vec<(u64, f64)> {
    record::read_curve(&out.join(record::CURVE_FILE))
        .unwrap()
        .into_iter()
        .map(|r| (r.step, r.loss))
        .collect()
}

fn same_curve(a: &Path, b: &Path) {
    let (ca, cb) = (curve_losses(a), curve_losses(b));
    assert_eq!(ca.len(), cb.len());
    for ((s1, l1), (s2, l2)) in ca.iter().zip(&cb) {
        assert_eq!(s1, s2);
        assert!((l1 - l2).abs() < 1e-5, "step {s1}: {l1} vs {l2}");
    }
}

#[test]
fn a_corrupt_checkpoint_is_never_trained_on() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = tmp("corrupt");
    let c = corpus(&d);
    let cfg = settings().config().unwrap();
    let reference = d.join("reference");
    train(
        &cfg,
        &c,
        &reference,
        false,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();

    // The latest checkpoint corrupted: the previous one (step 30) is used, and the run
    // ends exactly as the uninterrupted one.
    let one = d.join("one");
    stopped_at(&c, &one, 35);
    assert!(one.join(record::PREVIOUS_CHECKPOINT_FILE).exists());
    flip_64_bytes(&one.join(record::CHECKPOINT_FILE));
    let r = train(&cfg, &c, &one, true, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert!(
        matches!(r, Outcome::Ended(ref s) if s.status == RunStatus::Finished),
        "{r:?}"
    );
    same_curve(&reference, &one);

    // Both corrupted: nothing verifies, the run restarts from step 0 and still ends the same.
    let both = d.join("both");
    stopped_at(&c, &both, 35);
    flip_64_bytes(&both.join(record::CHECKPOINT_FILE));
    flip_64_bytes(&both.join(record::PREVIOUS_CHECKPOINT_FILE));
    let mut first_step = None;
    let mut notes = Vec::new();
    train(
        &cfg,
        &c,
        &both,
        true,
        &AtomicBool::new(false),
        &mut |e| match e {
            Event::Progress(p) => {
                first_step.get_or_insert(p.step);
            }
            // The library says why it restarts; the caller (the binary) prints it.
            Event::Note(line) => notes.push(line.clone()),
        },
    )
    .unwrap();
    assert_eq!(first_step, Some(1), "it did not restart from step 0");
    assert!(
        notes
            .iter()
            .filter(|n| n.contains("does not match its checksum"))
            .count()
            == 2
            && notes
                .iter()
                .any(|n| n.contains("no checkpoint verifies; the run restarts from step 0")),
        "{notes:?}"
    );
    same_curve(&reference, &both);
    let s: RunSummary = record::read_json(&both.join(record::SUMMARY_FILE)).unwrap();
    assert!(s.final_loss.unwrap() < 3.0, "{s:?}");
    // An ended run keeps no checkpoint.
    for f in [
        record::CHECKPOINT_FILE,
        record::PREVIOUS_CHECKPOINT_FILE,
        record::CHECKPOINT_META_FILE,
    ] {
        assert!(!both.join(f).exists(), "{f}");
    }
}

#[test]
fn a_loss_far_above_the_runs_recent_losses_marks_it_diverged() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The rule itself.
    let recent = vec![2.5; JUMP_WINDOW];
    assert_eq!(loss_jump(&recent, 1.6e8), Some(2.5));
    assert_eq!(loss_jump(&recent, 5.4), None); // a uniform guess over 256 bytes is 5.55
    assert_eq!(loss_jump(&recent[..5], 1e9), None); // too little history
                                                    // In a run: weights that verify (their checksum written with them) but are far off, as a
                                                    // fault in memory before the write would leave them. The first resumed step's loss jumps
                                                    // far above the curve's; the run is marked diverged at that step.
    let d = tmp("jump");
    let c = corpus(&d);
    let cfg = settings().config().unwrap();
    let out = d.join("run");
    stopped_at(&c, &out, 35);
    let ckpt = out.join(record::CHECKPOINT_FILE);
    let named = tch::Tensor::load_multi(&ckpt).unwrap();
    let scaled: Vec<(String, tch::Tensor)> = named
        .into_iter()
        .map(|(n, t)| {
            let t = if n.starts_with("param.") && n.contains("weight") {
                t * 40.0
            } else {
                t
            };
            (n, t)
        })
        .collect();
    tch::Tensor::save_multi(&scaled, &ckpt).unwrap();
    let meta = CheckpointMeta::of(&std::fs::read(&ckpt).unwrap(), 35);
    std::fs::write(
        out.join(record::CHECKPOINT_META_FILE),
        serde_json::to_vec(&meta).unwrap(),
    )
    .unwrap();
    let r = train(&cfg, &c, &out, true, &AtomicBool::new(false), &mut |_| {}).unwrap();
    let Outcome::Ended(s) = r else {
        panic!("{r:?}")
    };
    assert_eq!(s.status, RunStatus::Diverged, "{s:?}");
    assert_eq!(s.failed_at_step, Some(36));
    assert!(s.reason.as_deref().unwrap().contains("jumped"), "{s:?}");
}
