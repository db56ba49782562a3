//! Per-run leases: a file that says which process is training a run, so that two sweeps
//! started on the same folder by mistake (or a sweep and an orphaned trainer) never train
//! the same run at once.
//!
//! The lease is `.lease` in the run's folder, created with `O_EXCL`, holding
//! `host pid`. It is released (deleted) when the holder drops it. A lease is stale, and may
//! be taken over, when its holder is a process on this host that no longer exists, or when
//! the file has not been refreshed for [`STALE_AFTER`] (a holder on a node that died).

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
    /// For a lease handed down by the process that dispatched us ([`HANDED_DIR`]): its
    /// holder line, written back on drop (the dispatcher releases the lease itself).
    handed_from: Option<String>,
}

/// The environment variable a dispatcher that holds a run's lease (a sweep, around any
/// command it starts) sets for its child: the run folder, as the dispatcher named it.
pub const HANDED_DIR: &str = "ISOFLOP_LEASE_DIR";
/// With [`HANDED_DIR`]: the holder line (`host pid`) of the dispatcher's lease.
pub const HANDED_HOLDER: &str = "ISOFLOP_LEASE_HOLDER";

/// The holder line this process writes into a lease.
pub fn holder_line() -> String {
    format!("{} {}", host(), std::process::id())
}

/// True when the environment says our dispatcher holds the lease on `dir`, and the lease
/// file still names it: we were started to train this run, under its lease.
fn handed_to_us(dir: &Path, text: &str) -> bool {
    let (Some(d), Some(h)) = (
        std::env::var_os(HANDED_DIR),
        std::env::var(HANDED_HOLDER).ok(),
    ) else {
        return false;
    };
    let same_dir = match (std::fs::canonicalize(&d), std::fs::canonicalize(dir)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    same_dir && text.trim() == h.trim()
}

/// Writes `line` into the lease file at `path` whole (a temporary file renamed over it).
fn rewrite(path: &Path, line: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, format!("{line}\n"))?;
    std::fs::rename(&tmp, path)
}

/// Creates the lease file at `path` with its holder line already in it: the line is written
/// to a file of this thread's own and hard-linked into place, which fails if `path` exists.
/// A file created empty and written after would be seen, in between, as a lease naming no
/// live holder: stale, and taken by a second taker.
fn create_whole(dir: &Path, path: &Path) -> std::io::Result<()> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{LEASE_FILE}.{}.{n}", std::process::id()));
    std::fs::write(&tmp, format!("{}\n", holder_line()))?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            // A file system without hard links: create it exclusively and write it (the
            // short window in which it is empty remains there).
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            writeln!(f, "{}", holder_line()).inspect_err(|_| {
                let _ = std::fs::remove_file(path);
            })
        }
        other => other,
    }
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
            match create_whole(dir, &path) {
                Ok(()) => {
                    return Ok(Lease {
                        path,
                        handed_from: None,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Our dispatcher took it for us: train under it, naming ourselves (so
                    // a reader sees the process that trains, alive or dead), and give it
                    // back on drop.
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    if handed_to_us(dir, &text) {
                        rewrite(&path, &holder_line()).map_err(LeaseError::Io)?;
                        return Ok(Lease {
                            path,
                            handed_from: Some(text.trim().to_string()),
                        });
                    }
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

impl Lease {
    /// The environment a child started to train this lease's run needs to take the lease
    /// over from us ([`HANDED_DIR`], [`HANDED_HOLDER`]).
    pub fn hand_down(&self) -> [(&'static str, String); 2] {
        // Absolute, so a command that changes folder still names the same run folder.
        let dir = self
            .path
            .parent()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()))
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let line = std::fs::read_to_string(&self.path).unwrap_or_default();
        [(HANDED_DIR, dir), (HANDED_HOLDER, line.trim().to_string())]
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        match &self.handed_from {
            Some(line) => {
                let _ = rewrite(&self.path, line);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn racing_takers_never_both_hold_it() {
        // Threads taking one run's lease at once, many times: at most one holds it each
        // round (a lease file seen between its creation and its first line once looked stale
        // and was taken twice: two sweeps started one run twice).
        let dir = std::env::temp_dir().join(format!("isoflop-lease-race-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for round in 0..300 {
            let barrier = std::sync::Barrier::new(4);
            let held: Vec<Option<Lease>> = std::thread::scope(|s| {
                let hs: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            Lease::acquire(&dir).ok()
                        })
                    })
                    .collect();
                hs.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let n = held.iter().filter(|l| l.is_some()).count();
            assert_eq!(n, 1, "round {round}: {n} holders");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

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

    #[test]
    fn a_lease_handed_down_is_taken_over_named_after_the_child_and_given_back() {
        let d = std::env::temp_dir().join(format!("isoflop-lease-hand-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join(LEASE_FILE);
        // A dispatcher (here: pid 1 on this host, alive) holds the lease.
        let parent = format!("{} 1", host());
        std::fs::write(&path, format!("{parent}\n")).unwrap();
        // Without the environment, the lease is held.
        assert!(matches!(Lease::acquire(&d), Err(LeaseError::Held(h)) if h.pid == 1));
        std::env::set_var(HANDED_DIR, &d);
        std::env::set_var(HANDED_HOLDER, &parent);
        let child = Lease::acquire(&d).unwrap();
        assert_eq!(holder(&d).unwrap().pid, std::process::id());
        drop(child);
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), parent);
        // A lease held by someone else than the environment names stays held.
        std::fs::write(&path, format!("{} 2\n", host())).unwrap();
        let held = Lease::acquire(&d);
        std::env::remove_var(HANDED_DIR);
        std::env::remove_var(HANDED_HOLDER);
        if alive(2) {
            assert!(matches!(held, Err(LeaseError::Held(_))));
        }
        std::fs::remove_dir_all(&d).unwrap();
    }
}
