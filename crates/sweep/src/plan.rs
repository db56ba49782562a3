//! Sweep plans: which models to train for how many tokens, written as a TOML file a person
//! can read and edit.
//!
//! Two designs (Hoffmann et al. 2022):
//! - IsoFLOP ([`isoflop_design`], Approach 2): for each budget C, sizes log-spaced around the
//!   expected optimum, each trained on D = C / (6N) tokens.
//! - Horizons ([`horizon_design`], Approach 1): each size trained with several cosine
//!   horizons spanning 16x, so the envelope of the curves can be taken.
//!
//! The expected optimum is the Chinchilla rule of thumb, 20 tokens per parameter
//! (N = sqrt(C / 120)). Every shape comes from [`ModelShape::for_params`].

use isoflop_core::shape::ModelShape;
use isoflop_core::TrainSettings;
use std::path::{Path, PathBuf};

/// The settings every run of a sweep shares: the one type of `isoflop_core::settings` (the
/// sweep file's `[defaults]` table).
pub type RunDefaults = TrainSettings;

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
    /// The runs.
    pub runs: Vec<PlannedRun>,
}

/// Why a plan cannot be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Nothing to plan.
    #[error("the plan has no runs: {0}")]
    Empty(String),
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

use isoflop_core::units::count as short;

/// `p` as given when absolute, else relative to the folder of `file`.
fn resolve_beside(file: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(p)
    }
}

fn planned(shape: ModelShape, tokens: u64, budget: Option<f64>) -> PlannedRun {
    let params = shape.params().total as u64;
    let id = match budget {
        Some(c) => format!("c{c:e}-n{}", short(params as f64)),
        None => format!("n{}-d{}", short(params as f64), short(tokens as f64)),
    }
    .replace('+', "");
    PlannedRun {
        id,
        layers: shape.layers,
        d_model: shape.d_model,
        heads: shape.heads,
        params,
        tokens,
        budget,
    }
}

/// The IsoFLOP design: for each budget, `sizes` targets log-spaced over a factor `spread`
/// centred on N = sqrt(C / 120), each with D = C / (6N) for the shape's exact N. Targets
/// below the smallest model, runs shorter than 20 steps, and shapes repeated within a budget
/// are left out; the returned notes say which.
pub fn isoflop_design(
    budgets: &[f64],
    sizes: usize,
    spread: f64,
    vocab: usize,
    d: &RunDefaults,
) -> (Vec<PlannedRun>, Vec<String>) {
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    let min_tokens = 20 * (d.batch * d.context) as u64;
    for &c in budgets {
        let centre = (c / 120.0).sqrt();
        let mut seen = Vec::new();
        for k in 0..sizes {
            let f = if sizes == 1 {
                0.0
            } else {
                k as f64 / (sizes - 1) as f64 - 0.5
            };
            let target = centre * spread.powf(f);
            let Ok(shape) = ModelShape::for_params(target, vocab, d.context, false) else {
                notes.push(format!(
                    "budget {c:.1e}: size {target:.3e} is below the smallest model; left out"
                ));
                continue;
            };
            if seen.contains(&shape) {
                continue;
            }
            seen.push(shape);
            let tokens = (c / (6.0 * shape.params().total as f64)).round() as u64;
            if tokens < min_tokens {
                notes.push(format!(
                    "budget {c:.1e}: {} parameters would train for fewer than 20 steps; left out",
                    shape.params().total
                ));
                continue;
            }
            runs.push(planned(shape, tokens, Some(c)));
        }
    }
    (runs, notes)
}

/// The horizons design: `n_sizes` sizes log-spaced over [lo, hi], each trained for
/// `horizons` token horizons spanning 16x around 20 tokens per parameter.
pub fn horizon_design(
    lo: f64,
    hi: f64,
    n_sizes: usize,
    horizons: usize,
    vocab: usize,
    d: &RunDefaults,
) -> (Vec<PlannedRun>, Vec<String>) {
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    let mut seen = Vec::new();
    for k in 0..n_sizes {
        let target = if n_sizes == 1 {
            lo
        } else {
            lo * (hi / lo).powf(k as f64 / (n_sizes - 1) as f64)
        };
        let Ok(shape) = ModelShape::for_params(target, vocab, d.context, false) else {
            notes.push(format!(
                "size {target:.3e} is below the smallest model; left out"
            ));
            continue;
        };
        if seen.contains(&shape) {
            continue;
        }
        seen.push(shape);
        let n = shape.params().total as f64;
        for h in 0..horizons {
            let f = if horizons == 1 {
                0.0
            } else {
                h as f64 / (horizons - 1) as f64 - 0.5
            };
            let tokens = (20.0 * n * 16f64.powf(f)).round() as u64;
            runs.push(planned(shape, tokens, None));
        }
    }
    (runs, notes)
}

impl Sweep {
    /// Total FLOPs (6ND per run).
    pub fn total_flops(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| 6.0 * r.params as f64 * r.tokens as f64)
            .sum()
    }

    /// Estimated wall time on `cores` cores: total FLOPs over 6e10 FLOP/s per core (measured
    /// for these small models on this project's 2-core machines, one thread per run).
    pub fn estimated_secs(&self, cores: usize) -> f64 {
        self.total_flops() / (6e10 * cores.max(1) as f64)
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

    /// The sweep as TOML, with a header comment stating totals.
    pub fn to_toml(&self, cores: usize) -> String {
        let body = toml::to_string_pretty(self).expect("a sweep serialises");
        format!(
            "# isoflop sweep '{}': {} runs, {:.3e} FLOPs in all, about {:.0} s on {} cores (estimate).\n# Edit freely; `isoflop sweep THIS_FILE` runs it, resuming whatever is unfinished.\n{body}",
            self.name,
            self.runs.len(),
            self.total_flops(),
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
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isoflop_design_spends_each_budget_on_every_size() {
        let d = RunDefaults::default();
        let (runs, notes) = isoflop_design(&[1e12, 3e12, 1e13], 5, 8.0, 256, &d);
        assert!(runs.len() >= 13, "{runs:?} {notes:?}");
        for r in &runs {
            let c = r.budget.unwrap();
            // 6ND within rounding of the budget.
            assert!(
                (6.0 * r.params as f64 * r.tokens as f64 / c - 1.0).abs() < 1e-3,
                "{r:?}"
            );
            let shape =
                ModelShape::new(r.layers, r.d_model, r.heads, 256, d.context, false).unwrap();
            assert_eq!(shape.params().total as u64, r.params);
        }
        // Sizes at a budget bracket the 20-tokens-per-parameter optimum.
        let at: Vec<&PlannedRun> = runs.iter().filter(|r| r.budget == Some(1e13)).collect();
        let centre = (1e13f64 / 120.0).sqrt();
        assert!(
            at.iter().any(|r| (r.params as f64) < centre)
                && at.iter().any(|r| (r.params as f64) > centre)
        );
        let ids: std::collections::HashSet<_> = runs.iter().map(|r| &r.id).collect();
        assert_eq!(ids.len(), runs.len());
    }

    #[test]
    fn horizon_design_spans_sixteen_x() {
        let (runs, _) = horizon_design(2e5, 5e6, 4, 4, 256, &RunDefaults::default());
        assert_eq!(runs.len(), 16);
        let first: Vec<&PlannedRun> = runs.iter().filter(|r| r.params == runs[0].params).collect();
        let ratio = first.last().unwrap().tokens as f64 / first[0].tokens as f64;
        assert!((ratio - 16.0).abs() < 0.01, "{ratio}");
    }

    #[test]
    fn toml_round_trips_and_bad_files_are_named() {
        let d = RunDefaults::default();
        let (runs, _) = isoflop_design(&[1e12], 3, 4.0, 256, &d);
        let s = Sweep {
            name: "t".into(),
            results: "runs".into(),
            data: None,
            vocab: 256,
            defaults: d,
            command: None,
            runs,
        };
        let dir = std::env::temp_dir().join(format!("isoflop-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("sweep.toml");
        std::fs::write(&p, s.to_toml(2)).unwrap();
        assert_eq!(Sweep::read(&p).unwrap(), s);
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replacen("heads = ", "heads = 7 #", 1)).unwrap();
        let e = Sweep::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("sweep.toml") && e.contains("heads do not divide"),
            "{e}"
        );
        std::fs::write(&p, "name = ").unwrap();
        assert!(Sweep::read(&p)
            .unwrap_err()
            .to_string()
            .contains("sweep.toml"));
    }

    #[test]
    fn unknown_placeholders_and_path_ids_are_refused_when_the_file_is_read() {
        let d = RunDefaults::default();
        let (runs, _) = isoflop_design(&[1e12], 3, 4.0, 256, &d);
        let mut s = Sweep {
            name: "t".into(),
            results: "runs".into(),
            data: Some("corpus.txt".into()),
            vocab: 256,
            defaults: d,
            command: Some("train.sh {out} {bogus} awk '{ print $1 }'".into()),
            runs,
        };
        let dir = std::env::temp_dir().join(format!("isoflop-plan-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("sweep.toml");
        std::fs::write(&p, s.to_toml(2)).unwrap();
        let e = Sweep::read(&p).unwrap_err().to_string();
        assert!(
            e.contains("sweep.toml") && e.contains("{bogus}") && e.contains("{out}"),
            "{e}"
        );
        s.command = Some("train.sh {out} {id}".into());
        for (id, why) in [
            ("../../x", "path separator"),
            ("..", "above"),
            ("-rf", "'-'"),
            ("a\tb", "control"),
        ] {
            let mut bad = s.clone();
            bad.runs[0].id = id.into();
            std::fs::write(&p, bad.to_toml(2)).unwrap();
            let e = Sweep::read(&p).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("run id"), "{id:?}: {e}");
        }
        // Paths mean the same from any folder: both resolve beside the sweep file.
        assert_eq!(s.data_path(&p).unwrap(), dir.join("corpus.txt"));
        assert_eq!(s.results_dir(&p), dir.join("runs"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
