//! What this machine has: its cores and its free memory, and the bounds they set on options
//! that would otherwise ask for threads or memory without end (`--threads 100000`, a model
//! of 1e12 parameters, a billion bootstrap resamples).

/// The cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Bytes of memory available to new allocations (`MemAvailable` of `/proc/meminfo`), where
/// the system says; `None` elsewhere.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Above this many times the cores, a count of threads or parallel jobs is refused: it
/// cannot be meant for this machine.
pub const FAR_ABOVE_CORES: usize = 8;

/// Checks a count of threads or parallel jobs (`option` names it) against `cores`: `Ok(None)`
/// up to the cores, `Ok(Some(warning))` above them (the runs share cores and slow each
/// other), an error above [`FAR_ABOVE_CORES`] times them.
///
/// # Errors
/// The option, the value and the bound, in one line.
///
/// # Example
/// ```
/// use isoflop_core::machine::check_parallelism;
/// assert!(check_parallelism("--threads", 2, 4).unwrap().is_none());
/// assert!(check_parallelism("--threads", 8, 4).unwrap().is_some());
/// assert!(check_parallelism("--threads", 100_000, 4).is_err());
/// ```
pub fn check_parallelism(option: &str, value: usize, cores: usize) -> Result<Option<String>, String> {
    let cores = cores.max(1);
    if value > FAR_ABOVE_CORES * cores {
        Err(format!(
            "{option} {value}: this machine has {cores} cores; more than {} ({FAR_ABOVE_CORES}x the cores) is refused",
            FAR_ABOVE_CORES * cores
        ))
    } else if value > cores {
        Ok(Some(format!(
            "{option} {value} is more than this machine's {cores} cores; they will share them"
        )))
    } else {
        Ok(None)
    }
}

/// Bytes written for people: `1.5 GB`, `320 MB`.
pub fn bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.0} MB", b / 1e6)
    }
}
