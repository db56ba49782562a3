//! What isoflop wrote into a folder of outputs (a plot's, a study's), so that it replaces
//! only its own files: `.isoflop-written` holds each file's name and the [`fnv1a64`] of
//! the bytes written. A file of the same name that is not listed, or whose bytes changed
//! since, is the user's, and a command refuses to replace it without `--force`.
//!
//! [`fnv1a64`]: crate::record::fnv1a64

use crate::record::{fnv1a64, write_atomic};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest's file name, in the folder it describes.
pub const MANIFEST_FILE: &str = ".isoflop-written";

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Manifest {
    /// File name -> fnv1a64 of its bytes, 16 hex digits.
    files: BTreeMap<String, String>,
}

fn folder(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn read(dir: &Path) -> Manifest {
    std::fs::read(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn hash(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a64(bytes))
}

/// Writes `bytes` to `path` whole ([`write_atomic`]) and records it in its folder's
/// manifest.
///
/// # Errors
/// The I/O error, with the path.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic(path, bytes)?;
    note(path, bytes)
}

/// Records in its folder's manifest that `path`, already written (by a library that writes
/// files itself, a PNG encoder), is isoflop's.
///
/// # Errors
/// The I/O error reading it or writing the manifest.
pub fn record(path: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    note(path, &bytes)
}

fn note(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = folder(path);
    let mut m = read(dir);
    m.files.insert(name(path), hash(bytes));
    write_atomic(
        &dir.join(MANIFEST_FILE),
        &serde_json::to_vec_pretty(&m).expect("a manifest serialises"),
    )
}

/// Forgets `path` in its folder's manifest (the file was removed).
pub fn forget(path: &Path) {
    let dir = folder(path);
    let mut m = read(dir);
    if m.files.remove(&name(path)).is_some() {
        let _ = write_atomic(
            &dir.join(MANIFEST_FILE),
            &serde_json::to_vec_pretty(&m).expect("a manifest serialises"),
        );
    }
}

/// True when `path` exists and isoflop did not write it as it is now (not in its folder's
/// manifest, or its bytes changed since).
pub fn foreign(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        // A folder, or a file we cannot read: not ours to replace, if it exists.
        return path.exists();
    };
    read(folder(path)).files.get(&name(path)) != Some(&hash(&bytes))
}

/// The files among `paths` that exist and are not isoflop's ([`foreign`]).
pub fn foreign_among<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> Vec<&'a PathBuf> {
    paths.into_iter().filter(|p| foreign(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_written_through_the_manifest_and_unchanged_since_are_ours() {
        let d = std::env::temp_dir().join(format!("isoflop-manifest-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let ours = d.join("law.json");
        let theirs = d.join("runs.csv");
        assert!(!foreign(&ours), "a missing file is no one's");
        write(&ours, b"{}").unwrap();
        std::fs::write(&theirs, b"a,b\n").unwrap();
        assert!(!foreign(&ours));
        assert!(foreign(&theirs));
        // Changed by the user since: theirs now.
        std::fs::write(&ours, b"{\"mine\": 1}").unwrap();
        assert!(foreign(&ours));
        write(&ours, b"{}").unwrap();
        std::fs::write(d.join("x.png"), b"png").unwrap();
        record(&d.join("x.png")).unwrap();
        assert!(!foreign(&d.join("x.png")));
        forget(&d.join("x.png"));
        assert!(foreign(&d.join("x.png")));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
