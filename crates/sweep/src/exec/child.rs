//! One trainer process, watched to its end: its standard error copied to the run's log (the
//! tail kept for a failure's reason), the run's lease kept fresh, and a signal this process
//! received ([`super::PASS_ON`]) passed on to it.

use isoflop_core::lease::{Lease, STALE_AFTER};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the watcher looks for a signal to pass on.
const POLL: Duration = Duration::from_millis(200);

/// Runs `child` (its standard error piped) to its end; returns its exit status and the tail
/// of its standard error.
pub(super) fn supervise(
    mut child: Child,
    lease: &Lease,
    log: &Path,
) -> (std::io::Result<ExitStatus>, String) {
    let running = AtomicBool::new(true);
    let pid = child.id() as libc::pid_t;
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut waited = Duration::ZERO;
            let mut passed = false;
            while running.load(Ordering::SeqCst) {
                std::thread::sleep(POLL);
                if super::PASS_ON.load(Ordering::SeqCst) != 0 && !passed {
                    // Passed on as SIGTERM, whatever arrived: every trainer knows it
                    // (isoflop's, torchrun, which hands it to its workers, a Recorder's
                    // loop), and a template should `exec` its trainer so that it reaches it.
                    // SAFETY: a signal to the child this process started and has not yet
                    // waited for (its pid cannot have been reused).
                    unsafe { libc::kill(pid, libc::SIGTERM) };
                    passed = true;
                }
                // A holder on another node is judged by the lease's age.
                waited += POLL;
                if waited >= STALE_AFTER / 10 {
                    waited = Duration::ZERO;
                    lease.refresh();
                }
            }
        });
        let text = copy_tail(child.stderr.take(), log);
        let status = child.wait();
        running.store(false, Ordering::SeqCst);
        (status, text)
    })
}

/// Copies `from` to the file `log` (where it can be written), returning the last 32 to
/// 64 kB of it: a chatty trainer's log can be long.
fn copy_tail(from: Option<impl Read>, log: &Path) -> String {
    let mut text = String::new();
    let mut file = std::fs::File::create(log).ok();
    if let Some(mut err) = from {
        let mut buf = [0u8; 8192];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(&buf[..n]);
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
            if text.len() > 64 * 1024 {
                let cut = text.len() - 32 * 1024;
                let cut = (cut..text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                text.drain(..cut);
            }
        }
    }
    text
}
