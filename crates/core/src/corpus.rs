//! The default training corpus.

use std::path::{Path, PathBuf};

/// The default corpus: the King James Bible from Debian's `bible-kjv` package (public
/// domain), as plain text with the verse references removed, cached under `cache_dir`.
/// `None` where the package is not installed.
pub fn default_corpus(cache_dir: &Path) -> Option<PathBuf> {
    let cached = cache_dir.join("bible-kjv.txt");
    if cached.exists() {
        return Some(cached);
    }
    let out = std::process::Command::new("bible")
        .args(["-f", "gen1:1-rev22:21"])
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() || out.stdout.len() < 1_000_000 {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut clean = String::with_capacity(text.len());
    for line in text.lines() {
        // "Ge1:1 In the beginning..." -> "In the beginning..."
        let body = match line.split_once(' ') {
            Some((first, rest))
                if first.contains(':')
                    && first.chars().last().is_some_and(|c| c.is_ascii_digit()) =>
            {
                rest
            }
            _ => line,
        };
        clean.push_str(body.trim_end());
        clean.push('\n');
    }
    std::fs::create_dir_all(cache_dir).ok()?;
    crate::record::write_atomic(&cached, clean.as_bytes()).ok()?;
    Some(cached)
}
