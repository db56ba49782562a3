//! Per-run leases: a file that says which process is training a run, so that two sweeps
//! started on the same folder by mistake (or a sweep and an orphaned trainer) never train
//! the same run at once.
//!
//! The lease is `.lease` in the run's folder, created with `O_EXCL`, holding
//! `host pid`. It is released (deleted) when the holder drops it. A lease is stale, and may
//! be taken over, when its holder is a process on this host that no longer exists, or when
//! the file has not been refreshed for [`STALE_AFTER`] (a holder on a node that died).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The lease file's name.
pub const LEASE_FILE: &str = ".lease";
/// A lease not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(15 * 60);

/// Who holds a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
}

/// A held lease; released on drop.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
}

/// This machine's host name.
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// True when process `pid` exists on this host and is not a zombie (a killed trainer whose
/// parent died can linger as a zombie where nothing reaps orphans; it holds nothing).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|c| c != 'Z' && c != 'X'),
        Err(_) => false,
    }
}

/// The current holder of the lease on `dir`, if the lease exists and is not stale.
pub fn holder(dir: &Path) -> Option<Holder> {
    let path = dir.join(LEASE_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    let mut it = text.split_whitespace();
    let h = Holder {
        host: it.next()?.to_string(),
        pid: it.next()?.parse().ok()?,
    };
    let age = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let stale = (h.host == host() && !alive(h.pid)) || age > STALE_AFTER;
    (!stale).then_some(h)
}

/// Why a lease could not be taken.
#[derive(Debug)]
pub enum LeaseError {
    /// A live process holds it.
    Held(Holder),
    /// The lease file could not be written (a read-only or full folder).
    Io(std::io::Error),
}

impl Lease {
    /// Takes the lease on `dir` (which must exist), taking over a stale one.
    ///
    /// # Errors
    /// [`LeaseError::Held`] when a live process holds it; [`LeaseError::Io`] when the lease
    /// file cannot be written.
    pub fn acquire(dir: &Path) -> Result<Lease, LeaseError> {
        let path = dir.join(LEASE_FILE);
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    if let Err(e) = writeln!(f, "{} {}", host(), std::process::id()) {
                        let _ = std::fs::remove_file(&path);
                        return Err(LeaseError::Io(e));
                    }
                    return Ok(Lease { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if let Some(h) = holder(dir) {
                        return Err(LeaseError::Held(h));
                    }
                    // Stale: remove and try again (another taker may win the race).
                    let _ = std::fs::remove_file(&path);
                }
                Err(e) => return Err(LeaseError::Io(e)),
            }
        }
        match holder(dir) {
            Some(h) => Err(LeaseError::Held(h)),
            None => Err(LeaseError::Io(std::io::Error::other(
                "the lease kept being taken by others",
            ))),
        }
    }

    /// Marks the lease as alive (updates its modification time).
    pub fn refresh(&self) {
        if let Ok(f) = std::fs::OpenOptions::new().append(true).open(&self.path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_stale_leases_are_taken_over() {
        let d = std::env::temp_dir().join(format!("isoflop-lease-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let a = Lease::acquire(&d).unwrap();
        let LeaseError::Held(h) = Lease::acquire(&d).unwrap_err() else {
            panic!("not held")
        };
        assert_eq!(h.pid, std::process::id());
        drop(a);
        assert!(holder(&d).is_none());
        // A lease left by a process that no longer exists is stale.
        std::fs::write(d.join(LEASE_FILE), format!("{} {}\n", host(), u32::MAX - 1)).unwrap();
        assert!(holder(&d).is_none());
        let b = Lease::acquire(&d).unwrap();
        b.refresh();
        assert!(holder(&d).is_some());
        drop(b);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
