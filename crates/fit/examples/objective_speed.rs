//! Times one Approach 3 objective evaluation on the embedded data (a profiling aid).
//! `ISOFLOP_KERNEL=avx2` (or `avx512`, `portable`) picks the inner loop.
use isoflop_core::RunTable;
use isoflop_fit::parametric::{Kernel, Objective, HUBER_DELTA};
fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/chinchilla_points_kyo_takano.csv");
    let t = RunTable::read(&path).unwrap();
    let obj = Objective::new(&t.rows, HUBER_DELTA);
    let mut g = [0.0; 5];
    let x = [6.0, 7.0, 0.6, 0.35, 0.37];
    let n = 200_000;
    let t0 = std::time::Instant::now();
    let mut s = 0.0;
    for i in 0..n {
        let mut xi = x;
        xi[0] += i as f64 * 1e-9;
        s += obj.value_grad(&xi, &mut g);
    }
    let dt = t0.elapsed().as_secs_f64();
    println!(
        "{:?} kernel, {} points: {:.3} us per evaluation, {:.2} ns per point (checksum {s:.3})",
        Kernel::active(),
        obj.len(),
        dt / n as f64 * 1e6,
        dt / n as f64 / obj.len() as f64 * 1e9
    );
}
