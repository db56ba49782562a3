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
pub fn check_parallelism(
    option: &str,
    value: usize,
    cores: usize,
) -> Result<Option<String>, String> {
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

/// A GPU's dense peak FLOPs per second for a run of `dtype`, from its name (as
/// `nvidia-smi --query-gpu=name` prints it), where NVIDIA's datasheet gives one: bf16 on
/// the tensor cores; fp32 without them (libtorch leaves TF32 off for matrix products).
/// Sources: the H100/H200 (SXM), A100, L40S, L4 and A10 datasheets.
pub fn peak_flops(gpu_name: &str, dtype: crate::Dtype) -> Option<f64> {
    let n = gpu_name.to_ascii_uppercase();
    if n.contains("A10G") {
        return None; // AWS's A10G is not the A10 of the datasheet
    }
    // (name part, bf16 dense, fp32) in TFLOPS; the first match wins (H100 PCIe before H100).
    let table: [(&str, f64, f64); 8] = [
        ("H200", 989.4, 66.9),
        ("H100 PCIE", 756.0, 51.2),
        ("H100", 989.4, 66.9),
        ("A100", 312.0, 19.5),
        ("L40S", 362.05, 91.6),
        ("L4", 121.0, 30.3),
        ("A10", 125.0, 31.2),
        ("GH200", 989.4, 66.9),
    ];
    table
        .iter()
        .find(|(k, _, _)| n.contains(k))
        .map(|&(_, bf16, fp32)| {
            1e12 * match dtype {
                crate::Dtype::Bf16 => bf16,
                crate::Dtype::F32 => fp32,
            }
        })
}

/// Model FLOPs utilisation: the FLOPs the model's count says a second of training did
/// (`tokens_per_sec` x `flops_per_token`) over the device's `peak`.
///
/// # Example
/// ```
/// // 1e5 tokens/s of a 1e9-parameter model (6N = 6e9 FLOPs a token) on a 989.4 TFLOPS GPU.
/// let m = isoflop_core::machine::mfu(1e5, 6e9, 989.4e12);
/// assert!((m - 0.6064).abs() < 1e-4);
/// ```
pub fn mfu(tokens_per_sec: f64, flops_per_token: f64, peak: f64) -> f64 {
    tokens_per_sec * flops_per_token / peak
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_come_from_the_gpus_name_and_the_runs_precision() {
        let near =
            |got: Option<f64>, want: f64| got.is_some_and(|g| (g / want - 1.0).abs() < 1e-12);
        assert!(near(
            peak_flops("NVIDIA H200", crate::Dtype::Bf16),
            989.4e12
        ));
        assert!(near(
            peak_flops("NVIDIA H100 PCIe", crate::Dtype::Bf16),
            756.0e12
        ));
        assert!(near(
            peak_flops("NVIDIA H100 80GB HBM3", crate::Dtype::F32),
            66.9e12
        ));
        assert!(near(
            peak_flops("NVIDIA A100-SXM4-80GB", crate::Dtype::Bf16),
            312e12
        ));
        assert_eq!(peak_flops("Tesla T4", crate::Dtype::Bf16), None);
        assert!(check_parallelism("--jobs", 3, 2)
            .unwrap()
            .unwrap()
            .contains("2 cores"));
    }
}
