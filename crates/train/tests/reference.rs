//! The first 10 losses of a seeded run equal PyTorch's (torch.optim.AdamW, clip_grad_norm_)
//! on the same model, fed our initial weights and our batches, within 1e-3.
//! Needs a Python with torch: $ISOFLOP_PYTHON, else the project's .venv (scripts/setup.sh);
//! skips, saying so, without one.

use isoflop_core::record;
use isoflop_core::shape::ModelShape;
use isoflop_train::data::Corpus;
use isoflop_train::model::decays;
use isoflop_train::trainer::{init_model, train, Settings, ADAM_BETAS, ADAM_EPS};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use tch::Device;

fn python() -> Option<PathBuf> {
    let p = std::env::var_os("ISOFLOP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
        });
    let ok = std::process::Command::new(&p)
        .args(["-c", "import torch"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(p)
    } else {
        eprintln!(
            "skipped: no Python with torch at {} (run scripts/setup.sh)",
            p.display()
        );
        None
    }
}

#[test]
fn first_ten_losses_match_pytorch() {
    let Some(py) = python() else { return };
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("reference-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let text: String = (0..3000)
        .map(|i| format!("sample {} of text, number {}. ", i % 17, i * 7 % 101))
        .collect();
    std::fs::write(d.join("c.txt"), text).unwrap();
    let corpus = Corpus::load(&d.join("c.txt"), None, 32).unwrap();
    let shape = ModelShape::new(2, 64, 2, 256, 32, false).unwrap();
    let mut s = Settings::new("ref", shape, 10 * 8 * 32);
    s.train.batch = 8;
    s.train.log_every = 1;
    s.train.eval_every = 0;
    s.threads = 1;
    s.train.seed = 3;
    s.train.lr = 3e-3;
    s.train.warmup = Some(3);
    let cfg = s.config().unwrap();
    assert_eq!(cfg.steps, 10);
    train(
        &cfg,
        &corpus,
        &d.join("run"),
        false,
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .unwrap();
    let ours: Vec<f64> = record::read_curve(&d.join("run").join(record::CURVE_FILE))
        .unwrap()
        .iter()
        .map(|r| r.loss)
        .collect();
    let lrs: Vec<f64> = record::read_curve(&d.join("run").join(record::CURVE_FILE))
        .unwrap()
        .iter()
        .map(|r| r.lr)
        .collect();

    // Export the same initial weights and batches for the reference.
    let (vs, _m) = init_model(&cfg, Device::Cpu);
    let mut vars: Vec<(String, tch::Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut bin = std::fs::File::create(d.join("weights.bin")).unwrap();
    let mut tensors = Vec::new();
    for (name, t) in &vars {
        let v: Vec<f32> = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
        for x in &v {
            bin.write_all(&x.to_le_bytes()).unwrap();
        }
        tensors.push(serde_json::json!({ "name": name, "shape": t.size() }));
    }
    let decay: Vec<&String> = vars.iter().map(|(n, _)| n).filter(|n| decays(n)).collect();
    let manifest = serde_json::json!({
        "config": { "layers": 2, "d_model": 64, "heads": 2, "context": 32, "vocab": 256, "weight_decay": cfg.weight_decay, "grad_clip": cfg.grad_clip, "betas": [ADAM_BETAS.0, ADAM_BETAS.1], "eps": ADAM_EPS },
        "tensors": tensors,
        "decay": decay,
    });
    std::fs::write(d.join("manifest.json"), manifest.to_string()).unwrap();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for step in 0..10 {
        let (x, y) = corpus.train_batch(cfg.seed, step, 8, 32);
        xs.push(x);
        ys.push(y);
    }
    std::fs::write(
        d.join("batches.json"),
        serde_json::json!({ "x": xs, "y": ys, "lr": lrs }).to_string(),
    )
    .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/torch_reference.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(&d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<f64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), 10);
    for (k, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert!(
            (a - b).abs() < 1e-3,
            "step {}: isoflop {a} vs PyTorch {b}\nours {ours:?}\ntheirs {theirs:?}",
            k + 1
        );
    }
    // The run actually learned over the ten steps (the comparison is not of a flat line).
    assert!(ours[9] < ours[0] - 0.3, "{ours:?}");
    eprintln!("isoflop {ours:?}\nPyTorch {theirs:?}");
}
