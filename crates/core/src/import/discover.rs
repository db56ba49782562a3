//! What a SOURCE given to `isoflop import` holds: a file of a format told by its name (and,
//! for CSV, its header), or a folder searched for run logs (TensorBoard event files grouped
//! by the folder they are in, W&B run folders, Trainer output folders), symbolic links not
//! followed.

use super::{hf, log, tensorboard, wandb, Format, ImportError, Keys, RawLog};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// One run's logs, or one file of several runs, found in a SOURCE.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// Its format.
    pub format: Format,
    /// Its files (a TensorBoard run's event files, in name order) or its folder (a W&B run).
    pub paths: Vec<PathBuf>,
    /// The run's name where the layout gives it (a TensorBoard run's folder, relative to
    /// the SOURCE).
    pub name: Option<String>,
}

const DEPTH: usize = 12;

fn by_name(path: &Path) -> Option<Format> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    if tensorboard::is_event_file(&name) {
        return Some(Format::Tensorboard);
    }
    if name == "trainer_state.json" {
        return Some(Format::TrainerState);
    }
    match path.extension()?.to_string_lossy().as_ref() {
        "wandb" => Some(Format::WandbRun),
        "jsonl" | "ndjson" => Some(Format::Jsonl),
        "json" => Some(Format::TrainerState),
        "csv" => {
            // Only the header is needed to tell an export from a log.
            let mut header = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(std::fs::File::open(path).ok()?),
                &mut header,
            )
            .ok()?;
            Some(
                if header.contains(" - ")
                    && header
                        .split(',')
                        .any(|h| h.trim().trim_matches('"') == "Step")
                {
                    Format::WandbCsv
                } else {
                    Format::Csv
                },
            )
        }
        _ => None,
    }
}

/// The sources in `inputs`, in the order given (a folder's in path order).
///
/// # Errors
/// [`ImportError`] for a path that does not exist, a file whose format cannot be told
/// (`--format` names it), or a folder that holds no run log.
pub fn discover(inputs: &[PathBuf], format: Option<Format>) -> Result<Vec<Source>, ImportError> {
    let mut out = Vec::new();
    for input in inputs {
        let meta =
            std::fs::metadata(input).map_err(|e| ImportError::new(input, "", e.to_string()))?;
        if meta.is_file() {
            let f = format.or_else(|| by_name(input)).ok_or_else(|| {
                ImportError::new(
                    input,
                    "",
                    format!(
                        "cannot tell its format from its name; give --format ({})",
                        Format::ALL.map(Format::name).join(", ")
                    ),
                )
            })?;
            let path = if f == Format::WandbRun && input.extension().is_some_and(|x| x == "wandb") {
                input.parent().unwrap_or(Path::new(".")).to_path_buf()
            } else {
                input.clone()
            };
            out.push(Source {
                format: f,
                paths: vec![path],
                name: None,
            });
            continue;
        }
        let before = out.len();
        let mut events: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        walk(input, 0, format, &mut events, &mut out);
        for (dir, mut files) in events {
            files.sort();
            let rel = dir.strip_prefix(input).unwrap_or(&dir);
            let name = if rel.as_os_str().is_empty() {
                std::fs::canonicalize(input)
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .unwrap_or_else(|| "run".into())
            } else {
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/")
            };
            out.push(Source {
                format: Format::Tensorboard,
                paths: files,
                name: Some(name),
            });
        }
        if out.len() == before {
            return Err(ImportError::new(input, "", "no run log here (looked for TensorBoard event files, W&B run folders and trainer_state.json, symbolic links not followed)"));
        }
    }
    Ok(out)
}

fn walk(
    dir: &Path,
    depth: usize,
    format: Option<Format>,
    events: &mut BTreeMap<PathBuf, Vec<PathBuf>>,
    out: &mut Vec<Source>,
) {
    let want = |f: Format| format.is_none_or(|g| g == f);
    if wandb::is_run_dir(dir) {
        if want(Format::WandbRun) {
            out.push(Source {
                format: Format::WandbRun,
                paths: vec![dir.to_path_buf()],
                name: None,
            });
        }
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    let has_state = dir.join("trainer_state.json").is_file();
    let mut checkpoints: Vec<(u64, PathBuf)> = Vec::new();
    for e in entries {
        let Ok(ty) = e.file_type() else { continue };
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if ty.is_symlink() {
            continue;
        }
        if ty.is_file() {
            if tensorboard::is_event_file(&name) && want(Format::Tensorboard) {
                events.entry(dir.to_path_buf()).or_default().push(path);
            } else if name == "trainer_state.json" && want(Format::TrainerState) {
                out.push(Source {
                    format: Format::TrainerState,
                    paths: vec![path],
                    name: None,
                });
            }
        } else if ty.is_dir() && depth < DEPTH {
            if let Some(n) = name
                .strip_prefix("checkpoint-")
                .and_then(|n| n.parse::<u64>().ok())
            {
                if path.join("trainer_state.json").is_file() {
                    checkpoints.push((n, path));
                    continue;
                }
            }
            walk(&path, depth + 1, format, events, out);
        }
    }
    // A Trainer's output folder: its own trainer_state.json, else its latest checkpoint's.
    if !has_state && want(Format::TrainerState) {
        if let Some((_, latest)) = checkpoints.into_iter().max() {
            out.push(Source {
                format: Format::TrainerState,
                paths: vec![latest.join("trainer_state.json")],
                name: None,
            });
        }
    }
}

fn read_text(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|e| ImportError::new(path, "", e.to_string()))
}

impl Source {
    /// The runs this source holds, read.
    ///
    /// # Errors
    /// The format reader's [`ImportError`].
    pub fn read(&self, keys: &Keys) -> Result<Vec<RawLog>, ImportError> {
        let first = &self.paths[0];
        let step = keys.step.as_deref();
        Ok(match self.format {
            Format::Tensorboard => {
                let mut log = RawLog {
                    name: self.name.clone().unwrap_or_else(|| {
                        first
                            .parent()
                            .and_then(|p| std::fs::canonicalize(p).ok())
                            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                            .unwrap_or_else(|| "run".into())
                    }),
                    source: first.parent().unwrap_or(Path::new(".")).to_path_buf(),
                    ..RawLog::default()
                };
                if self.paths.len() == 1 {
                    log.source = first.clone();
                }
                let mut tags = HashMap::new();
                for p in &self.paths {
                    let bytes =
                        std::fs::read(p).map_err(|e| ImportError::new(p, "", e.to_string()))?;
                    tensorboard::read_events(p, &bytes, &mut log, &mut tags)?;
                }
                vec![log]
            }
            Format::WandbRun => vec![wandb::read_run_dir(first)?],
            Format::WandbCsv => wandb::read_export(first, &read_text(first)?, step)?,
            Format::TrainerState => vec![hf::read_trainer_state(first, &read_text(first)?)?],
            Format::Jsonl => log::read_jsonl(first, &read_text(first)?, step, keys.run.as_deref())?,
            Format::Csv => log::read_csv(first, &read_text(first)?, step, keys.run.as_deref())?,
        })
    }
}
