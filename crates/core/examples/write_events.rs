//! Writes TensorBoard event files for `bench/import_tensorboard.sh`: FILES runs (one folder
//! each) of SCALARS scalars each, `train/loss` and `train/lr` at alternate steps' halves, as
//! a trainer logs them.
//!
//! Usage: cargo run --release -p isoflop-core --example write_events -- DIR FILES SCALARS

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (dir, files, scalars) = match args.as_slice() {
        [_, d, f, s] => (
            std::path::PathBuf::from(d),
            f.parse::<usize>().expect("FILES"),
            s.parse::<usize>().expect("SCALARS"),
        ),
        _ => {
            eprintln!("usage: write_events DIR FILES SCALARS");
            std::process::exit(2);
        }
    };
    for i in 0..files {
        let run = dir.join(format!("run{i:05}"));
        std::fs::create_dir_all(&run).expect("create the run's folder");
        let mut s: Vec<(i64, f64, &str, f32)> = Vec::with_capacity(scalars + 1);
        s.push((0, 0.0, "params", 1e6 * (1.0 + (i % 10) as f32)));
        for k in 0..scalars / 2 {
            let step = k as i64 + 1;
            let loss = 2.0 + 8.0 / (1.0 + step as f32).sqrt() + 0.01 * (i % 7) as f32;
            s.push((step, 1.7e9 + step as f64, "train/loss", loss));
            s.push((step, 1.7e9 + step as f64, "train/lr", 1e-3));
        }
        let bytes = isoflop_core::import::tensorboard::write_events(&s);
        std::fs::write(run.join("events.out.tfevents.1700000000.host.1.0"), bytes)
            .expect("write the event file");
    }
}
