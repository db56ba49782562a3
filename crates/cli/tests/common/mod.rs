//! Helpers shared by the CLI's integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh directory per test under the target dir's tmp: `{group}-{name}-{pid}`.
pub fn tmpdir(group: &str, name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{group}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The `isoflop` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_isoflop")
}

/// Runs `isoflop` with `args` and waits for it.
pub fn isoflop<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run isoflop")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A small text corpus in `dir` (about 150 kB of repetitive English-like lines).
pub fn corpus(dir: &Path) -> PathBuf {
    let text: String = (0..6000)
        .map(|i| format!("verse {} of chapter {} says {}.\n", i % 31, i % 7, i % 11))
        .collect();
    let p = dir.join("corpus.txt");
    std::fs::write(&p, text).unwrap();
    p
}

/// (step, loss) of every row of a run folder's curve.csv.
pub fn losses(run: &Path) -> Vec<(u64, f64)> {
    let text = std::fs::read_to_string(run.join("curve.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].parse().unwrap(), f[5].parse().unwrap())
        })
        .collect()
}
