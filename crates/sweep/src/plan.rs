//! Sweep plans: which models to train for how many tokens, written as a TOML file a person
//! can read and edit, and checked when read (the designs that fill one: [`crate::design`]).

use isoflop_core::shape::ModelShape;
use isoflop_core::TrainSettings;
use std::path::{Path, PathBuf};

/// The settings every run of a sweep shares: the one type of `isoflop_core::settings` (the
/// sweep file's `[defaults]` table).
pub type RunDefaults = TrainSettings;

/// One core's training speed for [`Sweep::estimated_secs`], with [`SECS_PER_STEP`]: the
/// least-squares fit of time = FLOPs / FLOPS_PER_SEC + steps x SECS_PER_STEP to 25 runs of
/// 31k to 669k parameters (batch 16, context 64) timed two at a time on this project's
/// 2-core Intel Xeon (LOG.md, 2026-11-30).
pub const FLOPS_PER_SEC: f64 = 5.7e10;

/// See [`FLOPS_PER_SEC`].
pub const SECS_PER_STEP: f64 = 1.6e-3;

/// One planned run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlannedRun {
    /// The run's id: its folder's name under the results folder.
    pub id: String,
    /// Layers.
    pub layers: usize,
    /// Width.
    pub d_model: usize,
    /// Heads.
    pub heads: usize,
    /// Total parameters of that shape.
    pub params: u64,
    /// Token horizon.
    pub tokens: u64,
    /// The IsoFLOP budget it belongs to, if any.
    pub budget: Option<f64>,
    /// A trunk (the `wsd` design): trained at a constant rate to its horizon, keeping a
    /// checkpoint at each of these token counts for the cooldown branches that name it. A
    /// trunk is not a point of a fit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_at_tokens: Vec<u64>,
    /// A cooldown branch: the id of its trunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trunk: Option<String>,
    /// A cooldown branch: the trunk's checkpoint it starts from, in tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_tokens: Option<u64>,
    /// Its own peak learning rate (the `lr` design, or a law of the rate against size from
    /// `plan --lr-law`); absent: the sweep's `[defaults]` rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Its own training seed (a replicate from `plan --seeds`); absent: the sweep's
    /// `[defaults]` seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl PlannedRun {
    /// FLOPs training it spends (6ND): a branch spends only its cooldown, from its branch
    /// point to its horizon; its trunk spent the rest once for all its branches.
    pub fn spent_flops(&self) -> f64 {
        6.0 * self.params as f64 * self.spent_tokens() as f64
    }

    /// Tokens training it spends: a branch's from its branch point to its horizon.
    pub fn spent_tokens(&self) -> u64 {
        self.tokens - self.at_tokens.unwrap_or(0).min(self.tokens)
    }

    /// FLOPs the run stands for as a point of a fit (6ND over its whole horizon); none for
    /// a trunk.
    pub fn represented_flops(&self) -> f64 {
        if self.is_trunk() {
            0.0
        } else {
            6.0 * self.params as f64 * self.tokens as f64
        }
    }

    /// True for a trunk of cooldown branches.
    pub fn is_trunk(&self) -> bool {
        !self.keep_at_tokens.is_empty()
    }
}

/// A sweep file.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sweep {
    /// A name for people.
    pub name: String,
    /// Results folder, relative to the sweep file's folder (or absolute).
    pub results: PathBuf,
    /// Corpus (default: the trainer's default corpus).
    pub data: Option<String>,
    /// Vocabulary (byte-level text: 256).
    pub vocab: usize,
    /// Shared settings.
    pub defaults: RunDefaults,
    /// An external trainer's command template (see [`crate::exec::expand`]); absent: isoflop's own.
    pub command: Option<String>,
    /// What each Slurm task asks for (the `[slurm]` table; `sweep --executor slurm`'s
    /// options override it).
    #[serde(default, skip_serializing_if = "is_default")]
    pub slurm: crate::resources::SlurmResources,
    /// The runs.
    pub runs: Vec<PlannedRun>,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Why a plan cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Nothing to plan.
    #[error("the plan has no runs: {0}")]
    Empty(String),
    /// A plan's option that no plan can use (named in the message).
    #[error("{0}")]
    Setting(String),
    /// A training setting no run can use, or an lr law that cannot be read.
    #[error(transparent)]
    Core(#[from] isoflop_core::CoreError),
    /// The file could not be read or parsed.
    #[error("{path}: {message}")]
    File {
        /// The sweep file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Two runs share an id.
    #[error("{path}: run id '{id}' appears twice")]
    Duplicate {
        /// The sweep file.
        path: PathBuf,
        /// The id.
        id: String,
    },
    /// A run id that is not a plain folder name.
    #[error("{path}: run id {id:?} {problem}; a run id is a folder name under the results folder")]
    BadId {
        /// The sweep file.
        path: PathBuf,
        /// The id.
        id: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A command template names a placeholder that does not exist.
    #[error("{path}: the command template has an unknown placeholder {{{name}}}; known: {known}")]
    UnknownPlaceholder {
        /// The sweep file (or the option that gave the template).
        path: PathBuf,
        /// The placeholder, without braces.
        name: String,
        /// The known placeholders.
        known: String,
    },
}

/// The placeholders a `command` template may use (see [`crate::exec::expand`]).
pub const PLACEHOLDERS: &[&str] = &[
    "id", "out", "layers", "d_model", "heads", "params", "tokens", "steps", "batch", "context",
    "lr", "seed", "vocab", "data",
];

/// Why `id` cannot name a run folder, if it cannot: empty, `.` or `..`, holding a path
/// separator or a control character, or starting with `-` (it would read as an option).
pub fn id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if id == "." || id == ".." {
        Some("names a folder above or at the results folder")
    } else if id.contains('/') || id.contains('\\') {
        Some("holds a path separator")
    } else if id.chars().any(char::is_control) {
        Some("holds a control character")
    } else if id.starts_with('-') {
        Some("starts with '-'")
    } else {
        None
    }
}

/// The placeholders `{name}` in `template` (a name is letters, digits and `_`; other text
/// in braces, such as awk's `{ print $1 }`, is not a placeholder).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find('}') {
            let name = &rest[..close];
            if !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
            {
                out.push(name);
            }
        }
    }
    out
}

/// Checks a command template: every placeholder must be one of [`PLACEHOLDERS`].
///
/// # Errors
/// [`PlanError::UnknownPlaceholder`] naming the first unknown one; `path` says where the
/// template came from.
pub fn check_template(template: &str, path: &Path) -> Result<(), PlanError> {
    match placeholders(template)
        .into_iter()
        .find(|p| !PLACEHOLDERS.contains(p))
    {
        Some(name) => Err(PlanError::UnknownPlaceholder {
            path: path.to_path_buf(),
            name: name.to_string(),
            known: PLACEHOLDERS
                .iter()
                .map(|p| format!("{{{p}}}"))
                .collect::<Vec<_>>()
                .join(" "),
        }),
        None => Ok(()),
    }
}

/// Warnings for placeholders written inside quotes in `template` (`"{out}"`, `'{id}'`):
/// every value is already quoted for `sh`, so inside double quotes its single quotes
/// become part of the word (a run writing to a folder named `'/path'`), and inside single
/// quotes it is split. One warning per such placeholder, naming it.
pub fn template_warnings(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut single, mut double, mut escaped) = (false, false, false);
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if escaped {
            escaped = false;
        } else if c == '\\' && !single {
            escaped = true;
        } else if c == '\'' && !double {
            single = !single;
        } else if c == '"' && !single {
            double = !double;
        } else if c == '{' && (single || double) {
            if let Some(len) = chars[i + 1..].iter().position(|&c| c == '}') {
                let name: String = chars[i + 1..i + 1 + len].iter().collect();
                if PLACEHOLDERS.contains(&name.as_str()) {
                    out.push(format!(
                        "the command template writes {{{name}}} inside {} quotes; isoflop quotes every value for sh itself, so write {{{name}}} without quotes (as it stands the value's own quotes become part of it)",
                        if single { "single" } else { "double" }
                    ));
                }
                i += len + 1;
            }
        }
        i += 1;
    }
    out
}

/// `p` as given when absolute, else relative to the folder of `file`.
fn resolve_beside(file: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

impl Sweep {
    /// FLOPs the sweep spends (6ND per run; a branch's cooldown only, its trunk once).
    pub fn total_flops(&self) -> f64 {
        self.runs.iter().map(PlannedRun::spent_flops).sum()
    }

    /// FLOPs the sweep's points stand for: 6ND summed over every run but the trunks (what
    /// the same points would cost trained one by one).
    pub fn represented_flops(&self) -> f64 {
        self.runs.iter().map(PlannedRun::represented_flops).sum()
    }

    /// Estimated wall time on `cores` cores, one thread per run: each run's FLOPs at
    /// [`FLOPS_PER_SEC`] plus [`SECS_PER_STEP`] a step (its fixed costs, which dominate
    /// models under 50k parameters, where FLOPs alone gave half the time taken).
    pub fn estimated_secs(&self, cores: usize) -> f64 {
        let secs: f64 = self.runs.iter().map(|r| self.run_secs(r, None, 1)).sum();
        secs / cores.max(1) as f64
    }

    /// Estimated seconds one run takes: its spent FLOPs at `flops_per_sec` (default
    /// [`FLOPS_PER_SEC`] per thread, times `threads`) plus [`SECS_PER_STEP`] a step.
    pub fn run_secs(&self, r: &PlannedRun, flops_per_sec: Option<f64>, threads: usize) -> f64 {
        let tokens_per_step = (self.defaults.batch * self.defaults.context).max(1) as f64;
        let speed = flops_per_sec.unwrap_or(FLOPS_PER_SEC * threads.max(1) as f64);
        r.spent_flops() / speed + SECS_PER_STEP * r.spent_tokens() as f64 / tokens_per_step
    }

    /// The results folder, resolved against the sweep file's folder.
    pub fn results_dir(&self, sweep_file: &Path) -> PathBuf {
        resolve_beside(sweep_file, &self.results)
    }

    /// The corpus, resolved against the sweep file's folder like the results folder (so a
    /// sweep means the same files from whatever folder it is started); `None`: the
    /// trainer's default corpus.
    pub fn data_path(&self, sweep_file: &Path) -> Option<PathBuf> {
        self.data
            .as_deref()
            .map(|d| resolve_beside(sweep_file, Path::new(d)))
    }

    /// Checks what a sweep file can get wrong beyond its syntax: run ids, shapes, the
    /// command template. `path` names the file in errors.
    ///
    /// # Errors
    /// [`PlanError`] for no runs, a repeated or unusable id, a shape that cannot be built,
    /// or an unknown placeholder in the command template.
    pub fn check(&self, path: &Path) -> Result<(), PlanError> {
        if self.runs.is_empty() {
            return Err(PlanError::Empty(format!("{} lists none", path.display())));
        }
        if let Some(t) = &self.command {
            check_template(t, path)?;
        }
        self.slurm.check().map_err(|message| PlanError::File {
            path: path.into(),
            message,
        })?;
        let mut ids = std::collections::HashSet::new();
        for r in &self.runs {
            if let Some(problem) = id_problem(&r.id) {
                return Err(PlanError::BadId {
                    path: path.into(),
                    id: r.id.clone(),
                    problem,
                });
            }
            if !ids.insert(r.id.clone()) {
                return Err(PlanError::Duplicate {
                    path: path.into(),
                    id: r.id.clone(),
                });
            }
            self.check_branch(path, r)?;
            ModelShape::new(
                r.layers,
                r.d_model,
                r.heads,
                self.vocab,
                self.defaults.context,
                false,
            )
            .map_err(|e| PlanError::File {
                path: path.into(),
                message: format!("run {}: {e}", r.id),
            })?;
        }
        Ok(())
    }

    /// A branch names a trunk of this sweep, of its model, rate and seed, that keeps its branch point,
    /// which lies before its horizon; a branch or trunk trains with isoflop's own trainer.
    fn check_branch(&self, path: &Path, r: &PlannedRun) -> Result<(), PlanError> {
        let bad = |message: String| PlanError::File {
            path: path.into(),
            message: format!("run {}: {message}", r.id),
        };
        if (r.trunk.is_some() || r.is_trunk()) && self.command.is_some() {
            return Err(bad("trunks and branches train with isoflop's own trainer; remove the command template or the branches".into()));
        }
        if r.is_trunk()
            && (r.trunk.is_some() || r.keep_at_tokens.iter().any(|&k| k == 0 || k > r.tokens))
        {
            return Err(bad(format!(
                "a trunk keeps checkpoints within its {} tokens and is no branch itself; keep_at_tokens = {:?}",
                r.tokens, r.keep_at_tokens
            )));
        }
        match (&r.trunk, r.at_tokens) {
            (None, None) => Ok(()),
            (Some(t), Some(at)) => {
                let Some(trunk) = self.runs.iter().find(|x| &x.id == t) else {
                    return Err(bad(format!("its trunk '{t}' is not a run of this sweep")));
                };
                if (trunk.layers, trunk.d_model, trunk.heads) != (r.layers, r.d_model, r.heads) {
                    return Err(bad(format!("its trunk '{t}' is a different model")));
                }
                if trunk.lr != r.lr {
                    return Err(bad(format!(
                        "its trunk '{t}' trains at another learning rate ({:?} against {:?})",
                        trunk.lr, r.lr
                    )));
                }
                if trunk.seed != r.seed {
                    return Err(bad(format!(
                        "its trunk '{t}' trains with another seed ({:?} against {:?})",
                        trunk.seed, r.seed
                    )));
                }
                if !trunk.keep_at_tokens.contains(&at) {
                    return Err(bad(format!(
                        "at_tokens = {at} is not among its trunk's keep_at_tokens {:?}",
                        trunk.keep_at_tokens
                    )));
                }
                if at >= r.tokens {
                    return Err(bad(format!(
                        "at_tokens = {at} is not before its horizon of {} tokens",
                        r.tokens
                    )));
                }
                Ok(())
            }
            _ => Err(bad("a branch gives both trunk and at_tokens".into())),
        }
    }

    /// The sweep as TOML, with a header comment stating totals.
    pub fn to_toml(&self, cores: usize) -> String {
        let body = toml::to_string_pretty(self).expect("a sweep serialises");
        format!(
            "# isoflop sweep '{}': {} runs, {:.3e} FLOPs spent for {:.3e} represented, about {:.0} s on {} cores (estimate).\n# Edit freely; `isoflop sweep THIS_FILE` runs it, resuming whatever is unfinished.\n{body}",
            self.name,
            self.runs.len(),
            self.total_flops(),
            self.represented_flops(),
            self.estimated_secs(cores),
            cores
        )
    }

    /// Reads and checks a sweep file.
    ///
    /// # Errors
    /// [`PlanError`] for an unreadable or malformed file, no runs, or a repeated id.
    pub fn read(path: &Path) -> Result<Sweep, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|e| PlanError::File {
            path: path.into(),
            message: e.to_string(),
        })?;
        let s: Sweep = toml::from_str(&text).map_err(|e| PlanError::File {
            path: path.into(),
            message: e.to_string(),
        })?;
        s.check(path)?;
        s.check_results(path)?;
        Ok(s)
    }

    /// Refuses a results folder that is a system folder (`/`, `/etc`, `/usr`, the home
    /// folder itself...) or that holds files a sweep did not write: a sweep writes run folders,
    /// and it moves and replaces files there, so it never shares a folder with the user's own.
    ///
    /// # Errors
    /// [`PlanError::File`] naming the folder and, for a folder of other files, the first of them.
    pub fn check_results(&self, path: &Path) -> Result<(), PlanError> {
        let results = self.results_dir(path);
        let bad = |message: String| PlanError::File {
            path: path.into(),
            message: format!("results = {:?}: {message}", self.results),
        };
        let resolved = std::fs::canonicalize(&results).unwrap_or_else(|_| results.clone());
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if resolved.parent().is_none()
            || SYSTEM_FOLDERS.iter().any(|f| resolved == Path::new(f))
            || home.is_some_and(|h| resolved == h)
        {
            return Err(bad(format!(
                "{} is a system folder; a sweep writes run folders into its results folder, so give it a folder of its own",
                resolved.display()
            )));
        }
        let Ok(entries) = std::fs::read_dir(&results) else {
            return Ok(());
        };
        for r in &self.runs {
            if let Some(problem) =
                isoflop_core::record::outside_problem(&results, &results.join(&r.id))
            {
                return Err(PlanError::File {
                    path: path.into(),
                    message: format!("run {}: {problem}", r.id),
                });
            }
        }
        let planned: std::collections::HashSet<&str> =
            self.runs.iter().map(|r| r.id.as_str()).collect();
        let sweep_file = std::fs::canonicalize(path).ok();
        let mut foreign = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            let ours = name.starts_with('.')
                || RESULTS_FILES.contains(&name.as_str())
                || planned.contains(name.as_str())
                || (p.is_dir() && isoflop_core::record::is_run_dir(&p))
                || std::fs::canonicalize(&p).ok() == sweep_file;
            if !ours {
                foreign.push(name);
            }
        }
        if foreign.is_empty() {
            return Ok(());
        }
        foreign.sort();
        Err(bad(format!(
            "{} holds {} file(s) or folder(s) a sweep did not write ({}); a sweep moves and replaces files in its results folder, so give it a folder of its own",
            results.display(),
            foreign.len(),
            isoflop_core::error::list(&foreign, ", ")
        )))
    }
}

/// Folders no sweep may write into as its results folder.
const SYSTEM_FOLDERS: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root", "/run",
    "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var",
];

/// The folder, under a sweep's results, of the trainers' logs and of retried runs' old
/// summaries.
pub const LOGS_DIR: &str = "logs";

/// What a sweep and the commands that read it write into a results folder, beside the run
/// folders: the trainers' logs, the Slurm scripts, the plan index, the collected table, the
/// study of a chained Slurm job, the learning-rate law; and the law and text that chained
/// jobs of earlier versions wrote there.
pub const RESULTS_FILES: &[&str] = &[
    LOGS_DIR,
    "slurm",
    isoflop_core::table::PLAN_FILE,
    isoflop_core::study_dir::RUNS_TABLE,
    isoflop_core::study_dir::CHAINED_STUDY_DIR,
    "lr-law.json",
    isoflop_core::study_dir::LAW_FILE,
    "fit.txt",
];

#[cfg(test)]
mod tests;
