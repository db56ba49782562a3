//! Errors for bad input. Each variant keeps the offending value and where it came from.

use std::path::PathBuf;

/// The most items a message lists before it says how many more there are.
pub const LIST_MAX: usize = 5;
/// The most characters of one quoted value a message shows.
pub const QUOTE_MAX: usize = 80;

/// A problem's text (which may quote a line of the file) cut to 400 characters.
fn clip_long(text: &str) -> String {
    if text.chars().count() <= 400 {
        text.to_string()
    } else {
        format!("{}...", text.chars().take(400).collect::<String>())
    }
}

/// `text` cut to [`QUOTE_MAX`] characters, with the count of the rest where it was cut: a
/// message quotes what it must, never a whole file.
pub fn clip(text: &str) -> String {
    let n = text.chars().count();
    if n <= QUOTE_MAX {
        text.to_string()
    } else {
        format!(
            "{}... ({} more characters)",
            text.chars().take(QUOTE_MAX).collect::<String>(),
            n - QUOTE_MAX
        )
    }
}

/// The items joined by `sep`, at most [`LIST_MAX`] of them (each [`clip`]ped), then
/// "and N more": the bounded list every message that names columns or values uses.
pub fn list<I, T>(items: I, sep: &str) -> String
where
    I: IntoIterator<Item = T>,
    T: std::fmt::Display,
{
    list_n(items, sep, LIST_MAX, QUOTE_MAX)
}

/// The most runs a message names before it says how many more there are.
pub const RUNS_MAX: usize = 20;

/// Runs with what is wrong with each: at most [`RUNS_MAX`], each cut to 300 characters.
pub fn list_runs<I, T>(items: I) -> String
where
    I: IntoIterator<Item = T>,
    T: std::fmt::Display,
{
    list_n(items, ", ", RUNS_MAX, 300)
}

fn list_n<I, T>(items: I, sep: &str, max: usize, chars: usize) -> String
where
    I: IntoIterator<Item = T>,
    T: std::fmt::Display,
{
    let mut shown = Vec::new();
    let mut more = 0usize;
    for item in items {
        if shown.len() < max {
            let t = item.to_string();
            shown.push(if t.chars().count() > chars {
                format!("{}...", t.chars().take(chars).collect::<String>())
            } else {
                t
            });
        } else {
            more += 1;
        }
    }
    let mut out = shown.join(sep);
    if more > 0 {
        out.push_str(&format!("{sep}and {more} more"));
    }
    out
}

/// A result with [`CoreError`].
pub type Result<T, E = CoreError> = std::result::Result<T, E>;

/// What went wrong reading or checking user data.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file holds no data rows.
    #[error("{path}: the file holds no data rows")]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// A folder given as runs holds no finished run folder.
    #[error("{path}: no finished run here (a run folder holds {curve} and a summary.json that says it finished){left_out}")]
    NoRuns {
        /// The folder.
        path: PathBuf,
        /// The name of a run's curve file.
        curve: &'static str,
        /// The run folders left out and why ("; left out: ..."), or empty.
        left_out: String,
    },
    /// A required column is absent.
    #[error("{path}: no column for {what}; accepted names: {accepted}{}", if losses.is_empty() { String::new() } else { format!("; columns of this file that look like losses: {losses} (choose one with --loss-column NAME)") })]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// Which quantity.
        what: &'static str,
        /// The header names that would have been accepted.
        accepted: String,
        /// For a missing loss: the file's own columns that look like losses.
        losses: String,
    },
    /// Two or more columns match one quantity.
    #[error("{path}: columns {names} both match {what}; choose one with {option} NAME")]
    Ambiguous {
        /// The file.
        path: PathBuf,
        /// Which quantity.
        what: &'static str,
        /// The matching headers, quoted.
        names: String,
        /// The option that chooses.
        option: &'static str,
    },
    /// A header appears twice.
    #[error("{path}: the header has the column {names} twice (or names that differ only in case, spaces or underscores)")]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The headers, quoted.
        names: String,
    },
    /// A column chosen by name is not in the file.
    #[error("{path}: {option} {name}: no such column; the file's columns: {columns}")]
    NoSuchColumn {
        /// The file.
        path: PathBuf,
        /// The option that named it.
        option: &'static str,
        /// The name given.
        name: String,
        /// The file's columns.
        columns: String,
    },
    /// A cell could not be parsed or holds an impossible value.
    #[error(
        "{path}:{line}: column '{}': {problem} (value '{}')",
        clip(column),
        clip(value)
    )]
    BadCell {
        /// The file.
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        /// The column header.
        column: String,
        /// The cell's text.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A row is malformed as a whole (wrong field count, invalid JSON).
    #[error("{path}:{line}: {}", clip_long(problem))]
    BadRow {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },
    /// The row's FLOPs, params and tokens disagree with C = 6ND by more than the tolerance.
    #[error("{path}:{line}: flops {flops:.4e} is {ratio:.3}x 6*params*tokens ({six_nd:.4e}); are the units right (params, not millions of params)?")]
    Inconsistent {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// FLOPs given.
        flops: f64,
        /// 6 N D.
        six_nd: f64,
        /// flops / (6 N D).
        ratio: f64,
    },
    /// No corpus was given and the default one is not installed.
    #[error("no --data given and the default corpus (Debian's bible-kjv package) is not installed; hint: `apt-get install bible-kjv` (scripts/setup.sh does) or pass --data FILE")]
    NoDefaultCorpus,
    /// A training setting no run could use.
    #[error("invalid setting: {0}")]
    Setting(String),
    /// A run folder is a symbolic link leading outside the folder of runs.
    #[error("{0}")]
    Outside(String),
    /// Every row was filtered out.
    #[error("{path}: no row passes {filters}")]
    NoRowsLeft {
        /// The file.
        path: PathBuf,
        /// The filters, as written.
        filters: String,
    },
}

/// Reads a JSON file into `T`.
///
/// # Errors
/// [`CoreError::Io`] for an unreadable file, [`CoreError::BadRow`] naming the line and what
/// is wrong for JSON that is not a `T`.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, CoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| CoreError::BadRow {
        path: path.to_path_buf(),
        line: e.line(),
        problem: e.to_string(),
    })
}
