//! The default training corpus.

use crate::error::CoreError;
use std::path::{Path, PathBuf};

/// Where the default corpus's text is cached: `$XDG_CACHE_HOME/isoflop`, else
/// `~/.cache/isoflop`, else a folder under the system's temporary folder.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("isoflop")
}

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

/// The corpus a run uses: `data` if given, else the default corpus.
///
/// # Errors
/// [`CoreError::NoDefaultCorpus`] (its message says the fix) when no corpus is given and
/// `bible-kjv` is not installed.
pub fn resolve(data: Option<PathBuf>) -> Result<PathBuf, CoreError> {
    match data {
        Some(p) => Ok(p),
        None => default_corpus(&cache_dir()).ok_or(CoreError::NoDefaultCorpus),
    }
}
