//! What a Slurm job asks for: the sweep file's `[slurm]` table (and `isoflop sweep
//! --executor slurm` options over it): partition, account, QOS, GPUs (a count per task or a
//! gres string), nodes, tasks per node, CPUs per task, memory, a time limit per run (fixed,
//! or scaled from the plan's time estimate of each run with a safety factor), requeueing
//! with a signal before the limit, and extra sbatch arguments.
//!
//! Every value reaches `#SBATCH` lines and sbatch's command line, so each is checked
//! against the characters such values are made of (letters, digits and `._:,=@+/%-`);
//! a value with any other (a space, a quote, a line break) is refused, as run ids are.

/// The `[slurm]` table of a sweep file.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmResources {
    /// `--partition`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `--account`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `--qos`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// `--gpus-per-task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus_per_task: Option<u32>,
    /// `--gres` (e.g. `gpu:a100:4`), instead of `gpus_per_task`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gres: Option<String>,
    /// `--nodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u32>,
    /// `--ntasks-per-node`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ntasks_per_node: Option<u32>,
    /// `--cpus-per-task` (default: `--threads`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_per_task: Option<u32>,
    /// `--mem` (e.g. `16G`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    /// `--time` for every run (`MM`, `HH:MM:SS`, `D-HH:MM:SS`), or `auto`: each run's
    /// time estimate ([`crate::plan::Sweep::run_secs`]) times [`SlurmResources::time_factor`], rounded
    /// up to one of [`TIME_LADDER_MIN`]; runs of one limit share an array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// The safety factor of `time = "auto"` (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_factor: Option<f64>,
    /// The training speed `time = "auto"` assumes, in FLOPs per second per run (default:
    /// the plan's CPU estimate); set it for GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops_per_sec: Option<f64>,
    /// `--requeue`: a task preempted or stopped by its signal is requeued, and resumes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requeue: bool,
    /// `--signal` (e.g. `B:USR1@120`): the trainer checkpoints on it and the run is
    /// transient, so a requeued task resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Further sbatch arguments, each one word (`--constraint=a100`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
}

/// The limits `time = "auto"` rounds up to, in minutes: runs of one rung share an array.
pub const TIME_LADDER_MIN: [u64; 14] = [
    5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 4320, 7200, 10080,
];

/// The default safety factor of `time = "auto"`.
pub const DEFAULT_TIME_FACTOR: f64 = 3.0;

/// Why a value cannot go to sbatch, if it cannot.
fn value_problem(v: &str) -> Option<&'static str> {
    if v.is_empty() {
        Some("is empty")
    } else if v.starts_with('-') {
        Some("starts with '-'")
    } else if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._:,=@+/%-".contains(c))
    {
        Some("holds a character other than letters, digits and ._:,=@+/%- (a space, a quote or a line break cannot reach sbatch safely)")
    } else {
        None
    }
}

/// Minutes of a Slurm time (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`).
fn minutes(t: &str) -> Option<f64> {
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<f64>().ok()?, r),
        None => (0.0, t),
    };
    let parts: Vec<f64> = rest
        .split(':')
        .map(|p| p.parse::<f64>().ok())
        .collect::<Option<_>>()?;
    let m = match (t.contains('-'), parts.as_slice()) {
        (false, [m]) => *m,
        (false, [m, s]) => m + s / 60.0,
        (false, [h, m, s]) => 60.0 * h + m + s / 60.0,
        (true, [h]) => 60.0 * h,
        (true, [h, m]) => 60.0 * h + m,
        (true, [h, m, s]) => 60.0 * h + m + s / 60.0,
        _ => return None,
    };
    let total = 1440.0 * days + m;
    (total > 0.0 && total.is_finite()).then_some(total)
}

/// A limit in minutes as Slurm writes it, `D-HH:MM:00`.
pub fn slurm_time(min: u64) -> String {
    format!("{}-{:02}:{:02}:00", min / 1440, (min % 1440) / 60, min % 60)
}

impl SlurmResources {
    /// Checks every value (see the module's doc).
    ///
    /// # Errors
    /// The field, the value and what is wrong with it.
    pub fn check(&self) -> Result<(), String> {
        let named = [
            ("partition", &self.partition),
            ("account", &self.account),
            ("qos", &self.qos),
            ("gres", &self.gres),
            ("mem", &self.mem),
            ("signal", &self.signal),
        ];
        for (field, v) in named {
            if let Some(p) = v.as_deref().and_then(value_problem) {
                return Err(format!(
                    "slurm {field} = {:?} {p}",
                    v.as_deref().unwrap_or("")
                ));
            }
        }
        for (field, v) in [
            ("gpus_per_task", self.gpus_per_task),
            ("nodes", self.nodes),
            ("ntasks_per_node", self.ntasks_per_node),
            ("cpus_per_task", self.cpus_per_task),
        ] {
            if v == Some(0) {
                return Err(format!(
                    "slurm {field} = 0: give at least 1, or leave it out"
                ));
            }
        }
        if self.gpus_per_task.is_some() && self.gres.is_some() {
            return Err("slurm gpus_per_task and gres both ask for GPUs: give one".into());
        }
        match self.time.as_deref() {
            None | Some("auto") => {}
            Some(t) if value_problem(t).is_none() && minutes(t).is_some() => {}
            Some(t) => {
                return Err(format!(
                    "slurm time = {t:?} is not a Slurm time (MM, HH:MM:SS, D-HH:MM:SS) or auto"
                ))
            }
        }
        for (field, v) in [
            ("time_factor", self.time_factor),
            ("flops_per_sec", self.flops_per_sec),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(format!("slurm {field} = {v}: must be a positive number"));
            }
        }
        if self.time_factor.is_some_and(|f| f < 1.0) {
            return Err("slurm time_factor below 1 asks for less time than the estimate".into());
        }
        for e in &self.extra {
            let ok = e.starts_with("--") && value_problem(&e[2..]).is_none();
            if !ok {
                return Err(format!(
                    "slurm extra {e:?}: each extra sbatch argument is one --name=value word of letters, digits and ._:,=@+/%-"
                ));
            }
        }
        Ok(())
    }

    /// The `#SBATCH` lines every task of the sweep shares (the time limit is per array).
    pub fn directives(&self, cpus: usize) -> Vec<String> {
        let mut v = Vec::new();
        let mut put = |k: &str, val: String| v.push(format!("#SBATCH --{k}={val}"));
        if let Some(p) = &self.partition {
            put("partition", p.clone());
        }
        if let Some(a) = &self.account {
            put("account", a.clone());
        }
        if let Some(q) = &self.qos {
            put("qos", q.clone());
        }
        if let Some(g) = self.gpus_per_task {
            put("gpus-per-task", g.to_string());
        }
        if let Some(g) = &self.gres {
            put("gres", g.clone());
        }
        if let Some(n) = self.nodes {
            put("nodes", n.to_string());
        }
        if let Some(n) = self.ntasks_per_node {
            put("ntasks-per-node", n.to_string());
        }
        put(
            "cpus-per-task",
            self.cpus_per_task.map_or(cpus, |c| c as usize).to_string(),
        );
        if let Some(m) = &self.mem {
            put("mem", m.clone());
        }
        if let Some(s) = &self.signal {
            put("signal", s.clone());
        }
        if self.requeue {
            v.push("#SBATCH --requeue".into());
        }
        for e in &self.extra {
            v.push(format!("#SBATCH {e}"));
        }
        v
    }

    /// The time limit in minutes of a run whose time estimate is `secs`
    /// ([`crate::plan::Sweep::run_secs`]): the fixed `time`, or the rung of
    /// [`TIME_LADDER_MIN`] at or above the estimate times the safety factor (`auto`);
    /// `None`: the partition's default.
    pub fn minutes_for(&self, secs: f64) -> Option<u64> {
        match self.time.as_deref() {
            None => None,
            Some("auto") => {
                let want = secs * self.time_factor.unwrap_or(DEFAULT_TIME_FACTOR) / 60.0;
                Some(
                    TIME_LADDER_MIN
                        .iter()
                        .copied()
                        .find(|&m| m as f64 >= want)
                        .unwrap_or(want.ceil() as u64),
                )
            }
            Some(t) => minutes(t).map(|m| m.ceil() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_cannot_reach_sbatch_safely_are_refused() {
        let ok = SlurmResources {
            partition: Some("gpu-a100".into()),
            account: Some("lab_42".into()),
            gres: Some("gpu:a100:4".into()),
            mem: Some("64G".into()),
            time: Some("1-12:00:00".into()),
            signal: Some("B:USR1@120".into()),
            extra: vec!["--constraint=a100".into()],
            ..Default::default()
        };
        assert_eq!(ok.check(), Ok(()));
        for bad in [
            SlurmResources {
                partition: Some("gpu\n#SBATCH --wrap=rm".into()),
                ..Default::default()
            },
            SlurmResources {
                account: Some("a b".into()),
                ..Default::default()
            },
            SlurmResources {
                qos: Some("'x'".into()),
                ..Default::default()
            },
            SlurmResources {
                mem: Some("-1".into()),
                ..Default::default()
            },
            SlurmResources {
                time: Some("soon".into()),
                ..Default::default()
            },
            SlurmResources {
                extra: vec!["--wrap=rm -rf /".into()],
                ..Default::default()
            },
            SlurmResources {
                extra: vec!["constraint=a100".into()],
                ..Default::default()
            },
            SlurmResources {
                gpus_per_task: Some(1),
                gres: Some("gpu:1".into()),
                ..Default::default()
            },
            SlurmResources {
                nodes: Some(0),
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slurm_times_read_and_write_in_minutes() {
        assert_eq!(minutes("30"), Some(30.0));
        assert_eq!(minutes("01:30:00"), Some(90.0));
        assert_eq!(minutes("1-00:00:00"), Some(1440.0));
        assert_eq!(minutes("2-6"), Some(2.0 * 1440.0 + 360.0));
        assert_eq!(minutes("1:2:3:4"), None);
        assert_eq!(slurm_time(90), "0-01:30:00");
        assert_eq!(slurm_time(1441), "1-00:01:00");
    }
}
